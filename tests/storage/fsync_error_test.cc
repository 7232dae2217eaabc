// An fsync that fails (EIO injected into fdatasync with libfiu's fiu-run)
// fails the append that needed it with storage_io; the store then refuses
// every write with storage_failed, because after a failed fsync the kernel
// may have dropped dirty pages and carrying on could acknowledge what is not
// on disk. After a restart (reopen) every event acknowledged before the
// error is intact, the chain verifies, and appends work again.
#include <catch2/catch.hpp>

#include <map>
#include <sstream>

#include "tests/integration/daemon_harness.h"
#include "tests/storage/store_fixture.h"

using namespace spirit;
using Catch::Matchers::Contains;

// Release build only: fiu-run works by preloading an interposer, which an
// ASan-instrumented child does not survive (ASan's runtime must load first).
#ifndef SPIRIT_SANITIZED
TEST_CASE("a failed fsync fails the append, then the store refuses writes until reopened",
          "[storage][fault]") {
    test::TempDir dir;
    const std::string data = (dir.path() / "data").string();
    {
        // Create the store first: reopening an existing one commits nothing,
        // so the injected faults can only hit the appends.
        storage::StoreOptions options;
        options.data_dir = data;
        REQUIRE(storage::Store::open(options));
    }
    // fiu-run preloads its library; under ASan its runtime must still come first.
    auto run = test::run_command(
        {"/usr/bin/env", "ASAN_OPTIONS=verify_asan_link_order=0", "/usr/bin/fiu-run", "-x", "-c",
         "enable_random name=posix/io/sync/fdatasync,probability=0.1,"
         "failinfo=5",
         SPIRIT_FAULT_CHILD, data, "300"},
        "", std::chrono::seconds(60));
    INFO("stdout:\n" << run.out << "\nstderr:\n" << run.err);
    REQUIRE(run.exit_code == 0);
    std::map<std::uint64_t, std::string> acked;
    std::vector<std::string> failures;
    std::istringstream lines(run.out);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind("ack ", 0) == 0) {
            std::istringstream l(line.substr(4));
            std::uint64_t seq;
            std::string payload;
            l >> seq >> payload;
            REQUIRE(failures.empty());  // nothing is acknowledged after the first failure
            acked[seq] = payload;
        } else if (line.rfind("fail ", 0) == 0) {
            failures.push_back(line);
        }
    }
    REQUIRE_FALSE(failures.empty());
    CHECK_THAT(failures.front(), Contains("fail storage_io"));
    CHECK_THAT(failures.front(), Contains("Input/output error"));
    for (std::size_t i = 1; i < failures.size(); ++i) {
        CHECK_THAT(failures[i], Contains("fail storage_failed"));
        CHECK_THAT(failures[i], Contains("restart spiritd to recover"));
    }

    // Restart: everything acknowledged is there, and writes work again.
    storage::StoreOptions options;
    options.data_dir = data;
    auto store = storage::Store::open(options);
    REQUIRE(store);
    std::map<std::uint64_t, std::string> stored;
    if (!acked.empty()) {
        REQUIRE((*store)->read("faulty", {.from_seq = core::Seq{1}, .events_max = 100'000},
                               [&](const core::EnvelopeView& e, core::ByteView) {
                                   stored[e.seq.value()] = std::string(core::as_chars(e.payload));
                                   return storage::Visit::next;
                               }));
    }
    for (const auto& [seq, payload] : acked) CHECK(stored[seq] == payload);
    const std::string payload = "after restart";
    core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
    auto r = (*store)->append_sync({.stream = "faulty", .events = std::span(&e, 1)});
    REQUIRE(r);
    auto report = (*store)->verify("faulty");
    REQUIRE(report);
    CHECK_FALSE(report->first_break);
}
#endif  // SPIRIT_SANITIZED
