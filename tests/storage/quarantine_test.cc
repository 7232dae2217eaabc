// Truncation into quarantine, on real LMDB files: the removed envelopes are
// in the quarantine byte for byte (re-sealed on the chain they had), listed
// per stream with their seqs and epochs and read back in pages; their event
// ids leave the idempotency window and the ids database, so re-publishing
// one with its id (also after a reopen) stores it anew; an undecodable
// envelope in the removed range (planted in LMDB by hand) fails the
// truncation with `corrupt` and moves nothing; a deleted stream's
// quarantine stays listed under its name.
#include <catch2/catch.hpp>

#include <set>

#include "core/codec.h"
#include "core/hash_chain.h"
#include "storage/keys.h"
#include "tests/storage/raw_lmdb.h"
#include "tests/storage/store_fixture.h"

using namespace spirit;
using Catch::Matchers::Contains;
using test::Batch;
using test::StoreFixture;

namespace {

void append_ids(StoreFixture& f, const std::string& stream, core::Epoch epoch,
                std::uint64_t first_id, std::uint64_t count) {
    Batch b;
    for (std::uint64_t i = 0; i < count; ++i) {
        b.add(stream + "-id-" + std::to_string(first_id + i), test::event_id(first_id + i));
    }
    REQUIRE(f.store().append_sync({.stream = stream, .events = b.events(), .epoch = epoch}));
}

core::Result<storage::AppendResult> publish(StoreFixture& f, const std::string& stream,
                                            std::uint64_t id) {
    Batch b;
    b.add("again-" + std::to_string(id), test::event_id(id));
    return f.store().append_sync({.stream = stream, .events = b.events()});
}

std::vector<std::uint64_t> seqs_of(const std::vector<storage::QuarantinedEvent>& events) {
    std::vector<std::uint64_t> out;
    for (const auto& e : events) out.push_back(e.seq.value());
    return out;
}

}  // namespace

TEST_CASE("truncation quarantines the suffix byte for byte and lists it", "[storage][unit]") {
    StoreFixture f;
    f.append_n("a", 8);
    const std::vector<core::Bytes> removed = f.envelopes("a", core::Seq{3}, core::Seq{8});
    REQUIRE(f.store().truncate_after_sync("a", core::Seq{3}));

    // b: seqs 3..5 of epoch 1 removed, then seqs 4..5 of epoch 2.
    append_ids(f, "b", core::Epoch{1}, 1, 5);
    REQUIRE(f.store().truncate_after_sync("b", core::Seq{2}));
    append_ids(f, "b", core::Epoch{2}, 11, 3);
    REQUIRE(f.store().truncate_after_sync("b", core::Seq{3}));

    auto streams = f.store().quarantine_streams();
    REQUIRE(streams);
    REQUIRE(streams->size() == 2);
    const storage::QuarantineSummary& a = (*streams)[0];
    CHECK(a.stream == "a");
    CHECK(a.count == 5);
    CHECK(a.seq_min == core::Seq{4});
    CHECK(a.seq_max == core::Seq{8});
    REQUIRE(a.epochs.size() == 1);
    CHECK(a.epochs[0].epoch == core::Epoch{1});
    CHECK(a.epochs[0].count == 5);
    const storage::QuarantineSummary& b = (*streams)[1];
    CHECK(b.stream == "b");
    CHECK(b.count == 5);
    CHECK(b.seq_min == core::Seq{3});
    CHECK(b.seq_max == core::Seq{5});
    REQUIRE(b.epochs.size() == 2);
    CHECK(b.epochs[0].epoch == core::Epoch{1});
    CHECK(b.epochs[0].count == 3);
    CHECK(b.epochs[1].epoch == core::Epoch{2});
    CHECK(b.epochs[1].count == 2);

    // a's entries re-seal to the exact bytes that were removed.
    std::vector<storage::QuarantinedEvent> qa = f.quarantined("a");
    REQUIRE(seqs_of(qa) == std::vector<std::uint64_t>{4, 5, 6, 7, 8});
    for (std::size_t i = 0; i < qa.size(); ++i) {
        INFO("seq " << qa[i].seq.value());
        const core::Digest prev = core::decode_envelope(removed[i])->hash;  // of seq 3 + i
        core::Bytes resealed;
        CHECK(core::seal_envelope(resealed, qa[i].envelope.view(), prev) == qa[i].envelope.hash);
        CHECK(resealed == removed[i + 1]);
        CHECK(qa[i].epoch == core::Epoch{1});
        CHECK(qa[i].envelope.seq == qa[i].seq);
    }
    std::vector<storage::QuarantinedEvent> qb = f.quarantined("b");
    CHECK(seqs_of(qb) == std::vector<std::uint64_t>{3, 4, 4, 5, 5});
    std::vector<std::uint64_t> epochs;
    for (const auto& e : qb) epochs.push_back(e.epoch.value());
    CHECK(epochs == std::vector<std::uint64_t>{1, 1, 2, 1, 2});
    CHECK(core::as_chars(qb[2].envelope.payload) == "b-id-12");

    SECTION("pages of any size give the same entries in the same order") {
        for (std::size_t page : {std::size_t{1}, std::size_t{2}, std::size_t{4}}) {
            INFO("page " << page);
            auto paged = f.quarantined("b", page);
            REQUIRE(paged.size() == qb.size());
            for (std::size_t i = 0; i < qb.size(); ++i) CHECK(paged[i].envelope == qb[i].envelope);
        }
        auto first = f.store().quarantine_read("b", {.events_max = 2});
        REQUIRE(first);
        REQUIRE(first->events.size() == 2);
        REQUIRE(first->next);
        CHECK(first->next->seq == core::Seq{4});
        CHECK(first->next->epoch == core::Epoch{1});
        auto one = f.store().quarantine_read("b", {.bytes_max = 1});
        REQUIRE(one);
        CHECK(one->events.size() == 1);  // one entry is always returned
        auto all = f.store().quarantine_read("b", {});
        REQUIRE(all);
        CHECK(all->events.size() == 5);
        CHECK_FALSE(all->next);
    }
    SECTION("a stream with nothing quarantined reads empty") {
        auto none = f.store().quarantine_read("nope", {});
        REQUIRE(none);
        CHECK(none->events.empty());
        CHECK_FALSE(none->next);
    }
    SECTION("the quarantine survives a reopen") {
        f.reopen();
        CHECK(f.store().quarantine_streams()->size() == 2);
        CHECK(seqs_of(f.quarantined("b")) == std::vector<std::uint64_t>{3, 4, 4, 5, 5});
    }
}

