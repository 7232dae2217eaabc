#include "topology/divergence.h"

#include <algorithm>

#include "core/assert.h"

namespace spirit::topology {

DivergenceSearch::DivergenceSearch(core::Seq floor, core::Seq differs, std::size_t probes_per_round)
    : floor_(floor), differs_(differs), probes_per_round_(probes_per_round) {
    SPIRIT_ASSERT(floor < differs);
    SPIRIT_ASSERT(probes_per_round >= 1);
    if (floor == core::Seq{0}) agreed_ = floor;  // the genesis hash is the same everywhere
}

std::vector<core::Seq> DivergenceSearch::probes() const {
    std::vector<core::Seq> out;
    if (done() || unrepairable_) return out;
    std::uint64_t low = floor_.value();  // exclusive, once the floor is known
    if (agreed_) {
        low = agreed_->value();
    } else {
        out.push_back(floor_);
    }
    const std::uint64_t high = differs_.value();  // exclusive
    const std::uint64_t gap = high - low - 1;     // seqs strictly inside
    const std::uint64_t count = std::min<std::uint64_t>(gap, probes_per_round_);
    for (std::uint64_t i = 1; i <= count; ++i) {
        // Evenly spread; distinct because count <= gap.
        const std::uint64_t seq = low + (gap + 1) * i / (count + 1);
        if (out.empty() || out.back().value() < seq) out.push_back(core::Seq{seq});
    }
    SPIRIT_ASSERT(out.empty() || out.back() < differs_);
    return out;
}

void DivergenceSearch::answer(core::Seq seq, bool same) {
    if (done() || unrepairable_ || seq < floor_ || seq >= differs_) return;
    if (agreed_ && seq <= *agreed_) return;
    if (same) {
        agreed_ = seq;
    } else {
        differs_ = seq;
        if (seq == floor_) unrepairable_ = true;
    }
    SPIRIT_ASSERT(!agreed_ || *agreed_ < differs_);
}

bool DivergenceSearch::done() const {
    return agreed_ && differs_ == agreed_->next();
}

core::Seq DivergenceSearch::common() const {
    SPIRIT_ASSERT(done());
    return *agreed_;
}

}  // namespace spirit::topology
