// Completion: when a new master has heard enough, and which copy of each
// stream it adopts. The order is (confirmed epoch, seq); fresh copies never
// count; the gather waits for reachable peers for a bounded time.
#include <catch2/catch.hpp>

#include "topology/completion.h"
#include "topology/quorum.h"

using namespace spirit;
using core::Epoch;
using core::NodeId;
using core::Seq;
using topology::Completion;
using topology::CopyFreshness;
using topology::CopyReport;
using topology::Position;

namespace {

const NodeId a{"node-a"}, b{"node-b"}, c{"node-c"};

core::Digest hash(std::uint8_t tag) {
    core::Digest d;
    d.bytes[0] = std::byte{tag};
    return d;
}

CopyReport copy(const std::string& stream, std::uint64_t confirmed, std::uint64_t seq) {
    return CopyReport{stream, Position{Epoch{confirmed}, Seq{seq}, hash(std::uint8_t(seq))}, {}};
}

Completion three(std::uint64_t grace = 0) {
    return Completion({.self = a, .replicas = 3, .grace_ticks = grace}, Epoch{5});
}

}  // namespace

TEST_CASE("completion adopts the highest copy by confirmed epoch, then seq", "[topology][unit]") {
    struct Row {
        const char* story;
        std::vector<std::pair<NodeId, CopyReport>> reports;
        NodeId source;
        std::uint64_t seq;
    };
    const std::vector<Row> rows = {
        {"the longest of one epoch", {{a, copy("s", 3, 10)}, {b, copy("s", 3, 12)}}, b, 12},
        // Raft's figure 8: a longer copy of an older epoch loses to a shorter
        // copy that aligned with a later master.
        {"a later confirmed epoch beats a longer copy",
         {{a, copy("s", 2, 20)}, {b, copy("s", 3, 15)}},
         b,
         15},
        {"a tie ranks this node first", {{a, copy("s", 3, 10)}, {b, copy("s", 3, 10)}}, a, 10},
        {"a tie between peers ranks the smaller id",
         {{a, copy("s", 1, 4)}, {b, copy("s", 3, 10)}, {c, copy("s", 3, 10)}},
         b,
         10},
        {"a stream only a peer holds", {{a, copy("t", 3, 1)}, {b, copy("s", 3, 7)}}, b, 7},
    };
    for (const Row& row : rows) {
        INFO(row.story);
        auto completion = three();
        std::map<NodeId, std::vector<CopyReport>> by_node;
        for (const auto& [node, r] : row.reports) by_node[node].push_back(r);
        for (auto& [node, copies] : by_node) {
            completion.report(node, CopyFreshness::caught_up, copies);
        }
        REQUIRE(completion.gathered());
        bool seen = false;
        for (const auto& choice : completion.choices()) {
            if (choice.stream != "s") continue;
            seen = true;
            CHECK(choice.source == row.source);
            CHECK(choice.target.seq == Seq{row.seq});
        }
        CHECK(seen);
    }
}

TEST_CASE("a majority of reports that are not fresh is needed", "[topology][unit]") {
    auto completion = three();
    completion.report(a, CopyFreshness::caught_up, {copy("s", 1, 5)});
    CHECK_FALSE(completion.gathered());
    CHECK_THAT(completion.waiting_for(), Catch::Matchers::Contains("2 that are not fresh"));
    completion.report(b, CopyFreshness::fresh, {});
    CHECK_FALSE(completion.gathered());  // a wiped copy may have lost acknowledged writes
    completion.report(c, CopyFreshness::caught_up, {copy("s", 1, 9)});
    REQUIRE(completion.gathered());
    REQUIRE(completion.choices().size() == 1);
    CHECK(completion.choices()[0].source == c);
}

TEST_CASE("a fresh master does not count its own empty copy", "[topology][unit]") {
    auto completion = three();
    completion.report(a, CopyFreshness::fresh, {});
    completion.report(b, CopyFreshness::caught_up, {copy("s", 4, 90)});
    CHECK_FALSE(completion.gathered());
    completion.report(c, CopyFreshness::caught_up, {copy("s", 4, 100)});
    REQUIRE(completion.gathered());
    CHECK(completion.choices()[0].source == c);
    CHECK(completion.choices()[0].target.seq == Seq{100});
}

TEST_CASE("a new group is a majority of fresh, empty reports", "[topology][unit]") {
    auto completion = three();
    completion.report(a, CopyFreshness::fresh, {});
    CHECK_FALSE(completion.gathered());
    completion.report(b, CopyFreshness::fresh, {});
    CHECK(completion.gathered());
    CHECK(completion.choices().empty());
}

TEST_CASE("the gather waits for reachable peers until the grace ends", "[topology][unit]") {
    auto completion = three(3);
    completion.set_reachable({b, c});
    completion.report(a, CopyFreshness::caught_up, {copy("s", 1, 5)});
    completion.report(b, CopyFreshness::caught_up, {copy("s", 1, 5)});
    CHECK_FALSE(completion.gathered());  // c is connected: hear it, it may hold more
    completion.tick();
    completion.tick();
    CHECK_FALSE(completion.gathered());
    completion.tick();
    CHECK(completion.gathered());  // c never answered: go on with a majority
    auto waiting = three(3);
    waiting.set_reachable({b});
    waiting.report(a, CopyFreshness::caught_up, {});
    waiting.report(b, CopyFreshness::caught_up, {});
    CHECK(waiting.gathered());  // everyone reachable has reported
}

TEST_CASE("the master's own report is needed", "[topology][unit]") {
    auto completion = three();
    completion.report(b, CopyFreshness::caught_up, {});
    completion.report(c, CopyFreshness::caught_up, {});
    CHECK_FALSE(completion.gathered());
}

TEST_CASE("two data nodes complete from the survivor's own copy", "[topology][unit]") {
    // Two data nodes and a witness: an immediate stream's acks is both, so
    // every acknowledged write is on the survivor; waiting for the other
    // would make failover impossible.
    Completion completion({.self = b, .replicas = 2, .grace_ticks = 0}, Epoch{3});
    CHECK_FALSE(completion.gathered());
    completion.report(b, CopyFreshness::caught_up, {copy("s", 2, 7)});
    REQUIRE(completion.gathered());
    REQUIRE(completion.choices().size() == 1);
    CHECK(completion.choices()[0].source == b);
    // A fresh survivor has nothing to adopt from itself: it must hear the other.
    Completion wiped({.self = b, .replicas = 2, .grace_ticks = 0}, Epoch{3});
    wiped.report(b, CopyFreshness::fresh, {});
    CHECK_FALSE(wiped.gathered());
    wiped.report(a, CopyFreshness::caught_up, {copy("s", 2, 7)});
    CHECK(wiped.gathered());
    CHECK(topology::completion_quorum(1) == 1);
    CHECK(topology::completion_quorum(2) == 1);
    CHECK(topology::completion_quorum(3) == 2);
    CHECK(topology::completion_quorum(4) == 2);
    CHECK(topology::completion_quorum(5) == 3);
}
