// The stream store's contract, on real LMDB files in a temp dir: appends and
// reads, idempotency, optimistic concurrency, reads by seq and by time,
// truncate and trim (with quarantine), verification, reopening, bad input.
#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <iterator>
#include <thread>

#include "core/codec.h"
#include "core/hash_chain.h"
#include "core/limits.h"
#include "tests/storage/store_fixture.h"

using namespace spirit;
using Catch::Matchers::Contains;
using test::Batch;
using test::StoreFixture;

TEST_CASE("appended events are read back in order with consecutive seqs", "[storage][unit]") {
    StoreFixture f;
    auto r = f.append("orders", Batch().add("a").add("b").add("c"));
    REQUIRE(r);
    CHECK(r->first_seq == core::Seq{1});
    CHECK(r->last_seq == core::Seq{3});
    CHECK(r->stored == 3);
    CHECK(r->duplicates.empty());
    auto r2 = f.append("orders", Batch().add("d"));
    REQUIRE(r2);
    CHECK(r2->first_seq == core::Seq{4});
    CHECK(f.payloads("orders") == std::vector<std::string>{"a", "b", "c", "d"});

    auto info = f.store().stream_info("orders");
    REQUIRE(info);
    REQUIRE(*info);
    CHECK((*info)->first_seq == core::Seq{1});
    CHECK((*info)->last_seq == core::Seq{4});
    CHECK((*info)->event_count == 4);
    CHECK((*info)->last_hash == r2->last_hash);
    CHECK((*info)->event_bytes > 0);

    auto report = f.store().verify("orders");
    REQUIRE(report);
    CHECK(report->events_checked == 4);
    CHECK_FALSE(report->first_break);
}

TEST_CASE("each event chains on the hash of the one before", "[storage][unit]") {
    StoreFixture f;
    f.append_n("s", 5);
    core::Digest prev = core::genesis_hash;
    auto r = f.store().read("s", {}, [&](const core::EnvelopeView& e, core::ByteView encoded) {
        CHECK(core::chain_hash_of(encoded, prev) == e.hash);
        CHECK(e.stream == "s");
        CHECK(e.epoch == core::Epoch{1});
        prev = e.hash;
        return storage::Visit::next;
    });
    REQUIRE(r);
    CHECK(r->events == 5);
}

TEST_CASE("an append can hand back a copy of what it sealed, byte for byte", "[storage][unit]") {
    // A master sends this copy to its replicas while its own commit runs.
    StoreFixture f;
    f.append_n("s", 2);
    Batch batch;
    batch.add("a", test::event_id(7)).add("dup", test::event_id(7)).add("b");
    storage::Sealed sealed;
    storage::AppendRequest request{.stream = "s", .events = batch.events()};
    request.sealed = &sealed;
    auto r = f.store().append_sync(request);
    REQUIRE(r);
    CHECK(r->stored == 2);  // the repeated id is a duplicate, not sealed
    CHECK(sealed.first_seq == core::Seq{3});
    REQUIRE(sealed.ends.size() == 2);
    REQUIRE(sealed.hashes.size() == 2);
    CHECK(sealed.hashes.back() == r->last_hash);
    std::size_t i = 0;
    auto read = f.store().read(
        "s", {.from_seq = core::Seq{3}}, [&](const core::EnvelopeView& e, core::ByteView encoded) {
            REQUIRE(i < sealed.ends.size());
            const std::uint32_t begin = i == 0 ? 0 : sealed.ends[i - 1];
            const core::ByteView copy{sealed.data.data() + begin, sealed.ends[i] - begin};
            CHECK(std::equal(copy.begin(), copy.end(), encoded.begin(), encoded.end()));
            CHECK(e.hash == sealed.hashes[i]);
            ++i;
            return storage::Visit::next;
        });
    REQUIRE(read);
    CHECK(i == 2);
    // A retry whose every event is a duplicate seals nothing.
    Batch again;
    again.add("a", test::event_id(7));
    request.events = again.events();
    REQUIRE(f.store().append_sync(request));
    CHECK(sealed.ends.empty());
}

TEST_CASE("streams are independent and listed by name", "[storage][unit]") {
    StoreFixture f;
    f.append_n("b-stream", 3);
    f.append_n("a-stream", 2);
    f.append_n("b-stream", 1);
    auto list = f.store().list_streams();
    REQUIRE(list);
    REQUIRE(list->size() == 2);
    CHECK((*list)[0].name == "a-stream");
    CHECK((*list)[0].last_seq == core::Seq{2});
    CHECK((*list)[1].name == "b-stream");
    CHECK((*list)[1].last_seq == core::Seq{4});
    CHECK(f.payloads("b-stream") ==
          std::vector<std::string>{"b-stream-0", "b-stream-1", "b-stream-2", "b-stream-0"});
}

