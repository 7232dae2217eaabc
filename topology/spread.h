// topology/spread.h: how far `$topology` has spread: what each member last
// reported holding of it (a version vector, on its heartbeats and granted
// votes) and the epoch it was in when it did. Two rules use it:
//
// - A change of a stream's lifecycle (created, deleted, policy changed) by
//   the master of epoch e is acknowledged once a majority of voters hold
//   its event while in epoch e (holding(), the master counted by the
//   caller). A voter that moved on to a newer epoch does not count.
// - A new master of epoch E completes nothing before it holds what a
//   majority of voters reported holding in epoch E or later (covered()).
//   Such a report was made after the voter left every older epoch, so any
//   majority that acknowledged a change in an older epoch shares a voter
//   with it, and the new master holds that change: an acknowledged delete
//   survives failover, as an acknowledged write does.
//
// Pure: no IO, clock or codec; the daemon feeds it what peers report.
#pragma once

#include <cstdint>
#include <map>

#include "core/ids.h"
#include "core/node_id.h"
#include "core/topology_event.h"

namespace spirit::topology {

// What a node holds of each author's sub-log: every event up to the seq.
using Versions = std::map<core::TopologyAuthor, std::uint64_t>;

// Whether `have` holds everything `need` does.
bool covers(const Versions& have, const Versions& need);

class Spread {
 public:
    // `peer` reported `versions` while in `epoch`. A report of an older
    // epoch than the one kept is ignored (messages may be reordered); of
    // the same or a newer epoch it replaces it (versions only grow).
    void report(const core::NodeId& peer, core::Epoch epoch, Versions versions);
    // A peer whose store was wiped starts over (its reports go).
    void forget(const core::NodeId& peer) { reports_.erase(peer); }

    // The peers that reported, in exactly `epoch`, holding `key`.
    std::size_t holding(const core::TopologyKey& key, core::Epoch epoch) const;
    // The peers that reported, in `epoch` or later, nothing `have` lacks.
    std::size_t covered(const Versions& have, core::Epoch epoch) const;

 private:
    struct Report {
        core::Epoch epoch;
        Versions versions;
    };
    std::map<core::NodeId, Report> reports_;
};

}  // namespace spirit::topology
