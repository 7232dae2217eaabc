// The master's tracker: only positions verified against its own chain
// count; acks count only when they name the hash that was sent; a diverged
// copy never counts, nor one whose link dropped until its new claim is
// checked; watermark and holders for majority, all and N; the send window
// and the alignment of a copy to the new epoch.
#include <catch2/catch.hpp>

#include "topology/quorum.h"
#include "topology/tracker.h"

using namespace spirit;
using core::Digest;
using core::Epoch;
using core::NodeId;
using core::Seq;
using topology::Chain;
using topology::CopyState;
using topology::Position;
using topology::Tracker;
using topology::Verdict;

namespace {

const NodeId a{"node-a"}, b{"node-b"}, c{"node-c"}, d{"node-d"}, e{"node-e"};

// The master's chain: hash(n) = n; a diverged copy's hash has 0x80 set.
Digest h(std::uint64_t seq, bool diverged = false) {
    Digest out;
    out.bytes[0] = std::byte{static_cast<std::uint8_t>(seq)};
    out.bytes[1] = std::byte{static_cast<std::uint8_t>(seq >> 8)};
    if (diverged) out.bytes[31] = std::byte{0x80};
    return out;
}

Chain chain(std::uint64_t last, std::uint64_t first = 1) {
    return Chain{Seq{first}, h(first - 1), Seq{last}, h(last)};
}

// The master's hash at `seq`, as the daemon would read it.
std::optional<Digest> here(const Chain& ch, Seq seq) {
    if (seq < ch.first_seq.prev() || seq > ch.last_seq) return std::nullopt;
    return h(seq.value());
}

Verdict claim(Tracker& t, const Chain& ch, const NodeId& n, std::uint64_t seq,
              bool diverged = false, std::uint64_t confirmed = 5) {
    Position p{Epoch{confirmed}, Seq{seq}, h(seq, diverged)};
    return t.claim(n, "s", p, here(ch, p.seq));
}

// Sends everything `n` needs in one frame and acks it.
void catch_up(Tracker& t, const NodeId& n) {
    auto range = t.next_send(n, "s");
    REQUIRE(range);
    t.sent(n, "s", range->to, h(range->to.value()), 100);
    REQUIRE(t.ack(n, "s", Position{Epoch{5}, range->to, h(range->to.value())}));
}

}  // namespace

TEST_CASE("a claim counts only once it matches the master's chain", "[topology][unit]") {
    Tracker t(Epoch{5}, {b, c}, 1 << 20);
    const Chain ch = chain(100);
    t.own("s", ch, Epoch{5});
    CHECK(claim(t, ch, b, 100) == Verdict::verified);
    CHECK(claim(t, ch, c, 100, /*diverged=*/true) == Verdict::diverged);
    CHECK(t.copy(b, "s")->matched == Seq{100});
    CHECK(t.copy(c, "s")->matched == Seq{0});  // a diverged copy never counts
    CHECK(t.holders("s", Seq{100}, a) == std::vector<NodeId>{a, b});
    CHECK(t.watermark("s", 3) == Seq{0});
    CHECK(t.watermark("s", 2) == Seq{100});
}

TEST_CASE("a copy that claims more than the master holds has diverged", "[topology][unit]") {
    // The master's store was replaced: its chain is shorter than the slave's.
    Tracker t(Epoch{5}, {b}, 1 << 20);
    const Chain ch = chain(10);
    t.own("s", ch, Epoch{5});
    CHECK(claim(t, ch, b, 50) == Verdict::diverged);
    CHECK(t.copy(b, "s")->matched == Seq{0});
    CHECK(t.holders("s", Seq{10}, a) == std::vector<NodeId>{a});
    auto probes = t.probes(b, "s");
    REQUIRE_FALSE(probes.empty());
    CHECK(probes.back() <= Seq{10});
}

TEST_CASE("acks count only with the hash of what was sent", "[topology][unit]") {
    Tracker t(Epoch{5}, {b}, 1 << 20);
    Chain ch = chain(10);
    t.own("s", ch, Epoch{5});
    REQUIRE(claim(t, ch, b, 10) == Verdict::verified);
    CHECK(t.next_send(b, "s"));  // align once
    ch = chain(20);
    t.own("s", ch, Epoch{5});
    auto range = t.next_send(b, "s");
    REQUIRE(range);
    CHECK(range->from == Seq{11});
    CHECK(range->prev_hash == h(10));
    CHECK(range->to == Seq{20});
    t.sent(b, "s", Seq{20}, h(20), 500);
    CHECK(t.bytes_in_flight(b) == 500);
    CHECK_FALSE(t.ack(b, "s", Position{Epoch{5}, Seq{20}, h(20, true)}));  // wrong hash
    CHECK_FALSE(t.ack(b, "s", Position{Epoch{5}, Seq{15}, h(15)}));        // not a frame end
    CHECK(t.copy(b, "s")->matched == Seq{10});
    CHECK(t.ack(b, "s", Position{Epoch{5}, Seq{20}, h(20)}));
    CHECK(t.copy(b, "s")->matched == Seq{20});
    CHECK(t.bytes_in_flight(b) == 0);
}

