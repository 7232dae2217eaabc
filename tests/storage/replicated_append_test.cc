// A slave's copy: envelopes read from one store (the master's) are appended
// to another with append_replicated and end byte-identical; resends are
// skipped; gaps, forged or reordered envelopes are refused with errors that
// name the stream, the seq and the hashes, and nothing after them is stored.
#include <catch2/catch.hpp>

#include "core/codec.h"
#include "tests/storage/store_fixture.h"

using namespace spirit;
using Catch::Matchers::Contains;
using test::StoreFixture;

namespace {

struct Batch {
    core::Seq prev_seq;
    core::Digest prev_hash;
    std::vector<core::Bytes> envelopes;
    std::vector<core::ByteView> views() const {
        return std::vector<core::ByteView>(envelopes.begin(), envelopes.end());
    }
};

// Envelopes [from, to] of the master's stream, with the hash they chain on.
Batch read_from(StoreFixture& master, std::uint64_t from, std::uint64_t to) {
    Batch b;
    b.prev_seq = core::Seq{from - 1};
    auto info = master.store().stream_info("s");
    REQUIRE(*info);
    if (from == (*info)->first_seq.value()) {
        b.prev_hash = (*info)->base_hash;
    } else {
        REQUIRE(master.store().read("s", {.from_seq = core::Seq{from - 1}, .events_max = 1},
                                    [&](const core::EnvelopeView& e, core::ByteView) {
                                        b.prev_hash = e.hash;
                                        return storage::Visit::next;
                                    }));
    }
    REQUIRE(master.store().read("s", {.from_seq = core::Seq{from}, .events_max = to - from + 1},
                                [&](const core::EnvelopeView&, core::ByteView encoded) {
                                    b.envelopes.emplace_back(encoded.begin(), encoded.end());
                                    return storage::Visit::next;
                                }));
    return b;
}

core::Result<storage::AppendResult> replicate(StoreFixture& slave, const Batch& b) {
    std::vector<core::ByteView> views = b.views();
    std::atomic<bool> done{false};
    std::optional<core::Result<storage::AppendResult>> out;
    auto queued = slave.store().append_replicated(
        {.stream = "s", .prev_seq = b.prev_seq, .prev_hash = b.prev_hash, .envelopes = views},
        [&](core::Result<storage::AppendResult> r) {
            out = std::move(r);
            done = true;
        });
    if (!queued) return core::Unexpected{queued.error()};
    while (!done) slave.store().drain_completed();
    return std::move(*out);
}

}  // namespace

TEST_CASE("a replicated copy ends byte-identical to the master's", "[storage][unit]") {
    StoreFixture master;
    StoreFixture slave;
    master.append_n("s", 100, 7);
    REQUIRE(replicate(slave, read_from(master, 1, 40)));
    auto r = replicate(slave, read_from(master, 41, 100));
    REQUIRE(r);
    CHECK(r->first_seq == core::Seq{41});
    CHECK(r->last_seq == core::Seq{100});
    auto m = master.store().stream_info("s");
    auto s = slave.store().stream_info("s");
    CHECK((*s)->last_hash == (*m)->last_hash);
    CHECK(slave.payloads("s") == master.payloads("s"));
    CHECK_FALSE(slave.store().verify("s")->first_break);

    SECTION("a resend of what the copy holds is skipped") {
        auto again = replicate(slave, read_from(master, 90, 100));
        REQUIRE(again);
        CHECK(again->stored == 0);
        master.append_n("s", 5);
        auto overlap = replicate(slave, read_from(master, 95, 105));
        REQUIRE(overlap);
        CHECK(overlap->first_seq == core::Seq{101});
        CHECK((*slave.store().stream_info("s"))->last_hash ==
              (*master.store().stream_info("s"))->last_hash);
    }
    SECTION("a gap is refused") {
        master.append_n("s", 10);
        auto gap = replicate(slave, read_from(master, 105, 110));
        REQUIRE_FALSE(gap);
        CHECK(gap.error().is(core::errc::invalid_argument));
        CHECK_THAT(gap.error().detail, Contains("this copy ends at seq 100"));
    }
}

TEST_CASE("a copy may start where the master's retained stream starts", "[storage][unit]") {
    StoreFixture master;
    StoreFixture slave;
    master.append_n("s", 50);
    REQUIRE(master.store().trim_before_sync("s", core::Seq{31}));
    REQUIRE(replicate(slave, read_from(master, 31, 50)));
    auto info = slave.store().stream_info("s");
    CHECK((*info)->first_seq == core::Seq{31});
    CHECK((*info)->last_hash == (*master.store().stream_info("s"))->last_hash);
    CHECK_FALSE(slave.store().verify("s")->first_break);
}

TEST_CASE("a forged or altered envelope is refused and nothing after it is stored",
          "[storage][unit]") {
    StoreFixture master;
    StoreFixture slave;
    master.append_n("s", 20);
    REQUIRE(replicate(slave, read_from(master, 1, 10)));
    Batch b = read_from(master, 11, 20);
    SECTION("a flipped payload byte") {
        b.envelopes[3][b.envelopes[3].size() - 35] ^= std::byte{1};  // last payload byte
        auto r = replicate(slave, b);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::hash_mismatch));
        CHECK_THAT(r.error().detail, Contains("stream s seq 14: hash mismatch"));
    }
    SECTION("a wrong previous hash") {
        b.prev_hash.bytes[0] ^= std::byte{1};
        auto r = replicate(slave, b);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::hash_mismatch));
        CHECK_THAT(r.error().detail, Contains("stream s seq 11"));
    }
    SECTION("events out of order") {
        std::swap(b.envelopes[0], b.envelopes[1]);
        auto r = replicate(slave, b);
        REQUIRE_FALSE(r);
    }
    CHECK((*slave.store().stream_info("s"))->last_seq == core::Seq{10});
    CHECK_FALSE(slave.store().verify("s")->first_break);
}
