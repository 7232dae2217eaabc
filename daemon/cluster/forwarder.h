// daemon/cluster/forwarder.h: publishes a node accepts while it is not the
// master: forwarded to the master, or kept in the durable outbox while the
// master is unreachable (docs/replication.md, "Publishing to a slave").
//
// A stream's redundancy decides what an unreachable master means, and it
// is taken only from this node's copy of the stream record (the master's
// record, replicated with the stream), never guessed:
// - eventual: the events go to the outbox and are acknowledged `accepted`;
//   while the outbox holds anything, later eventual publishes queue behind
//   it (order is kept, also across a restart);
// - immediate: refused with not_master naming the master;
// - unknown (this node holds no copy yet): refused with unavailable.
// A forward in flight when the link to the node it went to drops moves to
// the outbox if its stream is known eventual (its ids make a double
// harmless), and fails with connection_lost otherwise; a change of master
// alone does not end it: the old master answers it.
//
// When this node is itself the master (after a change of role), the outbox
// drains into its own write path. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/envelope.h"
#include "core/node_id.h"
#include "core/protocol.h"
#include "core/stream_policy.h"
#include "storage/store.h"

namespace spirit::daemon {

class PeerLinks;

// One publish, as the write path receives it. Views: valid during the call.
struct PublishRequest {
    std::string_view stream;
    std::optional<core::Seq> expected_last_seq;
    std::span<const core::EventDraft> events;
};
using PublishReply = std::function<void(core::Result<core::protocol::PublishAck>)>;

// The same, owning its bytes (to wait, or to keep in the outbox).
struct OwnedPublish {
    std::string stream;
    std::optional<core::Seq> expected_last_seq;
    std::vector<storage::OutboxEntry::Event> events;

    // REQUIRES: `ids` set -> every event gets an id (a random one if none).
    static OwnedPublish copy(const PublishRequest& request, bool ids);
    // Views into this object: valid while it lives and is not changed.
    std::vector<core::EventDraft> drafts() const;
};

class Forwarder {
 public:
    struct Context {
        core::NodeId self;
        storage::Store& store;
        PeerLinks& links;
        // The master this node knows, if any, and its epoch.
        std::function<std::optional<core::NodeId>()> master;
        std::function<core::Epoch()> epoch;
        // Orders a publish on this node (it is the master now).
        std::function<void(const PublishRequest&, PublishReply)> order_here;
    };
    explicit Forwarder(Context context);
    ~Forwarder();
    Forwarder(const Forwarder&) = delete;
    Forwarder& operator=(const Forwarder&) = delete;

    // Learns whether the outbox holds entries from before a restart.
    void start();
    // Fails everything waiting (shutdown).
    void stop();

    // Sends a client's publish to the master, or keeps it (see above).
    // `policy`: this node's copy's record, nullopt if it holds none.
    void forward(const PublishRequest& request, const std::optional<core::StreamPolicy>& policy,
                 PublishReply reply);
    void on_reply(const core::NodeId& from, std::uint64_t request_id,
                  core::Result<core::protocol::PublishAck> ack);

    // The link to the master is up (or this node became master): drain.
    void master_reachable();
    // The link to `peer` closed: what was forwarded to it gets no answer
    // (eventual streams go to the outbox, the rest fail with
    // connection_lost). Forwards to a node that stopped being master still
    // get its answer (an ack, or not_master) while its link stays up.
    void peer_lost(const core::NodeId& peer, std::string_view why);
    // Retries an outbox entry the master could not take.
    void tick();

    std::size_t in_flight() const { return in_flight_.size(); }
    bool outbox_pending() const { return outbox_pending_; }

 private:
    struct Pending {
        OwnedPublish publish;
        std::optional<core::Redundancy> redundancy;
        PublishReply reply;
        bool from_outbox = false;
        std::uint64_t outbox_id = 0;
        core::NodeId sent_to;
    };
    void send(Pending pending);
    void to_outbox(OwnedPublish publish, PublishReply reply);
    void drain_outbox();
    void outbox_entry_done(const Pending& pending, const core::Result<core::protocol::PublishAck>&);
    bool master_linked() const;

    Context c_;
    std::map<std::uint64_t, Pending> in_flight_;
    std::uint64_t next_id_ = 1;
    bool outbox_busy_ = false;     // an outbox entry is on its way
    bool outbox_pending_ = false;  // the outbox may hold entries
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace spirit::daemon