TEST_CASE("after a reopen every stream takes appends and not only the last created",
          "[storage][unit]") {
    // Events are keyed stream id || seq; LMDB's append mode refuses a key
    // below the last one in the database, so the writer must know that last
    // key after an open (it once started from none and aborted here).
    StoreFixture f;
    f.append_n("first", 3);
    f.append_n("second", 3);
    REQUIRE(f.append("second", Batch().add("x", test::event_id(1))));
    f.reopen();
    auto r = f.append("first", Batch().add("after", test::event_id(2)));
    REQUIRE(r);
    CHECK(r->first_seq == core::Seq{4});
    REQUIRE(f.append("second", Batch().add("after", test::event_id(3))));
    CHECK(f.payloads("first") ==
          std::vector<std::string>{"first-0", "first-1", "first-2", "after"});
    CHECK(f.payloads("second").size() == 5);
}

TEST_CASE("streams are listed a page at a time after a name", "[storage][unit]") {
    StoreFixture f;
    for (const char* name : {"a", "b", "b.x", "c", "d"}) f.append_n(name, 1);
    auto names = [&](std::string_view after, std::size_t limit) {
        std::vector<std::string> out;
        auto list = f.store().list_streams(after, limit);
        REQUIRE(list);
        for (const auto& i : *list) out.push_back(i.name);
        return out;
    };
    CHECK(names("", 2) == std::vector<std::string>{"a", "b"});
    CHECK(names("b", 2) == std::vector<std::string>{"b.x", "c"});
    CHECK(names("b.a", 10) == std::vector<std::string>{"b.x", "c", "d"});  // need not exist
    CHECK(names("d", 10).empty());
    CHECK(names("", 0).empty());
}

TEST_CASE("a repeated event id returns the original seq and stores nothing", "[storage][unit]") {
    StoreFixture f;
    auto first = f.append("s", Batch().add("x", test::event_id(1)).add("y", test::event_id(2)));
    REQUIRE(first);

    SECTION("a whole-batch retry") {
        auto again = f.append("s", Batch().add("x", test::event_id(1)).add("y", test::event_id(2)));
        REQUIRE(again);
        CHECK(again->stored == 0);
        REQUIRE(again->duplicates.size() == 2);
        CHECK(again->duplicates[0].index == 0);
        CHECK(again->duplicates[0].seq == core::Seq{1});
        CHECK(again->duplicates[1].seq == core::Seq{2});
        CHECK(f.payloads("s").size() == 2);
    }
    SECTION("a batch mixing new and repeated ids stores only the new ones") {
        auto mixed = f.append("s", Batch().add("new-1").add("y", test::event_id(2)).add("new-2"));
        REQUIRE(mixed);
        CHECK(mixed->stored == 2);
        CHECK(mixed->first_seq == core::Seq{3});
        CHECK(mixed->last_seq == core::Seq{4});
        REQUIRE(mixed->duplicates.size() == 1);
        CHECK(mixed->duplicates[0].index == 1);
        CHECK(mixed->duplicates[0].seq == core::Seq{2});
        CHECK(f.payloads("s") == std::vector<std::string>{"x", "y", "new-1", "new-2"});
    }
    SECTION("an id repeated inside one batch is stored once") {
        auto r = f.append("s", Batch().add("z", test::event_id(3)).add("z2", test::event_id(3)));
        REQUIRE(r);
        CHECK(r->stored == 1);
        REQUIRE(r->duplicates.size() == 1);
        CHECK(r->duplicates[0].index == 1);
        CHECK(r->duplicates[0].seq == core::Seq{3});
    }
    SECTION("the same id in another stream is another event") {
        auto r = f.append("other", Batch().add("x", test::event_id(1)));
        REQUIRE(r);
        CHECK(r->stored == 1);
    }
    SECTION("the window survives a reopen") {
        f.reopen();
        auto again = f.append("s", Batch().add("x", test::event_id(1)));
        REQUIRE(again);
        CHECK(again->stored == 0);
        CHECK(again->duplicates.at(0).seq == core::Seq{1});
    }
    SECTION("after the window an id is new again") {
        f.clock.advance_ms(f.store().options().dedup_window_ms + 1);
        auto again = f.append("s", Batch().add("x", test::event_id(1)));
        REQUIRE(again);
        CHECK(again->stored == 1);
        CHECK(again->first_seq == core::Seq{3});
    }
}

