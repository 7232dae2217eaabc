// daemon/replication.h: replication between spiritd nodes (docs/replication.md).
//
// Every node keeps one link to every peer (the node with the smaller id
// dials, with exponential backoff and jitter; the other accepts). A link
// opens with a PeerHello each way: a wrong cluster name, an unknown node id
// or a peer that should not be dialling us is refused, with the reason
// logged. Heartbeats flow both ways; a peer silent for peer_timeout_ms is
// dropped and dialled again.
//
// The master of every stream is fixed by configuration (cluster.master).
// - Master: each slave reports where its copies end (Positions); the master
//   checks them against its own chain and pushes every stream from there,
//   catch-up from LMDB and then live, pipelined within a bounded window of
//   bytes per slave. Slaves ack their durable positions; the master counts
//   durable copies for immediate publishes and for what consumers may see.
// - Slave: verifies every envelope's chain against its copy before storing
//   (a mismatch stops that stream's replication with an error naming
//   stream, seq and both hashes); commits through its own group commit and
//   acks. Publishes from its clients are forwarded to the master; for
//   eventual streams, while the master is unreachable, they go to the
//   durable outbox and are acknowledged as accepted, and the outbox is
//   forwarded in order when the link returns.
//
// Everything runs on the loop thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/protocol.h"
#include "daemon/config.h"
#include "net/connection.h"
#include "net/loop.h"
#include "storage/store.h"

namespace spirit::daemon {

class Replication final : public net::ConnectionHandler {
 public:
    using PublishDone = std::function<void(core::Result<core::protocol::PublishAck>)>;
    struct Hooks {
        // Events of `stream` up to `seq` may be delivered to consumers here.
        std::function<void(const std::string& stream, core::Seq seq)> visible;
        // Master: a slave forwarded a client's publish; order it as a local
        // publish and call `done` with its receipt.
        std::function<void(const core::protocol::Forward& forward, PublishDone done)> publish;
    };

    // REQUIRES: config.cluster.peers is not empty; everything outlives this.
    Replication(const Config& config, net::Loop& loop, storage::Store& store, Hooks hooks);
    ~Replication() override;
    Replication(const Replication&) = delete;
    Replication& operator=(const Replication&) = delete;

    // Binds the peer listener and starts dialling.
    [[nodiscard]] core::Result<void> start();
    // Closes every link (shutdown).
    void stop();

    bool is_master() const { return config_.is_master(); }

    // Master: `stream` is committed here up to `last`; replicate it.
    void committed(const std::string& stream, core::Seq last);
    // Master: calls `done` with the nodes holding `stream` up to `seq` once
    // `copies` of them (this one included) do, or with errc::timeout after
    // cluster.ack_timeout_ms, saying how many copies were reached.
    using CopiesDone = std::function<void(core::Result<std::vector<std::string>>)>;
    void await_copies(const std::string& stream, core::Seq seq, std::size_t copies,
                      CopiesDone done);

    // Slave: sends a client's publish to the master. With the master
    // unreachable, an eventual stream's events go to the outbox (receipt
    // kind `accepted`) and an immediate one fails with not_master.
    void forward(std::string_view stream, std::optional<core::Seq> expected,
                 std::span<const core::EventDraft> events, core::Redundancy redundancy,
                 PublishDone done);
    std::size_t forwards_in_flight() const { return forwards_.size(); }

    std::vector<core::protocol::PeerStatus> peer_status() const;
    std::vector<core::protocol::ReplicationError> errors() const;

    // net::ConnectionHandler
    void on_frame(net::Connection& connection, core::ByteView body) override;
    void on_writable(net::Connection& connection) override;
    void on_closed(net::Connection& connection, const std::optional<core::Error>& why) override;

 private:
    // Where a slave's copy of one stream is, as the master sees it.
    struct Cursor {
        core::Seq next_seq{1};   // next to send
        core::Digest sent_hash;  // chain hash of next_seq - 1
        core::StreamPolicy policy;
        std::deque<std::pair<core::Seq, std::uint64_t>> in_flight;  // sent, unacked: last, bytes
        bool refused = false;
    };
    struct Peer {
        std::string id;
        net::Endpoint address;
        bool dials = false;               // we dial this peer
        net::Connection* link = nullptr;  // the handshaken link, owned in connections_
        std::uint64_t last_heard_ms = 0;
        std::uint32_t backoff_ms = 0;
        std::unique_ptr<net::Timer> redial;
        bool dialling = false;
        std::string state = "not connected";
        // Master side.
        std::map<std::string, Cursor, std::less<>> cursors;
        std::uint64_t bytes_in_flight = 0;
        bool positions_known = false;
        // Durable positions reported by this slave; kept across links.
        std::map<std::string, core::Seq, std::less<>> acked;
    };
    struct Awaiter {
        std::string stream;
        core::Seq seq;
        std::size_t copies;
        std::uint64_t deadline_ms;
        CopiesDone done;
    };
    struct PendingForward {
        std::string stream;
        core::Redundancy redundancy;
        std::vector<storage::OutboxEntry::Event> events;
        PublishDone done;
        bool from_outbox = false;
        std::uint64_t outbox_id = 0;
    };

