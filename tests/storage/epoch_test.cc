// Confirmed epochs and positions, the storage half of completion and rejoin
// (DESIGN.md "Topology"), on real LMDB files: the stream record's version 2
// and its reading of version 1 (planted in LMDB by hand); appends confirm
// the streams they create and refuse stale epochs; confirm_epoch sets the
// epoch only at the copy's exact end and at or past the master's history, creates a copy at a
// position, is ordered with appends and survives a reopen; hashes_at answers the binary search's
// questions as a table. Each refusal is checked for its code and the words of its detail.
#include <catch2/catch.hpp>

#include "core/codec.h"
#include "core/hash_chain.h"
#include "storage/keys.h"
#include "storage/stream_record.h"
#include "tests/storage/raw_lmdb.h"
#include "tests/storage/store_fixture.h"

using namespace spirit;
using Catch::Matchers::Contains;
using test::Batch;
using test::StoreFixture;

namespace {

core::Digest digest_of(std::uint8_t fill) {
    core::Digest d;
    d.bytes.fill(std::byte{fill});
    return d;
}

// The hashes of seqs 1..n of `stream`, index 0 = seq 1.
std::vector<core::Digest> chain(StoreFixture& f, const std::string& stream) {
    std::vector<core::Digest> out;
    REQUIRE(f.store().read(stream, {.events_max = 100'000},
                           [&](const core::EnvelopeView& e, core::ByteView) {
                               out.push_back(e.hash);
                               return storage::Visit::next;
                           }));
    return out;
}

core::Result<storage::AppendResult> append_in(StoreFixture& f, const std::string& stream,
                                              core::Epoch epoch, int count = 1) {
    Batch b;
    for (int i = 0; i < count; ++i) b.add("e" + std::to_string(i));
    return f.store().append_sync({.stream = stream, .events = b.events(), .epoch = epoch});
}

}  // namespace

TEST_CASE("a version 1 stream record decodes with confirmed epoch 1", "[storage][unit]") {
    storage::detail::StreamRecord r;
    r.id = core::StreamId{7};
    r.first_seq = core::Seq{3};
    r.last_seq = core::Seq{9};
    r.last_epoch = core::Epoch{1};
    r.last_hash = digest_of(0xab);
    r.base_hash = digest_of(0xcd);
    r.confirmed_epoch = core::Epoch{4};
    core::Bytes v2 = storage::detail::encode_stream_record(r);
    REQUIRE(v2.size() == storage::detail::stream_record_bytes);
    CHECK(v2[0] == std::byte{2});
    CHECK(*storage::detail::decode_stream_record(v2, "s") == r);

    core::Bytes v1(v2.begin(), v2.begin() + storage::detail::stream_record_v1_bytes);
    v1[0] = std::byte{1};
    auto decoded = storage::detail::decode_stream_record(v1, "s");
    REQUIRE(decoded);
    CHECK(decoded->confirmed_epoch == core::Epoch{1});
    CHECK(decoded->last_seq == core::Seq{9});
    CHECK(decoded->last_hash == r.last_hash);

    SECTION("a version byte that does not match the size is corrupt") {
        core::Bytes wrong = v2;
        wrong[0] = std::byte{1};
        auto bad = storage::detail::decode_stream_record(wrong, "s");
        REQUIRE_FALSE(bad);
        CHECK(bad.error().is(core::errc::corrupt));
        CHECK_THAT(bad.error().detail, Contains("stream s: stored record of 156 bytes, version 1"));
    }
    SECTION("a store holding a version 1 record serves it and rewrites it as version 2") {
        StoreFixture f;
        f.append_n("s", 3);
        const storage::StreamInfo before = f.info("s");
        f.close();
        {
            test::RawLmdb raw(f.data_dir());
            auto stored = raw.get("streams", core::as_bytes(std::string_view("s")));
            REQUIRE(stored);
            REQUIRE(stored->size() == storage::detail::stream_record_bytes);
            core::Bytes old(stored->begin(), stored->begin() + 148);
            old[0] = std::byte{1};
            raw.put("streams", core::as_bytes(std::string_view("s")), old);
        }
        f.reopen();
        const storage::StreamInfo info = f.info("s");
        CHECK(info.confirmed_epoch == core::Epoch{1});
        CHECK(info.last_hash == before.last_hash);
        auto stale = append_in(f, "s", core::Epoch{1});
        REQUIRE(stale);
        CHECK(stale->first_seq == core::Seq{4});
        f.close();
        test::RawLmdb raw(f.data_dir());
        auto rewritten = raw.get("streams", core::as_bytes(std::string_view("s")));
        REQUIRE(rewritten);
        CHECK(rewritten->size() == 156);
        CHECK((*rewritten)[0] == std::byte{2});
    }
}

TEST_CASE("append confirms the stream it creates and refuses a stale epoch", "[storage][unit]") {
    StoreFixture f;
    REQUIRE(append_in(f, "s", core::Epoch{3}, 2));
    CHECK(f.info("s").confirmed_epoch == core::Epoch{3});
    CHECK(f.info("s").last_epoch == core::Epoch{3});

    auto stale = append_in(f, "s", core::Epoch{2});
    REQUIRE_FALSE(stale);
    CHECK(stale.error().is(core::errc::stale_epoch));
    CHECK(stale.error().detail == "stream s: epoch 2 is older than the copy's confirmed epoch 3");

    REQUIRE(append_in(f, "s", core::Epoch{4}));
    CHECK(f.info("s").confirmed_epoch == core::Epoch{4});
    f.reopen();
    CHECK(f.info("s").confirmed_epoch == core::Epoch{4});
    CHECK(append_in(f, "s", core::Epoch{3}).error().is(core::errc::stale_epoch));

    SECTION("a stream created empty has no confirmed epoch until an append") {
        REQUIRE(f.wait_done([&](storage::DoneCallback done) {
            return f.store().create_stream("empty", {}, std::move(done));
        }));
        CHECK(f.info("empty").confirmed_epoch == core::Epoch{0});
        REQUIRE(append_in(f, "empty", core::Epoch{2}));
        CHECK(f.info("empty").confirmed_epoch == core::Epoch{2});
    }
}

TEST_CASE("confirm_epoch sets the epoch only where the copy ends", "[storage][unit]") {
    StoreFixture f;
    REQUIRE(append_in(f, "s", core::Epoch{1}, 5));
    const std::vector<core::Digest> hashes = chain(f, "s");
    const core::Digest at5 = hashes[4];

    REQUIRE(f.confirm({.stream = "s", .epoch = core::Epoch{3}, .seq = core::Seq{5}, .hash = at5}));
    CHECK(f.info("s").confirmed_epoch == core::Epoch{3});

    SECTION("another seq is refused, naming both positions and hashes") {
        auto r = f.confirm(
            {.stream = "s", .epoch = core::Epoch{4}, .seq = core::Seq{4}, .hash = hashes[3]});
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::invalid_argument));
        CHECK(r.error().detail == "stream s: this copy ends at seq 5 (hash " +
                                      core::digest_hex(at5) + "), not at seq 4 (hash " +
                                      core::digest_hex(hashes[3]) + ")");
        CHECK(f.info("s").confirmed_epoch == core::Epoch{3});
    }
    SECTION("another hash at the same seq is refused, naming both hashes") {
        auto r = f.confirm(
            {.stream = "s", .epoch = core::Epoch{4}, .seq = core::Seq{5}, .hash = digest_of(1)});
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::hash_mismatch));
        CHECK(r.error().detail == "stream s seq 5: hash mismatch, this copy has " +
                                      core::digest_hex(at5) + ", the confirmation names " +
                                      core::digest_hex(digest_of(1)));
    }
    SECTION("an older epoch is stale") {
        auto r =
            f.confirm({.stream = "s", .epoch = core::Epoch{2}, .seq = core::Seq{5}, .hash = at5});
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::stale_epoch));
        CHECK(r.error().detail == "stream s: epoch 2 is older than the copy's confirmed epoch 3");
        // Appends of the old master are refused too.
        CHECK(append_in(f, "s", core::Epoch{2}).error().is(core::errc::stale_epoch));
    }
    SECTION("the same epoch again is a no-op that succeeds") {
        const std::uint64_t commits = f.store().stats().commits;
        REQUIRE(
            f.confirm({.stream = "s", .epoch = core::Epoch{3}, .seq = core::Seq{5}, .hash = at5}));
        CHECK(f.info("s").confirmed_epoch == core::Epoch{3});
        CHECK(f.store().stats().commits <= commits + 1);  // at most an empty commit
    }
    SECTION("short of the master's history the position is checked, the epoch not taken") {
        auto wrong = f.confirm({.stream = "s",
                                .epoch = core::Epoch{4},
                                .seq = core::Seq{4},
                                .hash = hashes[3],
                                .history = core::Seq{9}});
        CHECK(wrong.error().is(core::errc::invalid_argument));
        REQUIRE(f.confirm({.stream = "s",
                           .epoch = core::Epoch{4},
                           .seq = core::Seq{5},
                           .hash = at5,
                           .history = core::Seq{9}}));
        CHECK(f.info("s").confirmed_epoch == core::Epoch{3});
        REQUIRE(f.confirm({.stream = "s",
                           .epoch = core::Epoch{4},
                           .seq = core::Seq{5},
                           .hash = at5,
                           .history = core::Seq{5}}));
        CHECK(f.info("s").confirmed_epoch == core::Epoch{4});
    }
    SECTION("epoch 0 is refused") {
        auto r =
            f.confirm({.stream = "s", .epoch = core::Epoch{0}, .seq = core::Seq{5}, .hash = at5});
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::invalid_argument));
    }
    SECTION("it survives a reopen, and appends continue in that epoch") {
        f.reopen();
        CHECK(f.info("s").confirmed_epoch == core::Epoch{3});
        CHECK(append_in(f, "s", core::Epoch{2}).error().is(core::errc::stale_epoch));
        auto r = append_in(f, "s", core::Epoch{3});
        REQUIRE(r);
        CHECK(r->first_seq == core::Seq{6});
        CHECK_FALSE(f.store().verify("s")->first_break);
    }
    SECTION("an empty retained stream ends at its base hash") {
        REQUIRE(f.store().trim_before_sync("s", core::Seq{6}));
        REQUIRE(f.info("s").event_count == 0);
        auto wrong = f.confirm(
            {.stream = "s", .epoch = core::Epoch{4}, .seq = core::Seq{5}, .hash = hashes[3]});
        CHECK(wrong.error().is(core::errc::hash_mismatch));
        REQUIRE(
            f.confirm({.stream = "s", .epoch = core::Epoch{4}, .seq = core::Seq{5}, .hash = at5}));
        CHECK(f.info("s").confirmed_epoch == core::Epoch{4});
    }
}

