// tests/sim/node.h: one simulated node: its topology::Elector, its disk,
// the in-memory heads of its stream copies, and its part in replication
// (master.h while it masters its group, the slave handlers in slave.cc
// otherwise). It plays the daemon's driver around topology/:
// - every Ready's events are written to disk; its send_after messages are
//   released and Elector::persisted(id) called only once they are durable
//   (and every earlier write, since the disk commits in order); a Ready
//   without events is released and persisted at once (as Cluster::drive);
// - anti-entropy: every Heartbeat carries the sender's version vector of
//   `$topology`; a receiver sends back the events the sender lacks, and a
//   node calls Elector::learn for another author's event once it is durable
//   here (after check_event);
// - after every input it reads Elector::role() and, when it changed, ends
//   its old part and starts the new one (a Master per epoch, or a slave of
//   (epoch, master));
// - a crash drops the Elector and everything in memory and in flight to
//   disk; a restart rebuilds the Elector from the durable `$topology`
//   events only and the heads from the durable copies.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/sim/disk.h"
#include "tests/sim/messages.h"
#include "topology/elector.h"

namespace spirit::sim {

class World;
class Master;

class Node {
 public:
    Node(World& world, std::size_t index, core::NodeId id, bool data);
    ~Node();
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    std::size_t index() const { return index_; }
    const core::NodeId& id() const { return id_; }
    bool data() const { return data_; }
    bool up() const { return elector_ != nullptr; }
    bool paused() const { return paused_; }
    std::uint64_t life() const { return life_; }
    // Ticks this node's clock made, over all its lives.
    std::uint64_t lived() const { return lived_; }

    // Lifecycle (the fault driver's inputs).
    void start();
    void crash();
    void set_paused(bool paused) { paused_ = paused; }
    // An operator asks this node to make `target` master: the target stands
    // at once, forced (Elector::transfer; a TimeoutNow if it is another node).
    void transfer(const core::NodeId& target);

    // Inputs.
    void tick();
    void receive(std::size_t from, const Message& message);
    std::size_t complete_disk(std::uint64_t now) { return disk_.complete(now); }
    // A client's publish. False: refused at once (no master known, or this
    // master does not take writes in `stream` yet).
    bool publish(std::size_t stream, std::uint64_t id);

    // State, for checkers and traces. REQUIRES for elector(): up().
    const topology::Elector& elector() const { return *elector_; }
    const Disk& disk() const { return disk_; }
    const Copy& head(std::size_t stream) const { return head_[stream]; }
    const Copy& durable(std::size_t stream) const { return disk_.durable().copies[stream]; }
    const Master* master() const { return master_.get(); }
    topology::Role role() const { return role_; }
    struct SlaveOf {
        Epoch epoch;
        std::size_t master = 0;
        std::array<Seq, stream_count> declared{};  // the master's visible watermark
        std::array<Seq, stream_count> history{};   // the master's copy at its completion
    };
    const std::optional<SlaveOf>& slave() const { return slave_; }
    Seq exposed(std::size_t stream) const { return exposed_[stream]; }
    std::string describe() const;

    // For the Master of this node.
    World& world() { return world_; }
    void send(std::size_t to, Message message);
    // Appends to the head at once and to disk; `done` once durable.
    void append(std::size_t stream, std::vector<Entry> entries, Epoch confirmed,
                std::function<void()> done);
    void truncate(std::size_t stream, Seq after, std::function<void()> done);
    void confirm(std::size_t stream, Epoch epoch, std::function<void()> done);
    void barrier(std::function<void()> done);
    // Runs `fn` only if this node still plays the part it played when the
    // callback was made (no restart, no role change since).
    std::function<void()> guarded(std::function<void()> fn);
    void note(core::TopologyBody body);
    // Consumers on this node may see `stream` up to `upto`.
    void expose(std::size_t stream, Seq upto);
    // Heard from `peer` within an election timeout (of this node's ticks).
    bool reachable(std::size_t peer) const;
    void trace(const std::string& text) const;

 private:
    void after_input();
    void drain_ready();
    void send_election(const topology::Outgoing& out);
    void update_role();
    void refresh_versions();
    void advance_versions(const std::vector<core::TopologyEvent>& durable);
    void anti_entropy(std::size_t from, const VersionVector& theirs);
    void on_topology_events(const TopologyEventsMsg& m);
    void on_fenced(std::size_t from, const FencedMsg& m);
    bool master_message(std::size_t from, const Message& message);
    bool slave_message(std::size_t from, const Message& message);
    void forwarded(const ForwardMsg& m);

    // slave.cc
    void slave_report();
    void slave_replicate(const ReplicateMsg& m);
    void slave_align(const ReplicateMsg& m);
    void slave_visible(std::size_t stream, Seq visible);
    void slave_probe(const ProbeMsg& m);
    void slave_truncate(const TruncateMsg& m);
    void slave_fetch(const FetchMsg& m);
    void slave_refuse(std::size_t stream);
    void slave_ack(std::size_t stream);
    void slave_expose(std::size_t stream);
    Epoch slave_confirms(std::size_t stream, Seq length) const;
    std::size_t stream_of(const Message& message) const;

    World& world_;
    std::size_t index_;
    core::NodeId id_;
    bool data_;
    bool paused_ = false;
    std::uint64_t life_ = 0;
    std::uint64_t lived_ = 0;
    std::uint64_t generation_ = 0;  // grows with every restart and role change
    Disk disk_;
    std::unique_ptr<topology::Elector> elector_;
    topology::Role role_;
    std::unique_ptr<Master> master_;
    std::optional<SlaveOf> slave_;
    std::array<Copy, stream_count> head_;
    std::array<Seq, stream_count> exposed_{};
    VersionVector versions_;                 // durable `$topology`, per author
    std::set<core::TopologyKey> learning_;   // received, not yet durable
    std::vector<std::uint64_t> last_heard_;  // lived() when each peer was heard
    std::vector<std::uint64_t> last_sync_;   // lived() when events went to each peer
};

}  // namespace spirit::sim
