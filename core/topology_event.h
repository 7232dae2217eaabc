// core/topology_event.h: the events of the `$topology` stream as plain
// values (DESIGN.md, "Topology"). topology/ folds and emits these; the
// daemon seals them (chain hash and Ed25519 signature, core/topology_codec.h)
// before it stores or sends them, and verifies incoming ones before
// topology/ sees them.
//
// `$topology` is the union of every node's own sub-log. A sub-log belongs to
// one author: a node id and the instance of its data dir (a random number
// drawn when the data dir is created), so a node whose data dir was wiped
// starts a new sub-log instead of rewriting the old one's seqs.
//
// Std only: topology/ uses it. Kinds are on disk and on the wire: never
// renumber; retired numbers stay reserved.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/ids.h"
#include "core/node_id.h"
#include "core/stream_policy.h"

namespace spirit::core {

// The author of a sub-log.
struct TopologyAuthor {
    NodeId node;
    std::uint64_t instance = 0;

    friend auto operator<=>(const TopologyAuthor&, const TopologyAuthor&) = default;
    friend bool operator==(const TopologyAuthor&, const TopologyAuthor&) = default;

    // "node-a~0123456789abcdef": the node and its instance in hex.
    std::string text() const {
        static constexpr char digits[] = "0123456789abcdef";
        std::string out = node.value() + "~";
        for (int shift = 60; shift >= 0; shift -= 4) out += digits[(instance >> shift) & 0xf];
        return out;
    }
};

// One event's place: its author and its seq in the author's sub-log (1, 2, ...).
struct TopologyKey {
    TopologyAuthor author;
    std::uint64_t seq = 0;

    friend auto operator<=>(const TopologyKey&, const TopologyKey&) = default;
    friend bool operator==(const TopologyKey&, const TopologyKey&) = default;
};

namespace topo {

// The author's node started (again): `incarnation` counts the starts of this
// instance, from 1. `witness`: it votes but holds no data streams.
struct NodeStarted {
    std::uint64_t incarnation = 0;
    bool witness = false;
    friend bool operator==(const NodeStarted&, const NodeStarted&) = default;
};

// The author votes for `candidate` as master of `group` in `epoch`. At most
// one per voter and epoch, durable before the vote is answered.
struct Voted {
    std::string group;
    Epoch epoch;
    NodeId candidate;
    friend bool operator==(const Voted&, const Voted&) = default;
};

// The author was elected master of `group` in `epoch` by `voters` (sorted,
// the author included), a majority of the group's voters.
struct MasterElected {
    std::string group;
    Epoch epoch;
    std::vector<NodeId> voters;
    friend bool operator==(const MasterElected&, const MasterElected&) = default;
};

// The author, master of `group` in `epoch`, stopped being master.
struct SteppedDown {
    std::string group;
    Epoch epoch;
    std::string reason;
    friend bool operator==(const SteppedDown&, const SteppedDown&) = default;
};

// The author, master in `epoch`, completed `stream` there: its copy ends at
// `seq` and is the one every copy aligns with.
struct StreamCompleted {
    std::string stream;
    Epoch epoch;
    Seq seq;
    friend bool operator==(const StreamCompleted&, const StreamCompleted&) = default;
};

// The author moved `count` events of its copy of `stream`, after
// `after_seq`, into quarantine while aligning with the master of `epoch`.
struct SuffixQuarantined {
    std::string stream;
    Epoch epoch;
    Seq after_seq;
    std::uint64_t count = 0;
    friend bool operator==(const SuffixQuarantined&, const SuffixQuarantined&) = default;
};

// Stream lifecycle (docs/topology.md, "Streams"). Each is authored by the
// master of `epoch`; among a stream's lifecycle events and completions,
// the one with the highest (epoch, author seq) says whether it exists and
// with which policy, so every node agrees on both.

// The author, master in `epoch`, created `stream` with `policy`.
struct StreamCreated {
    std::string stream;
    Epoch epoch;
    StreamPolicy policy;
    friend bool operator==(const StreamCreated&, const StreamCreated&) = default;
};

// The author, master in `epoch`, deleted `stream`: every copy whose
// events and confirmed epoch are no newer than `epoch` is deleted.
struct StreamDeleted {
    std::string stream;
    Epoch epoch;
    friend bool operator==(const StreamDeleted&, const StreamDeleted&) = default;
};

// The author, master in `epoch`, changed the policy of `stream`.
struct StreamPolicyChanged {
    std::string stream;
    Epoch epoch;
    StreamPolicy policy;
    friend bool operator==(const StreamPolicyChanged&, const StreamPolicyChanged&) = default;
};

// Wire and disk kinds (the variant's alternatives in this order).
enum class Kind : std::uint8_t {
    node_started = 1,
    voted = 2,
    master_elected = 3,
    stepped_down = 4,
    stream_completed = 5,
    suffix_quarantined = 6,
    stream_created = 7,
    stream_deleted = 8,
    stream_policy_changed = 9,
};

}  // namespace topo

using TopologyBody =
    std::variant<topo::NodeStarted, topo::Voted, topo::MasterElected, topo::SteppedDown,
                 topo::StreamCompleted, topo::SuffixQuarantined, topo::StreamCreated,
                 topo::StreamDeleted, topo::StreamPolicyChanged>;

inline topo::Kind topology_kind(const TopologyBody& body) {
    return static_cast<topo::Kind>(body.index() + 1);
}

// A verified event as topology/ sees it. `timestamp` was stamped by its
// author when it sealed the event.
struct TopologyEvent {
    TopologyKey key;
    TimestampNs timestamp;
    TopologyBody body;
    friend bool operator==(const TopologyEvent&, const TopologyEvent&) = default;
};

}  // namespace spirit::core
