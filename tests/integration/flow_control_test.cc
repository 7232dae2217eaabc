// A stuck subscriber costs bounded memory and does not slow publishers.
// Method: publish 256 MiB with no subscriber (the memory baseline), then
// subscribe two stuck subscribers to stream "blobs": one grants no credit,
// one grants plenty but never reads its socket; both subscriptions must be
// confirmed (a refused one would make the bounds hold trivially). Then
// publish in alternating rounds to "blobs" and to "quiet" (no subscriber),
// so both rates see the same machine load at nearly the same time. A
// sampler thread reads the daemon's anonymous resident memory (RssAnon:
// heap and stacks; LMDB's pages are file-backed) every millisecond all
// along; it must stay under the bound. Publishing to "blobs" must keep at
// least 80% of the rate to "quiet". At the end the deaf subscriber's socket
// holds events, so the daemon was sending to it and stopped at its bound.
// Sanitizer builds move a sixteenth of the bytes and check neither memory
// (redzones and shadow memory) nor rates (instrumentation dominates); they
// look for races and leaks on the same paths.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

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
#ifdef SPIRIT_SANITIZED
constexpr std::uint64_t volume_divisor = 16;
#else
constexpr std::uint64_t volume_divisor = 1;
#endif

// Samples a process's RssAnon every millisecond into the peak of the
// current phase, until destroyed.
class RssSampler {
 public:
    explicit RssSampler(pid_t pid)
        : rss_(pid), thread_([this] {
              while (!stop_) {
                  const std::uint64_t kib = rss_.kib();
                  std::atomic<std::uint64_t>& peak = peaks_[phase_.load()];
                  if (kib > peak) peak = kib;
                  std::this_thread::sleep_for(milliseconds(1));
              }
          }) {}
    ~RssSampler() {
        stop_ = true;
        thread_.join();
    }
    void next_phase() { ++phase_; }
    std::uint64_t peak_kib(int phase) const { return peaks_[phase]; }

 private:
    std::atomic<bool> stop_{false};
    std::atomic<int> phase_{0};
    std::atomic<std::uint64_t> peaks_[2] = {0, 0};
    test::RssAnon rss_;
    std::thread thread_;
};

