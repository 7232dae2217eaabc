// daemon/cluster/cluster.h: this node's part in its cluster: the links to
// its peers, the election of the group's master (topology::Elector, fed
// with what arrives and driven by a timer), this node's copy of `$topology`
// (daemon/cluster/topology_log.h), and the one role object that acts on
// the elected role: a Master while this node masters the group, a Slave
// while another node does (a witness has neither). A change of role
// replaces that object here, in one place: a master that steps down fails
// what waits on it with not_master naming the new master.
//
// The driver: after every input the Elector's Ready is acted on. Its
// messages to send at once go out; its events are sealed and stored, and
// only once they are durable are the messages that depend on them sent (a
// vote is never answered before it is durable) and the Elector told. Then
// the role it reports is applied.
//
// Fencing: every peer message that carries or acknowledges data carries
// its sender's epoch. Data from an epoch older than this node's (the
// highest it voted in or followed) is refused, and the sender is told this
// node's epoch (a Heartbeat), which makes a master of an older epoch step
// down at once.
//
// Metrics: what the Elector notes (elections started and won, step-downs
// by cause) and every master of a newer epoch this node comes to know go
// to ops::Metrics, with the failover's length: from the last word of the
// master before (or this node's own step-down) to knowing the next.
//
// Loop thread only.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/node_id.h"
#include "core/protocol.h"
#include "daemon/cluster/forwarder.h"
#include "daemon/cluster/master.h"
#include "daemon/cluster/peer_links.h"
#include "daemon/cluster/slave.h"
#include "daemon/cluster/topology_log.h"
#include "daemon/config.h"
#include "net/loop.h"
#include "storage/store.h"
#include "topology/elector.h"
#include "topology/spread.h"

namespace spirit::daemon {

class Visibility;
class WritePath;
namespace ops {
class Metrics;
}

class Cluster final : public PeerEvents {
 public:
    // REQUIRES: config.in_cluster(); `identity` is the node's (its public
    // key is its member entry's); everything outlives this.
    Cluster(const Config& config, net::Loop& loop, storage::Store& store, Visibility& visibility,
            const core::Identity& identity);
    ~Cluster() override;
    Cluster(const Cluster&) = delete;
    Cluster& operator=(const Cluster&) = delete;

    // Publishes that peers forward, and the outbox once this node is
    // master, enter the write path like a client's.
    void set_write_path(WritePath& write_path) { write_path_ = &write_path; }
    // Where elections and changes of master are counted. REQUIRES: before
    // start(); `metrics` outlives this.
    void set_metrics(ops::Metrics& metrics) { metrics_ = &metrics; }

    // Reads `$topology` and what this node recorded (whether its copies
    // caught up), binds the peer listener, starts dialling and electing.
    [[nodiscard]] core::Result<void> start();
    // A graceful stop's first step: this node orders no more forwards (one
    // that arrives gets no answer: the links' close tells its sender, as
    // if it had come after stop()). The links stay up meanwhile, so the
    // forwards it ordered are answered, what it forwarded is answered and,
    // on a master, every linked replica comes to hold everything it
    // committed: nothing is left that only this node holds, so its
    // restart quarantines nothing. `wake` is called, from the loop thread
    // but never from within this call, whenever that may have become
    // true; drained() says whether it is.
    void begin_stop(std::function<void()> wake);
    bool drained() const;
    // Closes the links; fails what waits with shutting_down.
    void stop();

    bool is_master() const { return master_ != nullptr; }
    bool is_witness() const { return witness_; }
    // While this node masters the group; nullptr otherwise.
    Master* master() { return master_.get(); }
    core::Epoch epoch() const;
    // The master this node knows, if any.
    std::optional<core::NodeId> known_master() const;
    // Milliseconds since this node last heard from that master (or, if it
    // has not yet, since it learnt of it); 0 on the master; nullopt while
    // none is known.
    std::optional<std::uint64_t> master_contact_ms() const;
    Forwarder& forwarder() { return *forwarder_; }
    const core::NodeId& self() const { return self_; }
    // The data nodes of the group (they hold every stream), this one included.
    std::size_t group_size() const { return 1 + data_peers_.size(); }