TEST_CASE("truncated events leave the idempotency window and the ids database", "[storage][unit]") {
    StoreFixture f;
    append_ids(f, "s", core::Epoch{1}, 1, 10);  // ids 1..10 at seqs 1..10
    REQUIRE(f.store().truncate_after_sync("s", core::Seq{6}));

    SECTION("in memory") {
        auto again = publish(f, "s", 8);
        REQUIRE(again);
        CHECK(again->stored == 1);
        CHECK(again->first_seq == core::Seq{7});
    }
    SECTION("after a reopen, which loads the window from the ids database") {
        f.reopen();
        auto again = publish(f, "s", 9);
        REQUIRE(again);
        CHECK(again->stored == 1);
        CHECK(again->first_seq == core::Seq{7});
        // The ids of the events that stayed still answer with their seqs.
        auto kept = publish(f, "s", 3);
        REQUIRE(kept);
        CHECK(kept->stored == 0);
        CHECK(kept->duplicates.at(0).seq == core::Seq{3});
        // And the re-published event is in the window at its new seq.
        f.reopen();
        auto retry = publish(f, "s", 9);
        REQUIRE(retry);
        CHECK(retry->stored == 0);
        CHECK(retry->duplicates.at(0).seq == core::Seq{7});
    }
}

TEST_CASE("a truncation over an undecodable envelope fails and moves nothing", "[storage][unit]") {
    StoreFixture f;
    append_ids(f, "s", core::Epoch{1}, 1, 8);
    const storage::StreamInfo before = f.info("s");
    f.close();
    {
        test::RawLmdb raw(f.data_dir());
        const std::string garbage = "not an envelope";
        raw.put("events",
                storage::detail::view_of(storage::detail::event_key(before.id, core::Seq{6})),
                core::as_bytes(garbage));
    }
    f.reopen();
    auto r = f.store().truncate_after_sync("s", core::Seq{3});
    REQUIRE_FALSE(r);
    CHECK(r.error().is(core::errc::corrupt));
    CHECK_THAT(r.error().detail, Contains("stream s seq 6: the envelope does not decode"));
    CHECK_THAT(r.error().detail, Contains("nothing was quarantined"));
    const storage::StreamInfo after = f.info("s");
    CHECK(after.last_seq == core::Seq{8});
    CHECK(after.last_hash == before.last_hash);
    CHECK(f.store().quarantine_streams()->empty());
    // The ids of the events that stayed are still known.
    auto dup = publish(f, "s", 7);
    REQUIRE(dup);
    CHECK(dup->stored == 0);
    CHECK(dup->duplicates.at(0).seq == core::Seq{7});
    // Truncating above the damage still works.
    REQUIRE(f.store().truncate_after_sync("s", core::Seq{7}));
    CHECK(seqs_of(f.quarantined("s")) == std::vector<std::uint64_t>{8});
}

TEST_CASE("a deleted stream's quarantine stays under its name", "[storage][unit]") {
    StoreFixture f;
    f.append_n("s", 5);
    REQUIRE(f.store().truncate_after_sync("s", core::Seq{2}));  // old life: seqs 3, 4, 5
    REQUIRE(f.wait_done(
        [&](storage::DoneCallback done) { return f.store().delete_stream("s", std::move(done)); }));
    f.append_n("s", 4);
    REQUIRE(f.store().truncate_after_sync("s", core::Seq{1}));  // new life: seqs 2, 3, 4

    auto streams = f.store().quarantine_streams();
    REQUIRE(streams);
    REQUIRE(streams->size() == 1);
    CHECK((*streams)[0].stream == "s");
    CHECK((*streams)[0].count == 6);
    CHECK((*streams)[0].seq_min == core::Seq{2});
    CHECK((*streams)[0].seq_max == core::Seq{5});
    const std::vector<std::uint64_t> expected{2, 3, 3, 4, 4, 5};
    auto all = f.quarantined("s");
    CHECK(seqs_of(all) == expected);
    std::multiset<std::string> payloads;
    for (const auto& e : all) payloads.insert(std::string(core::as_chars(e.envelope.payload)));
    CHECK(payloads == std::multiset<std::string>{"s-1", "s-2", "s-2", "s-3", "s-3", "s-4"});
    auto paged = f.quarantined("s", 1);
    REQUIRE(paged.size() == all.size());
    for (std::size_t i = 0; i < all.size(); ++i) CHECK(paged[i].envelope == all[i].envelope);
}
