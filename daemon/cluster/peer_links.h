// daemon/cluster/peer_links.h: the TCP links between this node and every
// other node of the cluster (docs/replication.md, "Setting it up").
//
// One link per pair of nodes: the node with the smaller id dials, with
// exponential backoff and jitter; the other accepts. A link opens with a
// PeerHello each way; a wrong protocol version or cluster name, an unknown
// node id, or a peer that dials when it should be dialled is refused, and
// the reason logged. A peer silent for cluster.peer_timeout_ms is dropped
// and dialled again. What the links carry is the business of PeerEvents
// (daemon/cluster/cluster.h); this class knows links, not roles.
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/node_id.h"
#include "core/protocol.h"
#include "daemon/config.h"
#include "net/connection.h"
#include "net/loop.h"

namespace spirit::daemon {

// What happens on the links, for the one that owns the cluster's state.
class PeerEvents {
 public:
    virtual ~PeerEvents() = default;
    // `peer`'s link completed the hello exchange.
    virtual void link_up(const core::NodeId& peer, const core::protocol::PeerHello& hello) = 0;
    // `peer`'s handshaken link closed (it is dialled again, or dials again).
    virtual void link_down(const core::NodeId& peer, std::string_view why) = 0;
    // A peer message other than PeerHello. Views in `message` point into the
    // frame: valid only during the call.
    virtual void on_message(const core::NodeId& peer, core::protocol::Message& message) = 0;
    // `peer`'s link can take more bytes again.
    virtual void on_writable(const core::NodeId& peer) = 0;
};

class PeerLinks final : public net::ConnectionHandler {
 public:
    // `hello` builds this node's PeerHello for a new link (the role in it
    // changes over time). REQUIRES: config.cluster.peers is not empty;
    // everything outlives this.
    PeerLinks(const Config& config, net::Loop& loop, PeerEvents& events,
              std::function<core::protocol::PeerHello()> hello);
    ~PeerLinks() override;
    PeerLinks(const PeerLinks&) = delete;
    PeerLinks& operator=(const PeerLinks&) = delete;

    // Binds cluster.listen and starts dialling.
    [[nodiscard]] core::Result<void> start();
    // Closes every link; nothing is dialled afterwards.
    void stop();

    // Sends on `peer`'s link; false (nothing sent) if there is none.
    bool send(const core::NodeId& peer, const core::protocol::Message& message);
    bool send_frame(const core::NodeId& peer, core::ByteView frame);
    bool linked(const core::NodeId& peer) const;
    // Its link's send queue is below the high-water mark.
    bool writable(const core::NodeId& peer) const;
    std::vector<core::NodeId> linked_peers() const;
    const std::vector<core::NodeId>& peers() const { return ids_; }
    // Closes `peer`'s link with `why` (logged); it is dialled again.
    void close(const core::NodeId& peer, const core::Error& why);

    // Drops links silent for peer_timeout_ms and connections that never said
    // hello. Call every heartbeat interval.
    void check_timeouts();

    // "connected", or why not ("unreachable: connection refused").
    std::string state(const core::NodeId& peer) const;
    // Milliseconds since a frame from `peer` last arrived (its hello
    // included); nullopt if none has since this node started.
    std::optional<std::uint64_t> heard_ago_ms(const core::NodeId& peer) const;

    // net::ConnectionHandler
    void on_frame(net::Connection& connection, core::ByteView body) override;
    void on_writable(net::Connection& connection) override;
    void on_closed(net::Connection& connection, const std::optional<core::Error>& why) override;

 private:
    struct Peer {
        core::NodeId id;
        net::Endpoint address;
        bool dials = false;               // this node dials it
        net::Connection* link = nullptr;  // the handshaken link, owned in connections_
        std::uint64_t last_heard_ms = 0;
        std::uint32_t backoff_ms = 0;
        std::unique_ptr<net::Timer> redial;
        bool dialling = false;
        std::string state = "not connected";
    };

    Peer* peer_by_id(const core::NodeId& id);
    const Peer* peer_by_id(const core::NodeId& id) const;
    Peer* peer_of(const net::Connection& connection);
    void dial(Peer& peer);
    void dialled(const core::NodeId& id, core::Result<std::unique_ptr<net::Connection>> c);
    void schedule_redial(Peer& peer);
    void on_hello(net::Connection& connection, const core::protocol::PeerHello& hello);
    void refuse(net::Connection& connection, std::string_view claimed, std::string why);
    void send_hello(net::Connection& connection);
    net::ConnectionLimits limits() const;

    const Config& config_;
    net::Loop& loop_;
    PeerEvents& events_;
    std::function<core::protocol::PeerHello()> hello_;
    std::unique_ptr<net::Listener> listener_;
    std::map<std::uint64_t, std::unique_ptr<net::Connection>> connections_;
    std::vector<std::unique_ptr<Peer>> peers_;
    std::vector<core::NodeId> ids_;
    // Connections this node dialled: connection id -> the peer expected.
    std::map<std::uint64_t, core::NodeId> dialled_;
    // Connections without a PeerHello yet: connection id -> since (ms).
    std::map<std::uint64_t, std::uint64_t> unidentified_since_;
    std::mt19937_64 jitter_;
    bool stopped_ = false;
};

}  // namespace spirit::daemon
