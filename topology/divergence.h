// topology/divergence.h: finding where two copies of a stream part ways.
//
// Hashes chain, so two copies that agree at a seq agree at every seq before
// it: the last common seq is found by a search over positions, never a scan.
// Each round asks the other copy for its hashes at a few seqs spread over
// the range still open (a k-ary search: log_(k+1) of the range in rounds).
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "core/ids.h"

namespace spirit::topology {

class DivergenceSearch {
 public:
    // Searches seqs in [floor, differs). `floor` is the lowest seq this side
    // can compare (its first retained seq - 1; Seq{0}, the genesis, always
    // agrees); `differs` is a seq known to differ, or one past the last seq
    // both sides could share. REQUIRES: floor < differs; probes_per_round >= 1.
    DivergenceSearch(core::Seq floor, core::Seq differs, std::size_t probes_per_round = 15);

    // The seqs to compare this round, ascending, strictly inside the open
    // range (and the floor while it is unchecked). Empty once done().
    std::vector<core::Seq> probes() const;
    // Whether the copies agree at `seq`. Answers outside the open range are
    // ignored (a stale round).
    void answer(core::Seq seq, bool same);

    // The last common seq is known.
    bool done() const;
    // The copies agree at no seq this side can compare (they differ already
    // at the floor): the other copy cannot be repaired from here.
    bool unrepairable() const { return unrepairable_; }
    // REQUIRES: done().
    core::Seq common() const;

 private:
    core::Seq floor_;
    std::optional<core::Seq> agreed_;  // highest seq known to agree
    core::Seq differs_;                // lowest seq known to differ (or the end)
    std::size_t probes_per_round_;
    bool unrepairable_ = false;
};

}  // namespace spirit::topology
