// tests/topology/any_order.h: the view of a set of `$topology` events must
// not depend on their order of arrival or on duplicates (topology/view.h).
#pragma once

#include <catch2/catch.hpp>

#include <vector>

#include "topology/prng.h"
#include "topology/view.h"

namespace spirit::test {

// Folds `events` `trials` times, each time shuffled (seeded by `seed`) with
// one of them twice, and checks every view equals the one in order.
inline void check_view_in_any_order(const std::vector<core::TopologyEvent>& events, int trials,
                                    std::uint64_t seed) {
    topology::View reference;
    for (const auto& e : events) reference.add(e);
    const std::string expected = reference.describe();
    topology::Prng prng(seed);
    for (int trial = 0; trial < trials; ++trial) {
        std::vector<core::TopologyEvent> shuffled = events;
        for (std::size_t i = shuffled.size(); i > 1; --i) {
            std::swap(shuffled[i - 1], shuffled[prng.uniform(0, i - 1)]);
        }
        shuffled.push_back(shuffled[prng.uniform(0, shuffled.size() - 1)]);
        topology::View v;
        for (const auto& e : shuffled) v.add(e);
        CHECK(v.describe() == expected);
        CHECK(v.streams() == reference.streams());
    }
}

}  // namespace spirit::test