TEST_CASE("watermark and holders for majority, all and a count", "[topology][unit]") {
    // Five copies: the master at 50, the replicas at 40, 30, 20 and 10.
    Tracker t(Epoch{5}, {b, c, d, e}, 1 << 20);
    const Chain ch = chain(50);
    t.own("s", ch, Epoch{5});
    const std::vector<std::pair<NodeId, std::uint64_t>> at = {{b, 40}, {c, 30}, {d, 20}, {e, 10}};
    for (const auto& [n, seq] : at) REQUIRE(claim(t, ch, n, seq) == Verdict::verified);
    using K = core::Acks::Kind;
    struct Row {
        core::Acks acks;
        Seq watermark;
    };
    const std::vector<Row> rows = {{{K::majority, 0}, Seq{30}},
                                   {{K::all, 0}, Seq{10}},
                                   {{K::count, 2}, Seq{40}},
                                   {{K::count, 4}, Seq{20}}};
    for (const Row& r : rows) {
        core::StreamPolicy p{core::Redundancy::immediate, r.acks, {}};
        CHECK(t.watermark("s", topology::copies_required(p, 5)) == r.watermark);
    }
    CHECK(t.holders("s", Seq{30}, a) == std::vector<NodeId>{a, b, c});
    CHECK(t.holders("s", Seq{11}, a) == std::vector<NodeId>{a, b, c, d});
    CHECK(t.holders("s", Seq{51}, a).empty());
}

TEST_CASE("a lower claim takes back what was verified", "[topology][unit]") {
    Tracker t(Epoch{5}, {b}, 1 << 20);
    const Chain ch = chain(100);
    t.own("s", ch, Epoch{5});
    REQUIRE(claim(t, ch, b, 100) == Verdict::verified);
    t.link_down(b);
    CHECK(t.copy(b, "s")->matched == Seq{100});  // still durable there
    // It comes back having lost its tail.
    CHECK(claim(t, ch, b, 60) == Verdict::verified);
    CHECK(t.copy(b, "s")->matched == Seq{60});
    CHECK(t.holders("s", Seq{61}, a) == std::vector<NodeId>{a});
}

TEST_CASE("a diverged copy is searched, repaired and counted again", "[topology][unit]") {
    Tracker t(Epoch{5}, {b}, 1 << 20);
    const Chain ch = chain(1000);
    t.own("s", ch, Epoch{5});
    // b's copy agrees up to 700, then holds its own 701..1200.
    REQUIRE(claim(t, ch, b, 1200, true) == Verdict::diverged);
    std::optional<Seq> common;
    for (int round = 0; round < 10 && !common; ++round) {
        std::vector<std::pair<Seq, bool>> same;
        for (Seq p : t.probes(b, "s")) same.emplace_back(p, p <= Seq{700});
        common = t.probed(b, "s", same);
    }
    REQUIRE(common);
    CHECK(*common == Seq{700});
    CHECK(t.copy(b, "s")->state == CopyState::repairing);
    CHECK_FALSE(t.next_send(b, "s"));
    // After the cut it reports its new end, which the master checks.
    CHECK(claim(t, ch, b, 700, false, 5) == Verdict::verified);
    auto range = t.next_send(b, "s");
    REQUIRE(range);
    CHECK(range->from == Seq{701});
}

TEST_CASE("copies are aligned to the new epoch before they count as confirmed",
          "[topology][unit]") {
    Tracker t(Epoch{5}, {b, c}, 1 << 20);
    const Chain ch = chain(30);
    t.own("s", ch, Epoch{5});
    REQUIRE(claim(t, ch, b, 30, false, 4) == Verdict::verified);
    REQUIRE(claim(t, ch, c, 30, false, 5) == Verdict::verified);
    CHECK(t.confirmed_copies("s") == 2);  // the master and c
    auto align = t.next_send(b, "s");
    REQUIRE(align);
    CHECK(align->from == Seq{31});
    CHECK(align->to == Seq{30});  // nothing to send: confirm at 30
    t.sent(b, "s", Seq{30}, h(30), 64);
    CHECK_FALSE(t.next_send(b, "s"));  // once
    REQUIRE(t.ack(b, "s", Position{Epoch{5}, Seq{30}, h(30)}));
    CHECK(t.confirmed_copies("s") == 3);
    CHECK_FALSE(t.next_send(b, "s"));
    // c confirmed the epoch already, but is aligned once after its check.
    auto once = t.next_send(c, "s");
    REQUIRE(once);
    CHECK(once->to == Seq{30});
    t.sent(c, "s", Seq{30}, h(30), 64);
    REQUIRE(t.ack(c, "s", Position{Epoch{5}, Seq{30}, h(30)}));
    CHECK_FALSE(t.next_send(c, "s"));
}

