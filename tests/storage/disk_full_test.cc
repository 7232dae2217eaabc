// A full disk: the data dir is a 12 MiB tmpfs (mounted by this test; it
// needs root). Appends fail with storage_full naming the disk, every earlier
// acknowledged event stays intact and verifies, the store keeps serving
// reads, and appends resume once space is freed.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>

#include "tests/storage/store_fixture.h"
#include "tests/support/tmpfs.h"

using namespace spirit;
using Catch::Matchers::Contains;

TEST_CASE("a full disk fails appends cleanly and they resume when space is freed",
          "[storage][fault]") {
    test::TempDir dir;
    test::TmpfsMount mount(dir.path() / "disk", "12m");
    const auto filler = dir.path() / "disk" / "filler";
    {
        // Space to give back later.
        std::ofstream out(filler, std::ios::binary);
        std::string mib(1 << 20, 'f');
        for (int i = 0; i < 4; ++i) out.write(mib.data(), static_cast<std::streamsize>(mib.size()));
    }
    storage::StoreOptions options;
    options.data_dir = dir.path() / "disk" / "data";
    options.map_bytes = 256u << 20;  // larger than the disk: the disk fills first
    auto opened = storage::Store::open(options);
    REQUIRE(opened);
    storage::Store& store = **opened;

    std::string payload(4000, 'x');
    std::vector<core::EventDraft> events(
        16, core::EventDraft{std::nullopt, "t", {}, core::as_bytes(payload)});
    std::uint64_t acked = 0;
    std::optional<core::Error> failure;
    for (int i = 0; i < 10'000 && !failure; ++i) {
        auto r = store.append_sync({.stream = "s", .events = events});
        if (r) {
            acked = r->last_seq.value();
        } else {
            failure = r.error();
        }
    }
    REQUIRE(failure);
    INFO(failure->message());
    CHECK(failure->is(core::errc::storage_full));
    CHECK_THAT(failure->detail, Contains("disk full"));
    REQUIRE(acked > 0);

    // Reads still work, and everything acknowledged is there and verifies.
    auto info = store.stream_info("s");
    REQUIRE(*info);
    CHECK((*info)->last_seq.value() == acked);
    auto report = store.verify("s");
    REQUIRE(report);
    CHECK_FALSE(report->first_break);
    CHECK(report->events_checked == acked);

    std::filesystem::remove(filler);
    auto resumed = store.append_sync({.stream = "s", .events = events});
    REQUIRE(resumed);
    CHECK(resumed->first_seq.value() == acked + 1);
    CHECK_FALSE(store.verify("s")->first_break);

    // And all of it survives a reopen.
    opened->reset();
    auto reopened = storage::Store::open(options);
    REQUIRE(reopened);
    CHECK((*(*reopened)->stream_info("s"))->last_seq.value() == acked + 16);
    CHECK_FALSE((*reopened)->verify("s")->first_break);
}