TEST_CASE("the idempotency window is bounded by count too", "[storage][unit]") {
    storage::StoreOptions options;
    options.dedup_events_max = 4;
    StoreFixture f(options);
    for (std::uint64_t i = 1; i <= 6; ++i) {
        REQUIRE(f.append("s", Batch().add("e", test::event_id(i))));
    }
    // ids 1 and 2 fell out of the window; 3..6 are still in it.
    auto old = f.append("s", Batch().add("e", test::event_id(1)));
    REQUIRE(old);
    CHECK(old->stored == 1);
    auto recent = f.append("s", Batch().add("e", test::event_id(6)));
    REQUIRE(recent);
    CHECK(recent->stored == 0);
}

TEST_CASE("expected last seq: optimistic concurrency", "[storage][unit]") {
    StoreFixture f;
    REQUIRE(f.append("s", Batch().add("a"), core::Seq{0}));
    REQUIRE(f.append("s", Batch().add("b"), core::Seq{1}));

    auto stale = f.append("s", Batch().add("c"), core::Seq{1});
    REQUIRE_FALSE(stale);
    CHECK(stale.error().is(core::errc::expected_seq_mismatch));
    CHECK_THAT(stale.error().detail, Contains("stream s: expected last seq 1, but it is 2"));

    auto missing = f.append("fresh", Batch().add("x"), core::Seq{3});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().is(core::errc::expected_seq_mismatch));
    CHECK_FALSE(*f.store().stream_info("fresh"));  // a refused append creates nothing

    SECTION("a retry of an applied conditional append succeeds as a duplicate") {
        REQUIRE(f.append("s", Batch().add("c", test::event_id(7)), core::Seq{2}));
        auto retry = f.append("s", Batch().add("c", test::event_id(7)), core::Seq{2});
        REQUIRE(retry);
        CHECK(retry->stored == 0);
        CHECK(retry->duplicates.at(0).seq == core::Seq{3});
    }
}

TEST_CASE("reads start at any seq, at a time, or at the last event", "[storage][unit]") {
    StoreFixture f;
    for (int i = 0; i < 10; ++i) {
        f.clock.advance_ms(10);
        REQUIRE(f.append("s", Batch().add("e" + std::to_string(i))));
    }
    CHECK(f.payloads("s", core::Seq{8}) == std::vector<std::string>{"e7", "e8", "e9"});
    CHECK(f.payloads("s", core::Seq{11}).empty());

    std::vector<std::uint64_t> stamps;
    REQUIRE(f.store().read("s", {}, [&](const core::EnvelopeView& e, core::ByteView) {
        stamps.push_back(e.timestamp_ns.value());
        return storage::Visit::next;
    }));
    REQUIRE(stamps.size() == 10);
    auto at = f.store().seq_at_time("s", core::TimestampNs{stamps[4]});
    REQUIRE(at);
    CHECK(*at == core::Seq{5});
    at = f.store().seq_at_time("s", core::TimestampNs{stamps[4] + 1});
    REQUIRE(at);
    CHECK(*at == core::Seq{6});
    at = f.store().seq_at_time("s", core::TimestampNs{0});
    REQUIRE(at);
    CHECK(*at == core::Seq{1});
    at = f.store().seq_at_time("s", core::TimestampNs{stamps[9] + 1});
    REQUIRE(at);
    CHECK(*at == core::Seq{11});

    auto last = f.store().read_last("s");
    REQUIRE(last);
    REQUIRE(*last);
    CHECK((*last)->seq == core::Seq{10});
    CHECK(core::as_chars((*last)->payload) == "e9");

    SECTION("reads stop at events_max and bytes_max, and always return one event") {
        std::size_t seen = 0;
        auto r = f.store().read("s", {.from_seq = core::Seq{1}, .events_max = 3},
                                [&](const core::EnvelopeView&, core::ByteView) {
                                    ++seen;
                                    return storage::Visit::next;
                                });
        REQUIRE(r);
        CHECK(r->events == 3);
        CHECK(r->next_seq == core::Seq{4});
        r = f.store().read(
            "s", {.from_seq = core::Seq{1}, .events_max = 100, .bytes_max = 1},
            [&](const core::EnvelopeView&, core::ByteView) { return storage::Visit::next; });
        REQUIRE(r);
        CHECK(r->events == 1);
    }
    SECTION("a visitor can stop early") {
        auto r = f.store().read("s", {}, [&](const core::EnvelopeView& e, core::ByteView) {
            return e.seq == core::Seq{2} ? storage::Visit::stop : storage::Visit::next;
        });
        REQUIRE(r);
        CHECK(r->events == 2);
    }
}