TEST_CASE("the window bounds the bytes in flight to one replica", "[topology][unit]") {
    Tracker t(Epoch{5}, {b}, 1000);
    Chain ch = chain(10);
    t.own("s", ch, Epoch{5});
    t.own("u", ch, Epoch{5});
    REQUIRE(t.claim(b, "s", Position{Epoch{5}, Seq{0}, h(0)}, h(0)) == Verdict::verified);
    REQUIRE(t.claim(b, "u", Position{Epoch{5}, Seq{0}, h(0)}, h(0)) == Verdict::verified);
    t.sent(b, "s", Seq{10}, h(10), 1000);
    CHECK_FALSE(t.next_send(b, "u"));  // the window is per replica
    t.refused(b, "s", "a chain that does not verify");
    CHECK(t.bytes_in_flight(b) == 0);  // a refusal frees its bytes
    CHECK(t.next_send(b, "u"));
    CHECK_FALSE(t.next_send(b, "s"));
    t.link_down(b);
    CHECK(t.copy(b, "s")->state == CopyState::unverified);  // a new link clears the refusal
}

TEST_CASE("a copy behind the master's retained start cannot continue", "[topology][unit]") {
    Tracker t(Epoch{5}, {b}, 1 << 20);
    const Chain ch = chain(100, 50);
    t.own("s", ch, Epoch{5});
    CHECK(claim(t, ch, b, 20) == Verdict::cannot_continue);
    CHECK(t.copy(b, "s")->state == CopyState::refused);
    CHECK_THAT(t.copy(b, "s")->why, Catch::Matchers::Contains("first retained seq 50"));
    // At the retained start it continues from the base hash.
    CHECK(claim(t, ch, b, 49) == Verdict::verified);
}

TEST_CASE("a replica has caught up once every copy reached its target", "[topology][unit]") {
    Tracker t(Epoch{5}, {b}, 1 << 20);
    Chain ch = chain(10);
    t.own("s", ch, Epoch{5});
    REQUIRE(claim(t, ch, b, 0) == Verdict::verified);
    CHECK_FALSE(t.caught_up(b));
    catch_up(t, b);
    CHECK(t.caught_up(b));
}

TEST_CASE("a resume position restarts sending without counting as durable", "[topology][unit]") {
    Tracker t(Epoch{5}, {b}, 1 << 20);
    const Chain ch = chain(50);
    t.own("s", ch, Epoch{5});
    REQUIRE(claim(t, ch, b, 10) == Verdict::verified);
    t.sent(b, "s", Seq{50}, h(50), 900);
    // The replica refused a frame but can continue after 30 (queued, not durable).
    const Position at{Epoch{5}, Seq{30}, h(30)};
    CHECK(t.claim(b, "s", at, h(30), Tracker::Claim::resume) == Verdict::verified);
    CHECK(t.copy(b, "s")->matched == Seq{10});
    CHECK(t.bytes_in_flight(b) == 0);
    auto range = t.next_send(b, "s");
    REQUIRE(range);
    CHECK(range->from == Seq{31});
}

TEST_CASE("a copy whose link dropped counts again only once a new claim is verified",
          "[topology][unit]") {
    // Three copies of an immediate stream at 100, the master's and b's and
    // c's verified; then b's link drops. A retry of seq 100 (a duplicate,
    // answered from the watermark and the holders) must not count b until
    // its new link's claim was checked: it may have come back wiped.
    struct Row {
        const char* what;
        std::optional<std::uint64_t> reclaimed;  // b's claim on the new link, if any yet
        bool diverged;
        std::uint64_t confirmed_epoch;  // in that claim
        Seq watermark_all;              // acks = all (3 copies)
        std::vector<NodeId> holders_100;
        std::size_t confirmed;
    };
    const std::vector<Row> rows = {
        {"no claim yet", std::nullopt, false, 5, Seq{0}, {a, c}, 2},
        {"back wiped", 0, false, 0, Seq{0}, {a, c}, 2},
        {"back rolled back to 60", 60, false, 5, Seq{60}, {a, c}, 3},
        {"back whole", 100, false, 5, Seq{100}, {a, b, c}, 3},
        {"back with another copy", 100, true, 5, Seq{0}, {a, c}, 2},
    };
    for (const Row& row : rows) {
        DYNAMIC_SECTION(row.what) {
            Tracker t(Epoch{5}, {b, c}, 1 << 20);
            const Chain ch = chain(100);
            t.own("s", ch, Epoch{5});
            REQUIRE(claim(t, ch, b, 100) == Verdict::verified);
            REQUIRE(claim(t, ch, c, 100) == Verdict::verified);
            REQUIRE(t.watermark("s", 3) == Seq{100});
            REQUIRE(t.holders("s", Seq{100}, a) == std::vector<NodeId>{a, b, c});
            t.link_down(b);
            CHECK(t.copy(b, "s")->matched == Seq{100});  // kept for lag, not counted
            if (row.reclaimed) {
                (void)claim(t, ch, b, *row.reclaimed, row.diverged, row.confirmed_epoch);
            }
            CHECK(t.watermark("s", 3) == row.watermark_all);
            CHECK(t.watermark("s", 2) == Seq{100});  // the master and c
            CHECK(t.holders("s", Seq{100}, a) == row.holders_100);
            CHECK(t.confirmed_copies("s") == row.confirmed);
        }
    }
}