TEST_CASE("confirm_epoch creates a missing copy empty at the position", "[storage][unit]") {
    StoreFixture master;
    REQUIRE(append_in(master, "s", core::Epoch{2}, 12));
    const std::vector<core::Digest> hashes = chain(master, "s");
    StoreFixture f;
    core::StreamPolicy policy;
    policy.redundancy = core::Redundancy::immediate;
    REQUIRE(f.confirm({.stream = "s",
                       .policy = policy,
                       .epoch = core::Epoch{5},
                       .seq = core::Seq{10},
                       .hash = hashes[9]}));
    const storage::StreamInfo info = f.info("s");
    CHECK(info.first_seq == core::Seq{11});
    CHECK(info.last_seq == core::Seq{10});
    CHECK(info.event_count == 0);
    CHECK(info.base_hash == hashes[9]);
    CHECK(info.last_hash == hashes[9]);
    CHECK(info.confirmed_epoch == core::Epoch{5});
    CHECK(info.last_epoch == core::Epoch{0});
    CHECK(info.policy.redundancy == core::Redundancy::immediate);

    // The master's envelopes continue it.
    std::vector<core::Bytes> rest = master.envelopes("s", core::Seq{11}, core::Seq{12});
    std::vector<core::ByteView> views(rest.begin(), rest.end());
    std::atomic<bool> done{false};
    REQUIRE(f.store().append_replicated({.stream = "s",
                                         .epoch = core::Epoch{5},
                                         .prev_seq = core::Seq{10},
                                         .prev_hash = hashes[9],
                                         .envelopes = views},
                                        [&](core::Result<storage::AppendResult> r) {
                                            CHECK(r);
                                            done = true;
                                        }));
    while (!done) f.store().drain_completed();
    CHECK(f.info("s").last_hash == hashes[11]);
    f.reopen();
    CHECK(f.info("s").confirmed_epoch == core::Epoch{5});
    CHECK_FALSE(f.store().verify("s")->first_break);

    SECTION("at seq 0 only with the genesis hash") {
        auto r = f.confirm(
            {.stream = "t", .epoch = core::Epoch{5}, .seq = core::Seq{0}, .hash = digest_of(3)});
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::invalid_argument));
        CHECK_THAT(r.error().detail, Contains("stream t: seq 0 has the genesis hash"));
        CHECK_FALSE(*f.store().stream_info("t"));
        REQUIRE(f.confirm({.stream = "t",
                           .epoch = core::Epoch{5},
                           .seq = core::Seq{0},
                           .hash = core::genesis_hash}));
        CHECK(f.info("t").first_seq == core::Seq{1});
    }
}

