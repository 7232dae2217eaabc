// A slave's copy: envelopes read from one store (the master's) are appended
// to another with append_replicated and end byte-identical; resends are
// skipped; gaps, forged or reordered envelopes, another stream's envelope,
// an epoch out of order and a master of a stale epoch are refused with the
// exact code and a detail that names the stream, the seq, the field and the
// hashes or epochs, and nothing after them is stored. The copy's confirmed
// epoch follows the masters that append to it once it holds their history
// (where their copy was when their epoch began), and the replicated event ids
// answer a retry that reaches the copy once it is master, also after a
// reopen.
#include <catch2/catch.hpp>

#include "core/codec.h"
#include "core/hash_chain.h"
#include "tests/storage/store_fixture.h"

using namespace spirit;
using Catch::Matchers::Contains;
using test::StoreFixture;

namespace {

struct Batch {
    core::Seq prev_seq;
    core::Digest prev_hash;
    std::vector<core::Bytes> envelopes;
    core::Epoch epoch{1};  // the sending master's
    core::Seq history;     // where the sending master's copy began its epoch
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
    auto queued = slave.store().append_replicated({.stream = "s",
                                                   .epoch = b.epoch,
                                                   .prev_seq = b.prev_seq,
                                                   .prev_hash = b.prev_hash,
                                                   .envelopes = views,
                                                   .history = b.history},
                                                  [&](core::Result<storage::AppendResult> r) {
                                                      out = std::move(r);
                                                      done = true;
                                                  });
    if (!queued) return core::Unexpected{queued.error()};
    while (!done) slave.store().drain_completed();
    return std::move(*out);
}

// Appends `count` events to the master's "s" in `epoch`, with ids first_id ...
void append_in_epoch(StoreFixture& master, core::Epoch epoch, std::uint64_t count,
                     std::uint64_t first_id = 0) {
    test::Batch b;
    for (std::uint64_t i = 0; i < count; ++i) {
        b.add("e" + std::to_string(i),
              first_id == 0 ? std::nullopt
                            : std::optional<core::EventId>(test::event_id(first_id + i)));
    }
    auto r = master.store().append_sync({.stream = "s", .events = b.events(), .epoch = epoch});
    REQUIRE(r);
}

// An envelope of `stream` at `seq` in `epoch`, chained on `prev`: what a
// faulty or forged master could send.
core::Bytes forge(std::string_view stream, core::Seq seq, core::Epoch epoch,
                  const core::Digest& prev) {
    core::Bytes out;
    const std::string payload = "forged";
    core::seal_envelope(out,
                        {stream,
                         seq,
                         epoch,
                         core::TimestampNs{1'700'000'000'000'000'000ULL},
                         test::event_id(999),
                         "test",
                         {},
                         core::as_bytes(payload),
                         {}},
                        prev);
    return out;
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
        // Seq 12 does not chain on seq 10's hash.
        CHECK(r.error().is(core::errc::hash_mismatch));
        CHECK_THAT(r.error().detail, Contains("stream s seq 12: hash mismatch"));
    }
    SECTION("another stream's envelope") {
        // Stream t's first envelope chains on the genesis hash, as s's does.
        StoreFixture other;
        other.append_n("t", 1);
        Batch t{core::Seq{0}, core::genesis_hash, other.envelopes("t", core::Seq{1}, core::Seq{1})};
        StoreFixture fresh;
        auto r = replicate(fresh, t);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::invalid_argument));
        CHECK_THAT(r.error().detail, Contains("stream s seq 1: the envelope's stream field is t"));
        CHECK_FALSE(*fresh.store().stream_info("s"));  // a refused copy creates nothing
    }
    SECTION("a seq field out of place") {
        Batch skip = read_from(master, 12, 20);
        skip.prev_seq = core::Seq{10};
        skip.prev_hash = (*slave.store().stream_info("s"))->last_hash;
        skip.envelopes.erase(skip.envelopes.begin());  // 12 chains on 11's hash: refused as such
        auto r = replicate(slave, skip);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::hash_mismatch));
        Batch forged{core::Seq{10},
                     skip.prev_hash,
                     {forge("s", core::Seq{12}, core::Epoch{1}, skip.prev_hash)}};
        r = replicate(slave, forged);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::invalid_argument));
        CHECK_THAT(r.error().detail, Contains("stream s: expected seq 11, the envelope's seq "
                                              "field is 12"));
    }
    CHECK((*slave.store().stream_info("s"))->last_seq == core::Seq{10});
    CHECK_FALSE(slave.store().verify("s")->first_break);
}

