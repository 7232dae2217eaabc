// The search for the last common seq of two copies: every outcome of every
// range, against a brute-force oracle, and the number of rounds it takes.
#include <catch2/catch.hpp>

#include "topology/divergence.h"

using namespace spirit;
using core::Seq;
using topology::DivergenceSearch;

namespace {

// Runs a search where the copies agree up to `common` (inclusive) and
// returns {found common, rounds}. `floor_agrees` false: they differ already
// at the floor.
std::pair<std::optional<Seq>, int> run(Seq floor, Seq differs, std::uint64_t common,
                                       std::size_t per_round) {
    DivergenceSearch search(floor, differs, per_round);
    int rounds = 0;
    while (!search.done() && !search.unrepairable()) {
        auto probes = search.probes();
        REQUIRE_FALSE(probes.empty());
        REQUIRE(probes.size() <= per_round + 1);
        for (Seq p : probes) {
            REQUIRE(p >= floor);
            REQUIRE(p < differs);
            search.answer(p, p.value() <= common);
        }
        REQUIRE(++rounds < 100);
    }
    if (search.unrepairable()) return {std::nullopt, rounds};
    return {search.common(), rounds};
}

}  // namespace

TEST_CASE("the search finds the last common seq for every split point", "[topology][unit]") {
    for (std::size_t per_round : {std::size_t{1}, std::size_t{3}, std::size_t{15}}) {
        for (std::uint64_t floor : {0ULL, 5ULL}) {
            for (std::uint64_t end = floor + 1; end < floor + 40; ++end) {
                for (std::uint64_t common = floor; common < end; ++common) {
                    INFO("floor " << floor << " end " << end << " common " << common
                                  << " per round " << per_round);
                    auto [found, rounds] = run(Seq{floor}, Seq{end}, common, per_round);
                    REQUIRE(found);
                    CHECK(*found == Seq{common});
                }
            }
        }
    }
}

TEST_CASE("copies that differ at the floor cannot be repaired", "[topology][unit]") {
    // Below the floor this side has nothing to compare.
    auto [found, rounds] = run(Seq{10}, Seq{50}, 9, 15);
    CHECK_FALSE(found);
    CHECK(rounds == 1);
    // The genesis always agrees: a floor of 0 is never unrepairable.
    auto [from_genesis, r2] = run(Seq{0}, Seq{50}, 0, 15);
    REQUIRE(from_genesis);
    CHECK(*from_genesis == Seq{0});
}

TEST_CASE("a million-event range takes a handful of rounds", "[topology][unit]") {
    auto [found, rounds] = run(Seq{0}, Seq{1'000'001}, 765'432, 15);
    REQUIRE(found);
    CHECK(*found == Seq{765'432});
    CHECK(rounds <= 6);  // log16(10^6) is 5
}

TEST_CASE("answers from a stale round are ignored", "[topology][unit]") {
    DivergenceSearch search(Seq{0}, Seq{100}, 3);
    search.answer(Seq{50}, true);
    search.answer(Seq{40}, false);   // below what is known to agree: stale
    search.answer(Seq{150}, false);  // outside the range
    search.answer(Seq{75}, false);
    auto probes = search.probes();
    REQUIRE_FALSE(probes.empty());
    CHECK(probes.front() > Seq{50});
    CHECK(probes.back() < Seq{75});
}