// Publishes `bytes` to `stream` as 64 KiB events, 16 per publish, 8
// publishes in flight; returns the seconds it took.
double publish(net::Client& client, const std::string& stream, std::uint64_t bytes) {
    const std::string payload(64 * 1024, 'x');
    std::vector<core::EventDraft> batch(
        16, core::EventDraft{std::nullopt, "blob", {}, core::as_bytes(payload)});
    const std::uint64_t publishes = bytes / (payload.size() * batch.size());
    std::uint64_t acked = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < publishes; ++i) {
        client.publish_async(stream, batch, {}, [&](core::Result<net::PublishReceipt> r) {
            if (!r) FAIL("publish: " << r.error().message());
            ++acked;
        });
        if (client.publishes_in_flight() >= 8) {
            REQUIRE(
                client.run_until([&] { return client.publishes_in_flight() < 8; }, seconds(60)));
        }
    }
    REQUIRE(client.flush(seconds(60)));
    REQUIRE(acked == publishes);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("a stuck subscriber costs bounded memory and does not slow the publisher",
          "[integration][slow]") {
    test::Daemon daemon(test::DaemonOptions{.sync = "none"});
    daemon.start();
    RssSampler rss(daemon.pid());
    auto producer = daemon.client();
    (void)publish(*producer, "blobs", (std::uint64_t{256} << 20) / volume_divisor);
    rss.next_phase();

    // Subscriber 1: a client that grants no credit.
    auto no_credit = daemon.client();
    std::uint64_t delivered_to_no_credit = 0;
    auto sub = no_credit->subscribe({.target = "blobs", .credit_events = 0},
                                    [&](const core::EnvelopeView&) { ++delivered_to_no_credit; });
    REQUIRE(sub);
    // Subscriber 2: grants a million events and, once the daemon has
    // confirmed the subscription, never reads its socket again.
    test::RawSocket deaf((daemon.dir() / "spirit.sock").string());
    deaf.send(proto::Hello{proto::version, "deaf", std::nullopt});
    REQUIRE(deaf.receive());
    deaf.send(proto::Subscribe{1, "blobs", proto::From::first, 0, std::nullopt, 1'000'000, 0});
    {
        auto reply = deaf.receive();
        REQUIRE(reply);
        const auto* subscribed = std::get_if<proto::Subscribed>(&*reply);
        INFO("reply type index " << reply->index());
        REQUIRE(subscribed != nullptr);
        CHECK(subscribed->subscription_id == 1);
        REQUIRE(subscribed->positions.size() == 1);
        CHECK(subscribed->positions[0].stream == "blobs");
        CHECK(subscribed->positions[0].next_seq == core::Seq{1});
    }

    // Alternating rounds, 512 MiB to each stream (32 MiB under sanitizers).
    constexpr int rounds = 8;
    constexpr std::uint64_t round_bytes = (std::uint64_t{64} << 20) / volume_divisor;
    double stuck_seconds = 0;
    double quiet_seconds = 0;
    std::vector<double> ratios;  // per round: the stuck stream's rate over the quiet one's
    for (int i = 0; i < rounds; ++i) {
        const double quiet_round = publish(*producer, "quiet", round_bytes);
        const double stuck_round = publish(*producer, "blobs", round_bytes);
        quiet_seconds += quiet_round;
        stuck_seconds += stuck_round;
        ratios.push_back(quiet_round / stuck_round);
    }
    std::sort(ratios.begin(), ratios.end());
    const double median_ratio = (ratios[rounds / 2 - 1] + ratios[rounds / 2]) / 2;
    REQUIRE(no_credit->run_for(milliseconds(100)));
    const double mib = static_cast<double>(rounds * round_bytes) / (1 << 20);
    const double stuck = mib / stuck_seconds;
    const double quiet = mib / quiet_seconds;
    const std::uint64_t peak_baseline = rss.peak_kib(0);
    const std::uint64_t peak = rss.peak_kib(1);
    UNSCOPED_INFO("publish rate: " << quiet << " MiB/s to a stream without subscribers, " << stuck
                                   << " MiB/s to one with two stuck subscribers (median "
                                   << "ratio of rounds " << median_ratio << "); "
                                   << "RssAnon peak " << peak / 1024 << " MiB (alone "
                                   << peak_baseline / 1024
                                   << " MiB; bounds: " << rss_anon_bound_kib / 1024 << " MiB, "
                                   << stuck_extra_bound_kib / 1024 << " MiB extra)");
    CHECK(delivered_to_no_credit == 0);
    REQUIRE(peak_baseline > 0);
#ifndef SPIRIT_SANITIZED  // ASan's redzones and quarantine make memory figures meaningless
    CHECK(peak < rss_anon_bound_kib);
    CHECK(peak < peak_baseline + stuck_extra_bound_kib);
    // Interleaved rounds share the machine's load, and the median of the
    // rounds' ratios drops a round a noisy neighbour slowed. A stuck
    // subscriber that cost the publisher real work (a read or a copy per
    // event it cannot send) shows as half the rate; a few percent either
    // way is this machine's noise (speed itself is measured by tests/bench).
    CHECK(median_ratio > 0.6);
#endif
    // The daemon did send to the deaf subscriber, up to its bound.
    {
        auto frame = deaf.receive();
        REQUIRE(frame);
        const auto* events = std::get_if<proto::Events>(&*frame);
        REQUIRE(events != nullptr);
        CHECK(events->subscription_id == 1);
        CHECK_FALSE(events->envelopes.empty());
    }
    // And the daemon still serves: a normal subscriber reads from the start.
    auto reader = daemon.client();
    std::uint64_t got = 0;
    auto ok = reader->subscribe({.target = "blobs", .credit_events = 64},
                                [&](const core::EnvelopeView&) { ++got; });
    REQUIRE(ok);
    REQUIRE(reader->run_until([&] { return got >= 1000 / volume_divisor; }, seconds(30)));
}
