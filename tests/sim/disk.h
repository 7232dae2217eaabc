// tests/sim/disk.h: one node's simulated disk. Writes (its own `$topology`
// events, learned ones, data appends, confirmations, truncations) queue in
// order, like one LMDB writer's commits, and each becomes durable after a
// random delay, never before the writes queued ahead of it. A crash drops
// whatever is not durable yet; what is durable survives every crash and is
// all a restart may read.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <variant>
#include <vector>

#include "core/topology_event.h"
#include "tests/sim/model.h"

namespace spirit::sim {

// Appends `entries` at `first`; the copy is then confirmed in `confirmed`
// (a slave appending its master's chain aligns with that master).
struct AppendOp {
    std::size_t stream = 0;
    Seq first;
    std::vector<Entry> entries;
    Epoch confirmed;
};
// Moves every entry after `after` into quarantine.
struct TruncateOp {
    std::size_t stream = 0;
    Seq after;
};
// Records `epoch` as the copy's confirmed epoch; the copy ends at `seq`.
struct ConfirmOp {
    std::size_t stream = 0;
    Epoch epoch;
    Seq seq;
};
struct TopologyOp {
    std::vector<core::TopologyEvent> events;
};
// Nothing: done once every earlier write is durable.
struct BarrierOp {};

using DiskOp = std::variant<AppendOp, TruncateOp, ConfirmOp, TopologyOp, BarrierOp>;

// What survives a crash.
struct Durable {
    std::map<core::TopologyKey, core::TopologyEvent> topology;
    std::array<Copy, stream_count> copies;
    std::array<std::vector<Quarantined>, stream_count> quarantine;
    std::uint64_t version = 0;  // grows with every change (checkers compare it)
};

class Disk {
 public:
    // Queues `op`; `done` runs once it is durable (never after a crash).
    void write(std::uint64_t now, std::uint64_t delay, DiskOp op, std::function<void()> done);
    // Applies, in order, every write due at or before `now` and runs its
    // callback (which may queue more). Returns how many were applied.
    std::size_t complete(std::uint64_t now);
    // Drops every write not yet durable.
    void crash();
    bool idle() const { return pending_.empty(); }
    std::size_t pending() const { return pending_.size(); }

    const Durable& durable() const { return durable_; }

 private:
    struct Pending {
        std::uint64_t due = 0;
        DiskOp op;
        std::function<void()> done;
    };
    void apply(const DiskOp& op);

    Durable durable_;
    std::deque<Pending> pending_;
    std::uint64_t last_due_ = 0;
};

}  // namespace spirit::sim