TEST_CASE("confirm_epoch is checked against what is sequenced and completes after it",
          "[storage][unit]") {
    StoreFixture master;
    REQUIRE(append_in(master, "s", core::Epoch{1}, 4));
    const std::vector<core::Digest> hashes = chain(master, "s");
    std::vector<core::Bytes> envelopes = master.envelopes("s", core::Seq{1}, core::Seq{4});
    std::vector<core::ByteView> views(envelopes.begin(), envelopes.end());

    StoreFixture f;
    std::vector<std::string> order;
    REQUIRE(f.store().append_replicated({.stream = "s",
                                         .prev_seq = core::Seq{0},
                                         .prev_hash = core::genesis_hash,
                                         .envelopes = views},
                                        [&](core::Result<storage::AppendResult> r) {
                                            CHECK(r);
                                            order.push_back("append");
                                        }));
    // Not committed yet, perhaps: the confirmation is checked against the
    // sequenced end (seq 4), and is not answered before the append is.
    REQUIRE(f.wait_done([&](storage::DoneCallback done) {
        return f.store().confirm_epoch(
            {.stream = "s", .epoch = core::Epoch{2}, .seq = core::Seq{4}, .hash = hashes[3]},
            [&, done = std::move(done)](core::Result<void> r) mutable {
                order.push_back("confirm");
                done(std::move(r));
            });
    }));
    CHECK(order == std::vector<std::string>{"append", "confirm"});
    CHECK(f.info("s").confirmed_epoch == core::Epoch{2});
}

