// topology/position.h: where one copy of a stream ends, and the order in
// which a new master picks the highest copy (DESIGN.md, "Topology", step 1).
#pragma once

#include "core/ids.h"

namespace spirit::topology {

// A copy's position in one stream. `confirmed` is the epoch of the last
// master this copy has durably aligned with (not the epoch of its last
// event: comparing by that is the trap of Raft's "figure 8"); `seq` and
// `hash` are its last event (Seq{0} and the genesis hash when empty; for a
// trimmed empty copy, its first seq - 1 and base hash).
struct Position {
    core::Epoch confirmed{0};
    core::Seq seq{0};
    core::Digest hash;

    friend bool operator==(const Position&, const Position&) = default;
};

// Whether `a` ranks above `b` for completion: by confirmed epoch, then seq.
// Copies confirmed in the same epoch are prefixes of that epoch's master's
// log, so among them the longer holds everything the shorter does.
constexpr bool ranks_above(const Position& a, const Position& b) {
    if (a.confirmed != b.confirmed) return a.confirmed > b.confirmed;
    return a.seq > b.seq;
}

}  // namespace spirit::topology
