// tests/sim/options.h: everything one simulated run depends on, all drawn
// from its seed (swarm_options): the cluster's shape, which faults are on
// and how often, the client load, the length of the phases, and the rules
// broken on purpose (mutations) to show that a checker notices.
#pragma once

#include <cstdint>
#include <string>

#include "tests/sim/network.h"
#include "topology/elector.h"

namespace spirit::sim {

enum class Shape : std::uint8_t {
    three_data,        // n1 n2 n3
    five_data,         // n1 .. n5
    two_data_witness,  // n1 n2 and the witness w
};
const char* shape_name(Shape shape);

// Rules broken on purpose. Production code has none of these.
struct Mutations {
    topology::BrokenRules broken;            // the Elector's own (elector.h)
    bool completion_from_self = false;       // a new master adopts its own copy, gathering nothing
    bool rank_by_last_epoch = false;         // completion ranks copies by their last event's epoch
    bool slave_exposes_unconfirmed = false;  // a slave shows its durable copy, ignoring the
                                             // master's visible watermark
    bool slave_confirms_early = false;       // a slave records the epoch as confirmed at a cut or
                                             // its first append, before it holds the master's
                                             // history (daemon/cluster/slave.cc does so today)
    bool any() const;
    // "votes-twice,no-check-quorum" (the replay tool's --break spelling).
    std::string text() const;
};
// Parses Mutations::text(); false on an unknown name.
bool parse_mutations(const std::string& text, Mutations& out);

enum PartitionKind : std::uint8_t {
    partition_split,    // two groups that do not hear each other
    partition_one_way,  // one node's messages to the others are lost, not theirs to it
    partition_bridge,   // two groups cut apart, one node hearing and heard by both
    partition_isolate,  // one node alone
    partition_flap,     // one link goes down and up every few ticks
    partition_kinds,
};
const char* partition_name(std::uint8_t kind);

struct FaultPlan {
    NetworkFaults network;                 // in the safety phase
    std::uint32_t partition_kinds = 0;     // bit per PartitionKind
    std::uint64_t partition_permille = 0;  // per tick, when none is on
    std::uint64_t partition_ticks_max = 0;
    std::uint64_t crash_permille = 0;  // per tick
    std::size_t down_max = 0;          // nodes down (crashed or paused) at once
    std::uint64_t down_ticks_max = 0;
    std::uint64_t pause_permille = 0;
    std::uint64_t pause_ticks_max = 0;
    std::uint64_t jump_permille = 0;  // a burst of ticks on one node
    std::uint64_t jump_ticks_max = 0;
    std::uint64_t transfer_permille = 0;   // an operator asks a node to move mastership
    bool skew = false;                     // per-node tick rates of 75% .. 125%
    bool bridge_at_start = false;          // the first election runs under a bridge partition
    std::uint64_t disk_delay_max = 0;      // ticks until a write is durable
    std::uint64_t slow_disk_permille = 0;  // one write far slower than the rest
    std::uint64_t slow_disk_ticks_max = 0;
};

struct WorldOptions {
    std::uint64_t seed = 0;
    Shape shape = Shape::three_data;
    std::uint64_t heartbeat_ticks = 1;  // the daemon's defaults: 1 tick = 100 ms
    std::uint64_t election_ticks = 10;
    std::uint64_t safety_ticks = 1000;
    std::uint64_t liveness_ticks = 400;
    FaultPlan faults;
    std::uint64_t publish_permille = 300;  // client publishes per tick, in thousandths
    std::uint64_t retry_permille = 500;    // a failed publish is retried with its id
    Mutations mutations;
    bool stop_on_first = true;  // false: keep running and collect violations
};

// The options of a random run: everything drawn from `seed` through
// topology::Prng.
WorldOptions swarm_options(std::uint64_t seed);
// A run made for election races: the first election runs under a bridge
// partition (two sides that do not hear each other, one node both hear),
// later the master often crashes or is cut off; messages take 1..4 ticks,
// none is lost. Two candidates then often stand at once, and the bridge
// hears both: where broken vote rules show.
WorldOptions election_storm_options(std::uint64_t seed);
std::string describe(const WorldOptions& options);

}  // namespace spirit::sim