TEST_CASE("a copy's confirmed epoch follows the masters that append to it", "[storage][unit]") {
    StoreFixture master;
    StoreFixture slave;
    append_in_epoch(master, core::Epoch{2}, 5);
    Batch first = read_from(master, 1, 3);
    first.epoch = core::Epoch{3};  // master of epoch 3 sends what epoch 2 sealed
    REQUIRE(replicate(slave, first));
    auto info = *slave.store().stream_info("s");
    CHECK(info->confirmed_epoch == core::Epoch{3});  // created by the copy: its master's epoch
    CHECK(info->last_epoch == core::Epoch{2});

    SECTION("a later master raises it") {
        Batch next = read_from(master, 4, 5);
        next.epoch = core::Epoch{4};
        REQUIRE(replicate(slave, next));
        CHECK((*slave.store().stream_info("s"))->confirmed_epoch == core::Epoch{4});
        slave.reopen();
        CHECK((*slave.store().stream_info("s"))->confirmed_epoch == core::Epoch{4});
    }
    SECTION("a copy short of the master's history keeps its epoch until it holds it") {
        // The master of epoch 4 began its epoch holding seq 5: a copy of
        // seqs 1..4 has not its whole history and stays confirmed in 3.
        Batch part = read_from(master, 4, 4);
        part.epoch = core::Epoch{4};
        part.history = core::Seq{5};
        REQUIRE(replicate(slave, part));
        CHECK((*slave.store().stream_info("s"))->confirmed_epoch == core::Epoch{3});
        slave.reopen();
        CHECK((*slave.store().stream_info("s"))->confirmed_epoch == core::Epoch{3});
        Batch rest = read_from(master, 5, 5);
        rest.epoch = core::Epoch{4};
        rest.history = core::Seq{5};
        REQUIRE(replicate(slave, rest));
        CHECK((*slave.store().stream_info("s"))->confirmed_epoch == core::Epoch{4});
    }
    SECTION("a copy created short of the master's history has no confirmed epoch") {
        StoreFixture fresh;
        Batch part = read_from(master, 1, 2);
        part.epoch = core::Epoch{4};
        part.history = core::Seq{5};
        REQUIRE(replicate(fresh, part));
        CHECK((*fresh.store().stream_info("s"))->confirmed_epoch == core::Epoch{0});
        Batch rest = read_from(master, 3, 5);
        rest.epoch = core::Epoch{4};
        rest.history = core::Seq{5};
        REQUIRE(replicate(fresh, rest));
        CHECK((*fresh.store().stream_info("s"))->confirmed_epoch == core::Epoch{4});
    }
    SECTION("a resend that adds nothing leaves it") {
        Batch again = read_from(master, 2, 3);
        again.epoch = core::Epoch{5};
        auto r = replicate(slave, again);
        REQUIRE(r);
        CHECK(r->stored == 0);
        CHECK((*slave.store().stream_info("s"))->confirmed_epoch == core::Epoch{3});
    }
    SECTION("a master of an older epoch is refused") {
        Batch stale = read_from(master, 4, 5);
        stale.epoch = core::Epoch{2};
        auto r = replicate(slave, stale);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::stale_epoch));
        CHECK(r.error().detail == "stream s: epoch 2 is older than the copy's confirmed epoch 3");
        CHECK((*slave.store().stream_info("s"))->last_seq == core::Seq{3});
    }
    SECTION("an envelope of an epoch above its master's is refused") {
        Batch ahead = read_from(master, 4, 5);
        ahead.epoch = core::Epoch{1};
        auto r = replicate(slave, ahead);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::stale_epoch));  // 1 is below the confirmed 3 first
        StoreFixture fresh;
        Batch from_start = read_from(master, 1, 2);
        from_start.epoch = core::Epoch{1};
        r = replicate(fresh, from_start);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::invalid_argument));
        CHECK_THAT(r.error().detail, Contains("stream s seq 1: the envelope's epoch field 2 is "
                                              "newer than the sending master's epoch 1"));
    }
    SECTION("an envelope of an epoch below the one before it is refused") {
        const core::Digest prev = (*slave.store().stream_info("s"))->last_hash;
        Batch older{core::Seq{3}, prev, {forge("s", core::Seq{4}, core::Epoch{1}, prev)}};
        older.epoch = core::Epoch{3};
        auto r = replicate(slave, older);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::invalid_argument));
        CHECK(r.error().detail ==
              "stream s seq 4: the envelope's epoch field 1 is older than the epoch 2 before it");
        CHECK((*slave.store().stream_info("s"))->last_seq == core::Seq{3});
    }
}