    // An operator names the next master (spirit cluster set-master): that
    // node stands for election at once (a leadership transfer). `done` once
    // it was asked; the move shows in status and `$topology`.
    // `force`: also a target that has not caught up since its data dir was
    // made (refused otherwise: its completion could not count its own copy).
    void designate(const core::NodeId& master, bool force,
                   std::function<void(core::Result<void>)> done);
    // This node gives up mastership (its own commit failed).
    void step_down(const std::string& reason);

    // Streams (cluster_streams.cc). A stream's lifecycle is in `$topology`,
    // authored by its master; a change counts once a majority of voters
    // hold its event in the master's epoch (topology/spread.h).
    using Done = std::function<void(core::Result<void>)>;
    // The master created `stream` with `policy`. `done` (may be empty: a
    // first publish, which waits for nothing) once a majority holds it.
    void stream_created(const std::string& stream, const core::StreamPolicy& policy, Done done);
    // The master deletes `stream` in the whole group: StreamDeleted, then,
    // once a majority of voters hold it, its own copy; `done` then, or with
    // timeout after cluster.ack_timeout_ms (the delete goes on). The other
    // nodes delete their copies as they learn it.
    void delete_stream(const std::string& stream, Done done);
    // The master gives `stream` `policy` (only retention changes): its
    // StreamPolicyChanged, then, once a majority holds it, its own record;
    // `done` then. The other nodes change their records as they learn it.
    void change_policy(const std::string& stream, const core::StreamPolicy& policy, Done done);
    // Whether this master is deleting `stream` (publishes to it are refused).
    bool deleting(std::string_view stream) const;
    // The policy `$topology` gives `stream` while it exists, if it names one.
    std::optional<core::StreamPolicy> stream_policy(const std::string& stream) const;
    // Called when a copy was deleted here because `$topology` said so.
    void set_stream_deleted(std::function<void(const std::string&)> deleted) {
        stream_deleted_ = std::move(deleted);
    }

    const topology::Elector& elector() const { return *elector_; }
    const TopologyLog& topology_log() const { return *topology_log_; }

    // Status: "master", "slave", "witness" or "electing"; the epoch; peers; errors.
    std::string role_name() const;
    std::string state() const;
    std::vector<core::protocol::PeerStatus> peer_status() const;
    std::vector<core::protocol::ReplicationError> errors() const;
    // spirit topology (daemon/cluster/cluster_topology.cc): this node's
    // role, epoch, master and state (as status has them), every member as
    // this node sees it, the group's master as `$topology` says (or why
    // there is none), and what `$topology` holds of each author.
    void describe_topology(core::protocol::TopologyReply& reply) const;
    // While this node is master: every replica's copy of every stream, as
    // it tracks them; empty otherwise.
    std::vector<core::protocol::TopologyPosition> replica_positions() const;
    // A slave: whether its master's last heartbeat said this node's copies
    // have caught up (/ready).
    bool caught_up_with_master() const { return slave_ != nullptr && master_caught_up_; }

    // PeerEvents
    void link_up(const core::NodeId& peer, const core::protocol::PeerHello& hello) override;
    void link_down(const core::NodeId& peer, std::string_view why) override;
    void on_message(const core::NodeId& peer, core::protocol::Message& message) override;
    void on_writable(const core::NodeId& peer) override;