TEST_CASE("hashes_at answers where a copy's chain is", "[storage][unit]") {
    StoreFixture f;
    f.append_n("s", 10);
    const std::vector<core::Digest> h = chain(f, "s");
    REQUIRE(f.store().trim_before_sync("s", core::Seq{4}));  // keeps 4..10; base hash = hash 3

    struct Row {
        std::uint64_t seq;
        std::optional<core::Digest> hash;
    };
    const std::vector<Row> table = {
        {0, core::genesis_hash},  // before every stream
        {1, std::nullopt},        // trimmed
        {2, std::nullopt},        // trimmed
        {3, h[2]},                // first_seq - 1: the base hash
        {4, h[3]},                // first retained
        {7, h[6]},
        {10, h[9]},          // last
        {11, std::nullopt},  // beyond the end
        {1'000, std::nullopt},
    };
    std::vector<core::Seq> seqs;
    for (const Row& row : table) seqs.push_back(core::Seq{row.seq});
    auto got = f.store().hashes_at("s", seqs);
    REQUIRE(got);
    REQUIRE(got->size() == table.size());
    for (std::size_t i = 0; i < table.size(); ++i) {
        INFO("seq " << table[i].seq);
        CHECK((*got)[i] == table[i].hash);
    }
    CHECK(f.store().hashes_at("s", {})->empty());

    SECTION("an empty stream: seq 0 only") {
        REQUIRE(f.wait_done([&](storage::DoneCallback done) {
            return f.store().create_stream("empty", {}, std::move(done));
        }));
        std::vector<core::Seq> two{core::Seq{0}, core::Seq{1}};
        auto e = f.store().hashes_at("empty", two);
        REQUIRE(e);
        CHECK((*e)[0] == std::optional<core::Digest>(core::genesis_hash));
        CHECK((*e)[1] == std::nullopt);
    }
    SECTION("a missing stream, and too many seqs") {
        auto missing = f.store().hashes_at("nope", seqs);
        REQUIRE_FALSE(missing);
        CHECK(missing.error().is(core::errc::not_found));
        std::vector<core::Seq> many(storage::hashes_at_seqs_max + 1, core::Seq{4});
        auto over = f.store().hashes_at("s", many);
        REQUIRE_FALSE(over);
        CHECK(over.error().is(core::errc::limit_exceeded));
        CHECK_THAT(over.error().detail, Contains("stream s: hashes of 4097 seqs"));
    }
}
