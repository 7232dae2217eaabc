#include "topology/quorum.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "core/assert.h"

namespace spirit::topology {

std::size_t majority(std::size_t replicas) {
    SPIRIT_ASSERT(replicas >= 1);
    return replicas / 2 + 1;
}

std::size_t copies_required(const core::StreamPolicy& policy, std::size_t replicas) {
    SPIRIT_ASSERT(replicas >= 1);
    if (policy.redundancy == core::Redundancy::eventual) return 1;
    switch (policy.acks.kind) {
        case core::Acks::Kind::majority:
            return majority(replicas);
        case core::Acks::Kind::all:
            return replicas;
        case core::Acks::Kind::count:
            return std::clamp<std::size_t>(policy.acks.count, 1, replicas);
    }
    SPIRIT_ASSERT_MSG(false, "unknown acks kind");
    return replicas;
}

std::size_t completion_reports_required(const core::StreamPolicy& policy, std::size_t replicas) {
    const std::size_t acks = copies_required(policy, replicas);
    SPIRIT_ASSERT(acks >= 1 && acks <= replicas);
    if (policy.redundancy == core::Redundancy::eventual) return 1;
    return replicas - acks + 1;
}

std::size_t completion_quorum(std::size_t replicas) {
    return replicas - majority(replicas) + 1;
}

core::Seq watermark(std::span<const core::Seq> positions, std::size_t copies) {
    SPIRIT_ASSERT(copies >= 1);
    if (positions.size() < copies) return core::Seq{0};
    std::vector<core::Seq> sorted(positions.begin(), positions.end());
    const auto kth = sorted.begin() + static_cast<std::ptrdiff_t>(copies - 1);
    std::nth_element(sorted.begin(), kth, sorted.end(), std::greater<>());
    return *kth;
}

}  // namespace spirit::topology
