// topology/completion.h: a new master completes its group's streams before
// it orders anything in them (DESIGN.md, "Topology", steps 1 to 4).
//
// The master gathers each copy's position of every stream, from enough
// copies that every acknowledged write is among them, then adopts for each
// stream the highest position by (confirmed epoch, seq). The daemon then
// fetches the missing suffix from that copy, checks every hash, records the
// new epoch as confirmed, and opens the stream for writes.
//
// How many reports are enough: replicas - majority + 1 of the group's
// copies (quorum.h, completion_quorum: 2 of 3, 1 of 2). An immediate
// stream's acks is at least a majority, so replicas - acks + 1 is at most
// that: the reports meet every set of `acks` copies. An
// eventual stream waits for no one beyond what the master can reach: the
// gather also waits (a bounded number of ticks) for every peer whose link is
// up, so a master that restarts adopts what its reachable peers hold.
//
// A fresh copy (a new or wiped data dir that has not caught up since) may
// have lost writes it acknowledged, so its report never counts toward the
// quorum. If a majority of the group reports and every report is fresh
// and empty, the group is new.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/node_id.h"
#include "core/stream_policy.h"
#include "topology/position.h"

namespace spirit::topology {

// One stream of one copy's report.
struct CopyReport {
    std::string stream;
    Position position;
    core::StreamPolicy policy;  // as recorded with the copy (the master's record)
};

enum class CopyFreshness : std::uint8_t {
    caught_up,  // this copy held everything its master had when it joined
    fresh,      // a new or wiped data dir that has not caught up yet
};

// For one stream: whose copy to adopt and where it ends.
struct Choice {
    std::string stream;
    core::NodeId source;
    Position target;
    core::StreamPolicy policy;
};

class Completion {
 public:
    struct Options {
        core::NodeId self;
        std::size_t replicas = 1;       // the group's data nodes, self included
        std::uint64_t grace_ticks = 0;  // how long the gather waits for reachable peers
    };
    // REQUIRES: options.replicas >= 1.
    Completion(Options options, core::Epoch epoch);

    core::Epoch epoch() const { return epoch_; }

    // `from`'s copies (this node's own included). A later report replaces an
    // earlier one of the same node.
    void report(const core::NodeId& from, CopyFreshness freshness, std::vector<CopyReport> copies);
    // Peers whose links are up now: the gather waits for their reports.
    void set_reachable(std::set<core::NodeId> peers);
    void tick();

    // Enough has been heard to choose.
    bool gathered() const;
    // For every stream any counted report holds: the copy to adopt. Ties
    // rank this node first (nothing to fetch), then by node id.
    // REQUIRES: gathered().
    std::vector<Choice> choices() const;

    // Why it is not gathered yet, for status and errors ("2 of 3 copies
    // reported; a majority of 2 that are not fresh is needed").
    std::string waiting_for() const;

 private:
    struct Heard {
        CopyFreshness freshness;
        std::vector<CopyReport> copies;
    };
    std::size_t counted() const;
    bool new_group() const;

    Options options_;
    core::Epoch epoch_;
    std::map<core::NodeId, Heard> heard_;
    std::set<core::NodeId> reachable_;
    std::uint64_t ticks_ = 0;
};

}  // namespace spirit::topology