TEST_CASE("replicated event ids answer a retry once the copy is master", "[storage][unit]") {
    // A slave records no ids as it replicates; rebuild_id_window() reads
    // them from its events when it becomes master.
    StoreFixture master;
    StoreFixture slave;
    append_in_epoch(master, core::Epoch{1}, 3, 100);  // ids 100..102 at seqs 1..3
    master.append_n("s", 2);                          // generated ids at seqs 4..5
    append_in_epoch(master, core::Epoch{1}, 2, 200);  // ids 200..201 at seqs 6..7

    auto retry = [&](std::uint64_t id) {
        test::Batch b;
        b.add("retry", test::event_id(id));
        return slave.store().append_sync(
            {.stream = "s", .events = b.events(), .epoch = core::Epoch{2}});
    };
    SECTION("in the window, and after a reopen") {
        REQUIRE(replicate(slave, read_from(master, 1, 7)));
        REQUIRE(slave.store().rebuild_id_window());  // it becomes master
        auto r = retry(101);
        REQUIRE(r);
        CHECK(r->stored == 0);
        REQUIRE(r->duplicates.size() == 1);
        CHECK(r->duplicates[0].seq == core::Seq{2});
        slave.reopen();
        REQUIRE(slave.store().rebuild_id_window());
        r = retry(201);
        REQUIRE(r);
        CHECK(r->stored == 0);
        CHECK(r->duplicates.at(0).seq == core::Seq{7});
        r = retry(300);  // a new id is a new event
        REQUIRE(r);
        CHECK(r->first_seq == core::Seq{8});
    }
    SECTION("ids already older than the window are not recorded") {
        slave.clock.advance_ms(slave.store().options().dedup_window_ms + 1);
        REQUIRE(replicate(slave, read_from(master, 1, 7)));
        REQUIRE(slave.store().rebuild_id_window());
        auto r = retry(101);
        REQUIRE(r);
        CHECK(r->stored == 1);
        CHECK(r->first_seq == core::Seq{8});
    }
    SECTION("a refused batch records no ids") {
        Batch bad = read_from(master, 1, 7);
        bad.envelopes[6][bad.envelopes[6].size() - 35] ^= std::byte{1};
        REQUIRE_FALSE(replicate(slave, bad));
        REQUIRE(slave.store().rebuild_id_window());
        auto r = retry(101);
        REQUIRE(r);
        CHECK(r->stored == 1);
        CHECK(r->first_seq == core::Seq{1});
    }
}

TEST_CASE("the rebuilt window keeps the newest ids and drops the old", "[storage][unit]") {
    StoreFixture f;
    append_in_epoch(f, core::Epoch{1}, 3, 100);  // ids 100..102
    f.clock.advance_ms(f.store().options().dedup_window_ms + 1);
    append_in_epoch(f, core::Epoch{1}, 2, 200);  // ids 200..201, inside the window
    REQUIRE(f.store().rebuild_id_window());
    test::Batch old_one, new_one;
    old_one.add("again", test::event_id(100));
    new_one.add("again", test::event_id(201));
    auto r = f.store().append_sync({.stream = "s", .events = new_one.events()});
    REQUIRE(r);
    CHECK(r->stored == 0);
    CHECK(r->duplicates.at(0).seq == core::Seq{5});
    r = f.store().append_sync({.stream = "s", .events = old_one.events()});
    REQUIRE(r);
    CHECK(r->stored == 1);  // outside the window: a new event
}
