// Counting copies: majority, the copies an immediate publish waits for, the
// reports a new master needs, and the watermark, as tables.
#include <catch2/catch.hpp>

#include <vector>

#include "topology/quorum.h"

using namespace spirit;
using core::Seq;
using topology::completion_reports_required;
using topology::copies_required;

namespace {

core::StreamPolicy immediate(core::Acks::Kind kind, std::uint8_t count = 0) {
    core::StreamPolicy p;
    p.redundancy = core::Redundancy::immediate;
    p.acks = core::Acks{kind, count};
    return p;
}

}  // namespace

TEST_CASE("copies required and completion reports for each acks setting", "[topology][unit]") {
    using K = core::Acks::Kind;
    struct Row {
        core::StreamPolicy policy;
        std::size_t replicas;
        std::size_t copies;
        std::size_t reports;
    };
    const std::vector<Row> rows = {
        {core::StreamPolicy{}, 1, 1, 1},   {core::StreamPolicy{}, 3, 1, 1},
        {immediate(K::majority), 1, 1, 1}, {immediate(K::majority), 3, 2, 2},
        {immediate(K::majority), 4, 3, 2}, {immediate(K::majority), 5, 3, 3},
        {immediate(K::all), 3, 3, 1},      {immediate(K::all), 5, 5, 1},
        {immediate(K::count, 2), 3, 2, 2}, {immediate(K::count, 4), 5, 4, 2},
        {immediate(K::count, 9), 3, 3, 1},  // capped at the group
    };
    for (const Row& r : rows) {
        INFO("replicas " << r.replicas << " redundancy " << static_cast<int>(r.policy.redundancy)
                         << " acks kind " << static_cast<int>(r.policy.acks.kind) << " count "
                         << int(r.policy.acks.count));
        CHECK(copies_required(r.policy, r.replicas) == r.copies);
        CHECK(completion_reports_required(r.policy, r.replicas) == r.reports);
        // Any set of `reports` copies meets any set of `copies` copies.
        if (r.policy.redundancy == core::Redundancy::immediate) {
            CHECK(r.reports + r.copies > r.replicas);
        }
    }
    CHECK(topology::majority(1) == 1);
    CHECK(topology::majority(2) == 2);
    CHECK(topology::majority(3) == 2);
    CHECK(topology::majority(6) == 4);
}

TEST_CASE("the watermark is the highest seq held by enough copies", "[topology][unit]") {
    struct Row {
        std::vector<Seq> positions;
        std::size_t copies;
        Seq watermark;
    };
    const std::vector<Row> rows = {
        {{Seq{10}, Seq{7}, Seq{3}}, 1, Seq{10}}, {{Seq{10}, Seq{7}, Seq{3}}, 2, Seq{7}},
        {{Seq{10}, Seq{7}, Seq{3}}, 3, Seq{3}},  {{Seq{10}, Seq{7}}, 3, Seq{0}},
        {{Seq{5}, Seq{5}, Seq{0}}, 2, Seq{5}},   {{Seq{0}, Seq{9}, Seq{9}, Seq{1}}, 3, Seq{1}},
    };
    for (const Row& r : rows) {
        CHECK(topology::watermark(r.positions, r.copies) == r.watermark);
    }
}