TEST_CASE("timestamps never go backwards within a stream", "[storage][unit]") {
    StoreFixture f;
    REQUIRE(f.append("s", Batch().add("a")));
    f.clock.now_ns -= 5'000'000'000;  // the wall clock steps back 5 s
    REQUIRE(f.append("s", Batch().add("b")));
    std::vector<std::uint64_t> stamps;
    REQUIRE(f.store().read("s", {}, [&](const core::EnvelopeView& e, core::ByteView) {
        stamps.push_back(e.timestamp_ns.value());
        return storage::Visit::next;
    }));
    REQUIRE(stamps.size() == 2);
    CHECK(stamps[1] >= stamps[0]);
}

TEST_CASE("truncate moves the suffix to quarantine and the stream continues from there",
          "[storage][unit]") {
    StoreFixture f;
    f.append_n("s", 10);
    REQUIRE(f.store().truncate_after_sync("s", core::Seq{6}));
    auto info = f.store().stream_info("s");
    REQUIRE(*info);
    CHECK((*info)->last_seq == core::Seq{6});
    CHECK(f.payloads("s").size() == 6);

    auto q = f.quarantined("s");
    REQUIRE(q.size() == 4);
    CHECK(q[0].seq == core::Seq{7});
    CHECK(core::as_chars(q[3].envelope.payload) == "s-9");

    auto next = f.append("s", Batch().add("after-truncate"));
    REQUIRE(next);
    CHECK(next->first_seq == core::Seq{7});
    auto report = f.store().verify("s");
    REQUIRE(report);
    CHECK_FALSE(report->first_break);
    CHECK(report->events_checked == 7);

    SECTION("truncating everything leaves an empty stream that verifies") {
        REQUIRE(f.store().truncate_after_sync("s", core::Seq{0}));
        CHECK(f.payloads("s").empty());
        REQUIRE(f.append("s", Batch().add("fresh")));
        auto r = f.store().verify("s");
        REQUIRE(r);
        CHECK_FALSE(r->first_break);
    }
    SECTION("the head survives a reopen") {
        f.reopen();
        auto r = f.append("s", Batch().add("after-reopen"));
        REQUIRE(r);
        CHECK(r->first_seq == core::Seq{8});
        CHECK_FALSE(f.store().verify("s")->first_break);
    }
}

TEST_CASE("trim removes the prefix and the rest still verifies", "[storage][unit]") {
    StoreFixture f;
    f.append_n("s", 10, 3);
    REQUIRE(f.store().trim_before_sync("s", core::Seq{4}));
    auto info = f.store().stream_info("s");
    REQUIRE(*info);
    CHECK((*info)->first_seq == core::Seq{4});
    CHECK((*info)->event_count == 7);
    CHECK(f.payloads("s").front() == "s-3");  // a read from seq 1 starts at the first retained
    auto report = f.store().verify("s");
    REQUIRE(report);
    CHECK(report->events_checked == 7);
    CHECK_FALSE(report->first_break);

    REQUIRE(f.store().trim_before_sync("s", core::Seq{11}));  // everything
    info = f.store().stream_info("s");
    CHECK((*info)->event_count == 0);
    CHECK((*info)->event_bytes == 0);
    auto r = f.append("s", Batch().add("x"));
    REQUIRE(r);
    CHECK(r->first_seq == core::Seq{11});
    CHECK_FALSE(f.store().verify("s")->first_break);

    SECTION("trim past the end and truncate below the start are refused") {
        auto past = f.store().trim_before_sync("s", core::Seq{20});
        REQUIRE_FALSE(past);
        CHECK(past.error().is(core::errc::invalid_argument));
        CHECK_THAT(past.error().detail, Contains("last seq is 11"));
        auto below = f.store().truncate_after_sync("s", core::Seq{3});
        REQUIRE_FALSE(below);
        CHECK(below.error().is(core::errc::invalid_argument));
        CHECK(f.append("s", Batch().add("still fine")));
    }
}

