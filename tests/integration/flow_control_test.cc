// A stuck subscriber costs bounded memory and does not slow publishers.
// Method: publish 256 MiB with no subscriber (baseline rate), then 1 GiB
// while two subscribers are stuck: one grants no credit, one grants plenty
// but never reads its socket. The daemon's anonymous resident memory
// (RssAnon: heap and stacks; LMDB's pages are file-backed) is sampled all
// along and must stay under the bound; the publish rate must stay within
// noise of the baseline.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "core/protocol.h"
#include "tests/integration/daemon_harness.h"
#include "tests/integration/raw_socket.h"

using namespace spirit;
namespace proto = core::protocol;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// The bounds, from the limits in play. A subscriber without credit costs
// nothing; one that never reads costs at most its connection's send queue
// (limits.pending_bytes_per_connection_max, 8 MiB) plus one read batch
// (1 MiB), which the growing send buffer and the allocator may hold twice.
// The producer's side is bounded by publish_bytes_in_flight_max (32 MiB).
constexpr std::uint64_t stuck_extra_bound_kib = 2 * (8 + 1) * 1024 + 4 * 1024;
constexpr std::uint64_t rss_anon_bound_kib = 64 * 1024;

// Publishes `bytes` as 64 KiB events, 16 per publish, 8 publishes in
// flight; returns MiB/s. Samples RssAnon into `peak_kib`.
double publish(net::Client& client, std::uint64_t bytes, pid_t daemon, std::uint64_t& peak_kib) {
    const std::string payload(64 * 1024, 'x');
    std::vector<core::EventDraft> batch(
        16, core::EventDraft{std::nullopt, "blob", {}, core::as_bytes(payload)});
    const std::uint64_t publishes = bytes / (payload.size() * batch.size());
    std::uint64_t acked = 0;
    const auto start = std::chrono::steady_clock::now();
    auto last_sample = start;
    for (std::uint64_t i = 0; i < publishes; ++i) {
        client.publish_async("blobs", batch, {}, [&](core::Result<net::PublishReceipt> r) {
            if (!r) FAIL("publish: " << r.error().message());
            ++acked;
        });
        if (client.publishes_in_flight() >= 8) {
            REQUIRE(
                client.run_until([&] { return client.publishes_in_flight() < 8; }, seconds(60)));
        }
        if (std::chrono::steady_clock::now() - last_sample > milliseconds(50)) {
            last_sample = std::chrono::steady_clock::now();
            peak_kib = std::max(peak_kib, test::rss_anon_kib(daemon));
        }
    }
    REQUIRE(client.flush(seconds(60)));
    REQUIRE(acked == publishes);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return static_cast<double>(bytes) / (1 << 20) / secs;
}

}  // namespace

TEST_CASE("a stuck subscriber costs bounded memory and does not slow the publisher",
          "[integration][slow]") {
    test::Daemon daemon(test::DaemonOptions{.sync = "none"});
    daemon.start();
    auto producer = daemon.client();
    std::uint64_t peak_baseline = 0;
    const double baseline =
        publish(*producer, std::uint64_t{256} << 20, daemon.pid(), peak_baseline);

    // Subscriber 1: a client that grants no credit.
    auto no_credit = daemon.client();
    std::uint64_t delivered_to_no_credit = 0;
    auto sub = no_credit->subscribe({.target = "blobs", .credit_events = 0},
                                    [&](const core::EnvelopeView&) { ++delivered_to_no_credit; });
    REQUIRE(sub);
    // Subscriber 2: grants a million events and never reads its socket.
    test::RawSocket deaf((daemon.dir() / "spirit.sock").string());
    deaf.send(proto::Hello{proto::version, "deaf", std::nullopt});
    REQUIRE(deaf.receive());
    deaf.send(proto::Subscribe{1, "blobs", proto::From::first, 0, std::nullopt, 1'000'000, 0});

    std::uint64_t peak = 0;
    const double stuck = publish(*producer, std::uint64_t{1} << 30, daemon.pid(), peak);
    REQUIRE(no_credit->run_for(milliseconds(100)));
    UNSCOPED_INFO("publish rate: " << baseline << " MiB/s alone, " << stuck
                                   << " MiB/s with two stuck subscribers; RssAnon peak "
                                   << peak / 1024 << " MiB (alone " << peak_baseline / 1024
                                   << " MiB; bounds: " << rss_anon_bound_kib / 1024 << " MiB, "
                                   << stuck_extra_bound_kib / 1024 << " MiB extra)");
    CHECK(delivered_to_no_credit == 0);
#ifndef SPIRIT_SANITIZED  // ASan's redzones and quarantine make memory figures meaningless
    CHECK(peak < rss_anon_bound_kib);
    CHECK(peak < peak_baseline + stuck_extra_bound_kib);
#endif
    // Within noise: these machines are shared; a stuck subscriber that cost
    // the publisher anything real would show as a far larger drop.
    CHECK(stuck > baseline * 0.5);
    // And the daemon still serves: a normal subscriber reads from the start.
    auto reader = daemon.client();
    std::uint64_t got = 0;
    auto ok = reader->subscribe({.target = "blobs", .credit_events = 64},
                                [&](const core::EnvelopeView&) { ++got; });
    REQUIRE(ok);
    REQUIRE(reader->run_until([&] { return got >= 1000; }, seconds(30)));
}