    Peer* peer_by_id(std::string_view id);
    Peer* peer_of(const net::Connection& connection);
    Peer* master_peer();
    void dial(Peer& peer);
    void schedule_redial(Peer& peer);
    void send(net::Connection& connection, const core::protocol::Message& message);
    void on_hello(net::Connection& connection, const core::protocol::PeerHello& hello);
    void link_up(Peer& peer, net::Connection& connection);
    void link_down(Peer& peer, std::string_view why);
    void tick();

    // Master (replication.cc).
    void on_positions(Peer& peer, const core::protocol::Positions& positions);
    void on_replica_ack(Peer& peer, const core::protocol::ReplicaAck& ack);
    void on_replica_refused(Peer& peer, const core::protocol::ReplicaRefused& refused);
    void on_forward(Peer& peer, const core::protocol::Forward& forward);
    core::Result<Cursor> start_cursor(const storage::StreamInfo& info, core::Seq slave_last,
                                      const core::Digest& slave_hash, std::string_view peer);
    void pump(Peer& peer);
    // The last Replicate frame built per stream, so slaves at the same
    // position share one read: its first seq, next seq, last hash, bytes.
    struct BuiltFrame {
        core::Seq first;
        core::Seq next;
        core::Digest last_hash;
        core::Bytes bytes;
    };
    bool pump_stream(Peer& peer, const std::string& stream, Cursor& cursor);
    // Reads and frames the next events of `stream` for `peer` and caches the
    // frame; nullptr when there is nothing to send or the read failed.
    const BuiltFrame* build_frame(Peer& peer, const std::string& stream, Cursor& cursor,
                                  std::size_t events_max, std::size_t bytes_max);
    std::vector<std::string> holders(const std::string& stream, core::Seq seq) const;
    void copies_changed(const std::string& stream);
    core::Seq committed_last(const std::string& stream);
    const core::StreamPolicy& policy_of(const std::string& stream);

    // Slave (replication_slave.cc).
    void on_replicate(Peer& peer, const core::protocol::Replicate& replicate);
    void send_positions(Peer& peer);
    void on_forward_reply(std::uint64_t request_id, core::Result<core::protocol::PublishAck> ack);
    void to_outbox(PendingForward forward);
    void drain_outbox();

    const Config& config_;
    net::Loop& loop_;
    storage::Store& store_;
    Hooks hooks_;
    std::unique_ptr<net::Listener> listener_;
    std::map<std::uint64_t, std::unique_ptr<net::Connection>> connections_;
    std::vector<std::unique_ptr<Peer>> peers_;
    std::unique_ptr<net::Timer> ticker_;
    std::mt19937_64 jitter_;
    bool stopped_ = false;

    // Master.
    std::unordered_map<std::string, core::Seq> committed_;
    std::unordered_map<std::string, core::StreamPolicy> policies_;
    std::unordered_map<std::string, core::Seq> visible_;
    std::unordered_map<std::string, BuiltFrame> frames_;  // see BuiltFrame
    std::uint64_t frames_bytes_ = 0;
    std::vector<Awaiter> awaiters_;
    // Slaves that refused a stream, or whose copy cannot continue: (peer, stream) -> why.
    std::map<std::pair<std::string, std::string>, std::string> replica_errors_;
    // Connections we dialled, by connection id -> the peer we expect.
    std::map<std::uint64_t, std::string> dialled_;
    // Connections without a PeerHello yet: connection id -> since (ms).
    std::map<std::uint64_t, std::uint64_t> unidentified_since_;
    // Test hook: SPIRIT_TEST_CORRUPT_REPLICATION=stream:seq flips a payload
    // byte of that envelope each time it goes to a slave.
    std::optional<std::pair<std::string, core::Seq>> corrupt_once_;

    // Slave.
    std::map<std::string, std::string, std::less<>> refused_;  // stream -> error
    std::uint64_t link_generation_ = 0;
    std::map<std::uint64_t, PendingForward> forwards_;
    std::uint64_t next_forward_id_ = 1;
    bool outbox_busy_ = false;     // an outbox entry is in flight to the master
    bool outbox_pending_ = false;  // the outbox may hold entries
};

}  // namespace spirit::daemon