 private:
    core::protocol::PeerHello hello() const;
    core::protocol::Heartbeat heartbeat(const core::NodeId& peer, core::Epoch epoch,
                                        const core::NodeId& master) const;
    // Acts on the Elector's Ready until it has none, then applies its role.
    void drive();
    void send_election(const topology::Outgoing& out);
    void count(const topology::ElectionNote& note);
    // Counts a master of a newer epoch than the last one known (metrics).
    void observe_master(const topology::Role& role);
    void apply_role();
    void become_master(core::Epoch epoch);
    void step_down_master(const topology::Role& role);
    void follow(core::Epoch epoch, const core::NodeId& master);
    void record_caught_up();
    void record(core::TopologyBody body);
    void on_tick();
    void heartbeat_tick();
    void on_heartbeat(const core::NodeId& peer, const core::protocol::Heartbeat& h);
    // Data from an older epoch: tells the sender this node's. True if stale.
    bool stale(const core::NodeId& peer, core::Epoch epoch);
    bool from_master(const core::NodeId& peer, core::Epoch epoch);
    void on_forward(const core::NodeId& peer, const core::protocol::Forward& forward);
    void receive(const core::NodeId& peer, core::protocol::Message& message);
    void dispatch(const core::NodeId& peer, core::protocol::Message& message);
    [[nodiscard]] core::Result<core::Epoch> epoch_floor() const;
    // Streams (cluster_streams.cc).
    topology::Versions own_versions() const;
    // `peer` said, in `epoch`, what it holds of `$topology`.
    void report_spread(const core::NodeId& peer, core::Epoch epoch,
                       const std::vector<core::protocol::TopologyVersion>& versions);
    // A vote for this node: what the voter holds of `$topology` is fetched now.
    void vote_granted(const core::NodeId& peer, const core::protocol::VoteResponse& vote);
    // Whether this master holds what a majority of voters reported in its epoch.
    bool topology_current() const;
    // Answers the changes a majority now holds (a delete: once this copy is gone).
    void check_spreading();
    // Deletes this node's copy of `stream` (if any) and forgets it.
    void drop_copy(const std::string& stream, Done done);
    // Drops every copy `$topology` says was deleted (not on a serving master).
    void apply_deletes();
    // Gives every copy the retention `$topology` gives its stream.
    void apply_policies();
    // Records `policy` for this copy of `stream`.
    void set_policy(const std::string& stream, const core::StreamPolicy& policy, Done done);

    const Config& config_;
    net::Loop& loop_;
    storage::Store& store_;
    Visibility& visibility_;
    const core::Identity& identity_;
    WritePath* write_path_ = nullptr;
    ops::Metrics* metrics_ = nullptr;
    core::NodeId self_;
    bool witness_ = false;
    std::vector<core::NodeId> data_peers_;  // the other data members
    topology::CopyFreshness freshness_ = topology::CopyFreshness::fresh;
    std::unique_ptr<TopologyLog> topology_log_;
    std::unique_ptr<topology::Elector> elector_;
    bool driving_ = false;
    std::unique_ptr<PeerLinks> links_;
    std::unique_ptr<Forwarder> forwarder_;
    std::unique_ptr<Master> master_;
    std::unique_ptr<Slave> slave_;
    std::uint64_t follows_ = 0;      // Slaves made so far
    bool master_caught_up_ = false;  // the master's last Heartbeat.caught_up
    // The last master this node knew, and (loop clock, ms) when it last
    // heard from it: a message from it while it was the master known, or
    // this node's own step-down; at first, when it learnt of it.
    std::optional<topology::Role> last_master_;
    std::uint64_t master_heard_ms_ = 0;
    bool master_heard_ = false;  // master_heard_ms_ is a word from it, not when it was learnt
    std::uint64_t ticks_ = 0;
    std::uint64_t ticks_per_heartbeat_ = 1;
    std::unique_ptr<net::Timer> ticker_;
    bool stopped_ = false;
    bool stopping_ = false;               // begin_stop() was called
    std::function<void()> wake_;          // begin_stop()'s
    std::uint64_t forwards_ordered_ = 0;  // forwards ordered here, not yet answered
    topology::Spread spread_;
    // This master's stream changes on their way to a majority.
    struct Spreading {
        core::TopologyKey key;
        core::Epoch epoch;
        std::uint64_t deadline_ms = 0;
        std::string stream;
        enum class Kind : std::uint8_t { created, deleted, policy } kind;
        core::StreamPolicy policy;  // policy
        Done done;                  // empty once answered
    };
    std::vector<Spreading> spreading_;
    std::set<std::string, std::less<>> dropping_;  // copies being deleted
    std::function<void(const std::string&)> stream_deleted_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace spirit::daemon