TEST_CASE("trimming more than one transaction's worth carries over", "[storage][unit][slow]") {
    StoreFixture f;
    f.append_n("s", 120'000, 4096);
    REQUIRE(f.store().trim_before_sync("s", core::Seq{110'001}));
    auto info = f.store().stream_info("s");
    CHECK((*info)->first_seq == core::Seq{110'001});
    CHECK((*info)->event_count == 10'000);
    REQUIRE(f.store().truncate_after_sync("s", core::Seq{110'005}));
    CHECK(f.quarantined("s").size() == 9'995);
    CHECK_FALSE(f.store().verify("s")->first_break);
}

namespace {

// Flips one byte in every copy of `marker` in the LMDB data file (copy-on-
// write pages may hold old copies too): bit rot that LMDB cannot see.
int flip_marker(const std::filesystem::path& data_dir, const std::string& marker) {
    auto path = data_dir / "data.mdb";
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(file.good());
    std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    int flipped = 0;
    for (std::size_t at = bytes.find(marker); at != std::string::npos;
         at = bytes.find(marker, at + 1)) {
        file.seekp(static_cast<std::streamoff>(at + marker.size() / 2));
        char c = static_cast<char>(bytes[at + marker.size() / 2] ^ 0x01);
        file.write(&c, 1);
        ++flipped;
    }
    return flipped;
}

}  // namespace

TEST_CASE("verify and reads detect a flipped byte in a stored payload", "[storage][unit]") {
    StoreFixture f;
    f.append_n("s", 5);
    REQUIRE(f.append("s", Batch().add("THE-MARKER-PAYLOAD")));
    f.append_n("s", 3);
    f.close();
    REQUIRE(flip_marker(f.data_dir(), "THE-MARKER-PAYLOAD") >= 1);
    f.reopen();

    auto report = f.store().verify("s");
    REQUIRE(report);
    REQUIRE(report->first_break);
    CHECK(report->first_break->seq == core::Seq{6});
    CHECK_THAT(report->first_break->problem, Contains("stream s seq 6: hash mismatch"));
    CHECK(report->events_checked == 5);

    auto read = f.store().read(
        "s", {}, [](const core::EnvelopeView&, core::ByteView) { return storage::Visit::next; });
    REQUIRE_FALSE(read);
    CHECK(read.error().is(core::errc::hash_mismatch));
    // Events before the break are still served.
    CHECK(f.store().read(
        "s", {.from_seq = core::Seq{1}, .events_max = 5},
        [](const core::EnvelopeView&, core::ByteView) { return storage::Visit::next; }));
    // A reader that verifies the chain itself (a slave) gets the bytes as stored.
    std::uint64_t unverified = 0;
    auto raw = f.store().read("s", {.verification = storage::Verification::none},
                              [&](const core::EnvelopeView&, core::ByteView) {
                                  ++unverified;
                                  return storage::Visit::next;
                              });
    REQUIRE(raw);
    CHECK(unverified == 9);
}

TEST_CASE("a store reopens with every stream's head and nothing replayed", "[storage][unit]") {
    StoreFixture f;
    auto last = f.append_n("s", 50, 7);
    f.reopen();
    auto info = f.store().stream_info("s");
    REQUIRE(*info);
    CHECK((*info)->last_seq == core::Seq{50});
    CHECK((*info)->last_hash == last.last_hash);
    auto next = f.append("s", Batch().add("after"));
    REQUIRE(next);
    CHECK(next->first_seq == core::Seq{51});
    CHECK_FALSE(f.store().verify("s")->first_break);
}

// Regression: the writer put with MDB_APPEND past the largest key it had
// written since open, not the largest in LMDB, so after a reopen an append
// to any stream but the one with the largest id failed the assertion
// "already stored", and an event id keyed below the last was dropped.
TEST_CASE("a reopened store appends to every stream and records every id", "[storage][unit]") {
    StoreFixture f;
    f.append_n("a", 3);
    f.append_n("b", 3);
    f.reopen();
    f.append_n("a", 2);
    CHECK(f.payloads("a").size() == 5);
    CHECK_FALSE(f.store().verify("a")->first_break);
    REQUIRE(f.append("b", Batch().add("x", test::event_id(5))));
    f.reopen();
    // The clock stands still: this id's key (same timestamp, lower stream
    // id) sorts below b's.
    auto stored = f.append("a", Batch().add("y", test::event_id(1)));
    REQUIRE(stored);
    f.reopen();
    auto again = f.append("a", Batch().add("y", test::event_id(1)));
    REQUIRE(again);
    CHECK(again->stored == 0);
    CHECK(again->duplicates.at(0).seq == stored->first_seq);
}

TEST_CASE("a second process cannot open the same data dir", "[storage][unit]") {
    StoreFixture f;
    storage::StoreOptions again = f.options();
    auto second = storage::Store::open(again);
    REQUIRE_FALSE(second);
    CHECK(second.error().is(core::errc::busy));
    CHECK_THAT(second.error().detail, Contains("in use by another process"));
}

TEST_CASE("bad appends are refused with the reason and change nothing", "[storage][unit]") {
    StoreFixture f;
    f.append_n("s", 1);
    std::string big(core::limits::payload_bytes_max + 1, 'x');
    std::string bad_type = "\xff\xfe";
    std::vector<core::EventDraft> one_big{{std::nullopt, "t", {}, core::as_bytes(big)}};
    std::vector<core::EventDraft> one_bad_type{{std::nullopt, bad_type, {}, {}}};
    using Row = std::tuple<std::string, std::span<const core::EventDraft>, core::errc, std::string>;
    std::vector<core::EventDraft> fine{{std::nullopt, "t", {}, {}}};
    for (auto [stream, events, code, text] : {
             Row{"bad name", fine, core::errc::invalid_stream_name, "' ' "},
             Row{"", fine, core::errc::invalid_stream_name, "empty"},
             Row{"s", {}, core::errc::invalid_argument, "at least one event"},
             Row{"s", one_big, core::errc::limit_exceeded, "payload of 1048577 bytes"},
             Row{"s", one_bad_type, core::errc::invalid_argument, "not valid UTF-8"},
         }) {
        INFO(stream << " " << text);
        auto r = f.store().append_sync({.stream = stream, .events = events});
        REQUIRE_FALSE(r);
        CHECK(r.error().is(code));
        if (text == "' ' ") {
            CHECK_THAT(r.error().detail, Contains("byte 0x20"));
        } else {
            CHECK_THAT(r.error().detail, Contains(text));
        }
    }
    auto missing = f.store().append_sync(
        {.stream = "nope", .events = fine, .create = storage::CreateMode::must_exist});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().is(core::errc::not_found));
    CHECK(f.payloads("s").size() == 1);
    CHECK(f.store().list_streams()->size() == 1);
}

TEST_CASE("a full LMDB map fails appends cleanly, and they resume when space returns",
          "[storage][fault]") {
    storage::StoreOptions options;
    options.map_bytes = 1u << 20;  // 1 MiB
    StoreFixture f(options);
    std::string payload(2000, 'p');
    std::uint64_t acked = 0;
    core::Error full;
    for (int i = 0; i < 10'000; ++i) {
        auto r = f.append("s", Batch().add(payload));
        if (!r) {
            full = r.error();
            break;
        }
        acked = r->last_seq.value();
    }
    REQUIRE(acked > 10);
    CHECK(full.is(core::errc::storage_full));
    CHECK_THAT(full.detail, Contains("map"));
    // Every acknowledged event is intact and the chain verifies.
    CHECK(f.payloads("s").size() == acked);
    CHECK_FALSE(f.store().verify("s")->first_break);
    // Free space by trimming; appends work again and chain on the last ack.
    REQUIRE(f.store().trim_before_sync("s", core::Seq{acked}));
    auto r = f.append("s", Batch().add("after"));
    REQUIRE(r);
    CHECK(r->first_seq == core::Seq{acked + 1});
    CHECK_FALSE(f.store().verify("s")->first_break);
}

TEST_CASE("durable consumer cursors only move forward and survive a reopen", "[storage][unit]") {
    StoreFixture f;
    f.append_n("s", 5);
    auto none = f.store().cursor("billing", "s");
    REQUIRE(none);
    CHECK_FALSE(*none);
    auto set = [&](std::uint64_t seq) {
        std::atomic<bool> done{false};
        core::Result<void> out;
        REQUIRE(f.store().set_cursor("billing", "s", core::Seq{seq}, [&](core::Result<void> r) {
            out = r;
            done = true;
        }));
        while (!done) f.store().drain_completed();
        REQUIRE(out);
    };
    set(3);
    set(2);  // ignored: positions only move forward
    CHECK(f.store().cursor("billing", "s")->value() == core::Seq{3});
    CHECK_FALSE(*f.store().cursor("other", "s"));
    f.reopen();
    CHECK(f.store().cursor("billing", "s")->value() == core::Seq{3});
    auto missing = f.store().set_cursor("billing", "nope", core::Seq{1}, [](core::Result<void>) {});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().is(core::errc::not_found));
}

namespace {

core::Result<void> wait_done(StoreFixture& f,
                             std::function<core::Result<void>(storage::DoneCallback)> start) {
    std::atomic<bool> done{false};
    core::Result<void> out;
    SPIRIT_TRY(start([&](core::Result<void> r) {
        out = r;
        done = true;
    }));
    while (!done) f.store().drain_completed();
    return out;
}

}  // namespace

TEST_CASE("streams can be created empty and deleted, and a deleted name starts afresh",
          "[storage][unit]") {
    StoreFixture f;
    core::StreamPolicy policy{core::Redundancy::immediate, {core::Acks::Kind::all, 0}, {5, 0, 0}};
    REQUIRE(wait_done(
        f, [&](auto done) { return f.store().create_stream("c", policy, std::move(done)); }));
    auto info = f.store().stream_info("c");
    REQUIRE(*info);
    CHECK((*info)->policy == policy);
    CHECK((*info)->event_count == 0);
    auto again = f.store().create_stream("c", policy, [](core::Result<void>) {});
    REQUIRE_FALSE(again);
    CHECK(again.error().is(core::errc::already_exists));

    f.append_n("c", 3);
    REQUIRE(wait_done(f, [&](auto done) {
        return f.store().set_cursor("k", "c", core::Seq{2}, std::move(done));
    }));
    REQUIRE(wait_done(f, [&](auto done) { return f.store().delete_stream("c", std::move(done)); }));
    CHECK_FALSE(*f.store().stream_info("c"));
    CHECK(f.store().list_streams()->empty());
    auto gone = f.store().delete_stream("c", [](core::Result<void>) {});
    REQUIRE_FALSE(gone);
    CHECK(gone.error().is(core::errc::not_found));

    // Publishing again creates a new stream from seq 1, with no old cursor.
    auto r = f.append("c", Batch().add("new"));
    REQUIRE(r);
    CHECK(r->first_seq == core::Seq{1});
    CHECK(f.payloads("c") == std::vector<std::string>{"new"});
    CHECK_FALSE(*f.store().cursor("k", "c"));
    CHECK_FALSE(f.store().verify("c")->first_break);
}

TEST_CASE("a stream's policy can be changed, durably, and only that of a stream that exists",
          "[storage][unit]") {
    StoreFixture f;
    f.append_n("p", 3);
    core::StreamPolicy policy = (*f.store().stream_info("p"))->policy;
    policy.retention = {10, 1 << 20, 60000};
    REQUIRE(wait_done(
        f, [&](auto done) { return f.store().set_policy("p", policy, std::move(done)); }));
    CHECK((*f.store().stream_info("p"))->policy == policy);
    f.append_n("p", 2);  // the head and the record stay in step
    auto info = f.store().stream_info("p");
    CHECK((*info)->last_seq == core::Seq{5});
    CHECK((*info)->policy == policy);
    f.reopen();
    CHECK((*f.store().stream_info("p"))->policy == policy);
    CHECK_FALSE(f.store().verify("p")->first_break);
    auto missing = f.store().set_policy("none", policy, [](core::Result<void>) {});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().is(core::errc::not_found));
}

TEST_CASE("an append right after a delete request goes to a new stream", "[storage][unit]") {
    StoreFixture f;
    f.append_n("d", 100, 10);
    std::atomic<int> finished{0};
    REQUIRE(f.store().delete_stream("d", [&](core::Result<void> r) {
        CHECK(r);
        ++finished;
    }));
    Batch b;
    b.add("fresh");
    REQUIRE(f.store().append({.stream = "d", .events = b.events()},
                             [&](core::Result<storage::AppendResult> r) {
                                 REQUIRE(r);
                                 CHECK(r->first_seq == core::Seq{1});
                                 ++finished;
                             }));
    while (finished < 2) f.store().drain_completed();
    CHECK(f.payloads("d") == std::vector<std::string>{"fresh"});
    CHECK_FALSE(f.store().verify("d")->first_break);
}

// The store's own counters; sync_mode_test.cc counts the syscalls themselves.
TEST_CASE("sync modes: always fsyncs each commit, periodic on a timer, none never",
          "[storage][unit]") {
    using storage::SyncMode;
    for (SyncMode mode : {SyncMode::always, SyncMode::periodic, SyncMode::none}) {
        storage::StoreOptions options;
        options.sync_mode = mode;
        options.sync_period_ms = 20;
        StoreFixture f(options);
        f.append_n("s", 10);
        const std::uint64_t commits = f.store().stats().commits;
        CHECK(commits >= 1);
        if (mode == SyncMode::periodic) {
            // Give the timer a few periods (bounded wait, not a timing assertion).
            for (int i = 0; i < 100 && f.store().stats().syncs == 0; ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            CHECK(f.store().stats().syncs >= 1);
            CHECK(f.store().stats().syncs <= commits);
        } else if (mode == SyncMode::always) {
            CHECK(f.store().stats().syncs == commits);
        } else {
            CHECK(f.store().stats().syncs == 0);
        }
        f.reopen();
        CHECK(f.payloads("s").size() == 10);
        CHECK_FALSE(f.store().verify("s")->first_break);
    }
}

TEST_CASE("seq_keeping_bytes finds where a size limit starts, a bounded walk at a time",
          "[storage][unit]") {
    StoreFixture f;
    f.append_n("s", 100, 10);
    auto info = f.store().stream_info("s");
    REQUIRE(*info);
    const std::uint64_t total = (*info)->event_bytes;
    const std::uint64_t each = total / 100;  // the payloads "s-0".."s-99" differ by a byte at most
    auto all = f.store().seq_keeping_bytes("s", total, 1000);
    REQUIRE(all);
    CHECK(*all == core::Seq{1});
    auto half = f.store().seq_keeping_bytes("s", total / 2, 1000);
    REQUIRE(half);
    CHECK(half->value() >= 49);
    CHECK(half->value() <= 52);
    auto none = f.store().seq_keeping_bytes("s", 0, 1000);
    REQUIRE(none);
    CHECK(*none == core::Seq{101});
    auto bounded = f.store().seq_keeping_bytes("s", 0, 7);
    REQUIRE(bounded);
    CHECK(*bounded == core::Seq{8});
    (void)each;
}

TEST_CASE("the outbox keeps entries in order, durably, until removed", "[storage][unit]") {
    StoreFixture f;
    const std::string a = "first", b = "second", c = "third";
    auto add = [&](const std::string& stream, std::vector<core::EventDraft> events) {
        return wait_done(f, [&](storage::DoneCallback done) {
            return f.store().outbox_add(stream, events, std::move(done));
        });
    };
    REQUIRE(add("s1", {{test::event_id(1), "t", {}, core::as_bytes(a)},
                       {test::event_id(2), "t", core::as_bytes(c), core::as_bytes(b)}}));
    REQUIRE(add("s2", {{test::event_id(3), "u", {}, core::as_bytes(c)}}));
    auto no_id =
        f.store().outbox_add("s1", std::vector<core::EventDraft>{{std::nullopt, "t", {}, {}}},
                             [](core::Result<void>) {});
    REQUIRE_FALSE(no_id);
    CHECK(no_id.error().is(core::errc::invalid_argument));
    CHECK(*f.store().outbox_events() == 3);

    f.reopen();
    auto entries = f.store().outbox_read(10);
    REQUIRE(entries);
    REQUIRE(entries->size() == 2);
    CHECK((*entries)[0].stream == "s1");
    CHECK((*entries)[0].events.size() == 2);
    CHECK((*entries)[0].events[1].id == test::event_id(2));
    CHECK(core::as_chars((*entries)[0].events[1].payload) == "second");
    CHECK(core::as_chars((*entries)[0].events[1].metadata) == "third");
    CHECK((*entries)[1].stream == "s2");
    CHECK((*entries)[1].id > (*entries)[0].id);

    REQUIRE(wait_done(f, [&](storage::DoneCallback done) {
        return f.store().outbox_remove((*entries)[0].id, std::move(done));
    }));
    REQUIRE(add("s3", {{test::event_id(4), "t", {}, {}}}));
    f.reopen();
    entries = f.store().outbox_read(10);
    REQUIRE(entries->size() == 2);
    CHECK((*entries)[0].stream == "s2");
    CHECK((*entries)[1].stream == "s3");
    CHECK((*entries)[1].id > (*entries)[0].id);
}

TEST_CASE("node values are durable across a reopen", "[storage][unit]") {
    StoreFixture f;
    CHECK(f.store().was_created());
    auto none = f.store().node_value("epoch");
    REQUIRE(none);
    CHECK_FALSE(*none);

    REQUIRE(f.put_node_value("epoch", "seven"));
    REQUIRE(f.put_node_value("vote.7", std::string("\0\1\2", 3)));
    REQUIRE(f.put_node_value("epoch", "eight"));  // a put replaces
    CHECK(f.store().node_value("epoch")->value() == core::Bytes(test::hex("6569676874")));
    f.reopen();
    CHECK_FALSE(f.store().was_created());
    auto epoch = f.store().node_value("epoch");
    REQUIRE(epoch);
    REQUIRE(*epoch);
    CHECK(core::as_chars(**epoch) == "eight");
    CHECK(f.store().node_value("vote.7")->value() == test::hex("000102"));

    SECTION("bad keys and values are refused at once") {
        auto own = f.store().put_node_value("format", {}, [](core::Result<void>) {});
        REQUIRE_FALSE(own);
        CHECK(own.error().is(core::errc::invalid_argument));
        CHECK_THAT(own.error().detail, Contains("node key \"format\" is the store's own"));
        CHECK(f.store()
                  .put_node_value("next_stream_id", {}, [](core::Result<void>) {})
                  .error()
                  .is(core::errc::invalid_argument));
        for (std::string bad : {std::string(), std::string("a b"), std::string(65, 'k')}) {
            INFO("key \"" << bad << "\"");
            auto r = f.store().put_node_value(bad, {}, [](core::Result<void>) {});
            REQUIRE_FALSE(r);
            CHECK(r.error().is(core::errc::invalid_argument));
        }
        core::Bytes big(storage::node_value_bytes_max + 1);
        auto r = f.store().put_node_value("big", big, [](core::Result<void>) {});
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::limit_exceeded));
        CHECK(f.put_node_value("big", std::string(storage::node_value_bytes_max, 'x')));
    }
    SECTION("a wiped data dir is created again, empty") {
        f.close();
        std::filesystem::remove_all(f.data_dir());
        f.reopen();
        CHECK(f.store().was_created());
        CHECK_FALSE(*f.store().node_value("epoch"));
    }
}