TEST_CASE("what is sealed is sent before it is durable, and the master counts once it is",
          "[topology][unit]") {
    Tracker t(Epoch{5}, {b, c}, 1 << 20);
    Chain ch = chain(10);
    t.own("s", ch, Epoch{5});
    REQUIRE(claim(t, ch, b, 10) == Verdict::verified);
    REQUIRE(claim(t, ch, c, 10) == Verdict::verified);
    t.sealed("s", Seq{20});
    CHECK(t.sendable("s") == Seq{20});
    auto range = t.next_send(b, "s");
    REQUIRE(range);
    CHECK(range->from == Seq{11});
    CHECK(range->to == Seq{20});
    t.sent(b, "s", Seq{20}, h(20), 100);
    REQUIRE(t.ack(b, "s", Position{Epoch{5}, Seq{20}, h(20)}));
    // One replica holds 11..20, the master is still committing them: two
    // copies of three hold only up to 10, and the master is no holder yet.
    CHECK(t.watermark("s", 2) == Seq{10});
    CHECK(t.holders("s", Seq{20}, a) == std::vector<NodeId>{b});
    // Two replicas durable before the master: a majority holds them.
    t.sent(c, "s", Seq{20}, h(20), 100);
    REQUIRE(t.ack(c, "s", Position{Epoch{5}, Seq{20}, h(20)}));
    CHECK(t.watermark("s", 2) == Seq{20});
    CHECK(t.watermark("s", 3) == Seq{10});
    // The master's commit lands.
    ch = chain(20);
    t.own("s", ch, Epoch{5});
    CHECK(t.watermark("s", 3) == Seq{20});
    CHECK(t.holders("s", Seq{20}, a) == std::vector<NodeId>{a, b, c});
    CHECK(t.sendable("s") == Seq{20});
    CHECK_FALSE(t.next_send(b, "s"));
}

TEST_CASE("sealing needs an own chain, and a cut drops what was sealed beyond it",
          "[topology][unit]") {
    Tracker t(Epoch{5}, {b}, 1 << 20);
    t.sealed("new", Seq{3});  // no chain yet: sent once committed
    CHECK(t.sendable("new") == Seq{0});
    Chain ch = chain(10);
    t.own("s", ch, Epoch{5});
    t.sealed("s", Seq{15});
    t.sealed("s", Seq{12});  // never backwards
    CHECK(t.sendable("s") == Seq{15});
    ch = chain(8);  // completion cut this copy
    t.own("s", ch, Epoch{5});
    CHECK(t.sendable("s") == Seq{8});
}

TEST_CASE("a deleted stream is forgotten with its copies and what was in flight of it",
          "[topology][unit]") {
    Tracker t(Epoch{5}, {b}, 1 << 20);
    Chain ch = chain(10);
    t.own("s", ch, Epoch{5});
    t.own("other", ch, Epoch{5});
    REQUIRE(claim(t, ch, b, 0) == Verdict::verified);
    auto range = t.next_send(b, "s");
    REQUIRE(range);
    t.sent(b, "s", range->to, h(range->to.value()), 700);
    CHECK(t.bytes_in_flight(b) == 700);
    t.forget("s");
    CHECK(t.bytes_in_flight(b) == 0);
    CHECK(t.own_chain("s") == nullptr);
    CHECK(t.copy(b, "s") == nullptr);
    CHECK(t.streams() == std::vector<std::string>{"other"});
    // A stream of that name made again starts from nothing.
    t.own("s", chain(0), Epoch{5});
    CHECK(t.copy(b, "s") == nullptr);
}
