#include "daemon/bench.h"

#include <atomic>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "net/client.h"

namespace spirit::daemon {

namespace proto = core::protocol;
using Clock = std::chrono::steady_clock;

std::size_t LatencyHistogram::index_of(std::uint64_t ns) {
    if (ns < (1u << sub_bucket_bits)) return static_cast<std::size_t>(ns);
    const int msb = 63 - std::countl_zero(ns);
    const int shift = msb - sub_bucket_bits;
    const std::uint64_t sub = (ns >> shift) & ((1u << sub_bucket_bits) - 1);
    return (static_cast<std::size_t>(shift + 1) << sub_bucket_bits) + static_cast<std::size_t>(sub);
}

std::uint64_t LatencyHistogram::value_of(std::size_t index) {
    const std::size_t group = index >> sub_bucket_bits;
    const std::uint64_t sub = index & ((1u << sub_bucket_bits) - 1);
    if (group == 0) return sub;
    const int shift = static_cast<int>(group) - 1;
    // The upper edge of the bucket: percentiles never understate.
    return ((sub | (1u << sub_bucket_bits)) << shift) + ((std::uint64_t{1} << shift) - 1);
}

void LatencyHistogram::record(std::uint64_t ns) {
    ++buckets_[index_of(ns)];
    ++count_;
    max_ = std::max(max_, ns);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < std::size(buckets_); ++i) buckets_[i] += other.buckets_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
}

std::uint64_t LatencyHistogram::percentile(double p) const {
    if (count_ == 0) return 0;
    const auto rank =
        static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < std::size(buckets_); ++i) {
        seen += buckets_[i];
        if (seen >= std::max<std::uint64_t>(rank, 1)) return std::min(value_of(i), max_);
    }
    return max_;
}

void add_bench_options(CLI::App& c, BenchArgs& a) {
    c.add_option("--producers", a.producers, "producer connections (one thread each)")
        ->capture_default_str();
    c.add_option("--consumers", a.consumers, "consumer connections, subscribed from new")
        ->capture_default_str();
    c.add_option("--payload", a.payload_bytes, "payload bytes per event (>= 16)")
        ->capture_default_str();
    c.add_option("--count", a.count, "events to publish in total")->capture_default_str();
    c.add_option("--rate", a.rate, "target events/s in total (0: as fast as possible)")
        ->capture_default_str();
    c.add_option("--stream", a.stream, "stream to publish to")->capture_default_str();
    c.add_option("--redundancy", a.redundancy,
                 "create the stream with this redundancy (eventual | immediate)");
    c.add_option("--acks", a.acks, "acks for an immediate stream (majority | all | N)")
        ->capture_default_str();
    c.add_option("--in-flight", a.in_flight, "publish calls outstanding per producer")
        ->capture_default_str();
    c.add_option("--batch", a.batch, "events per publish call")->capture_default_str();
    c.add_flag("!--keep", a.fresh, "keep the stream's existing events (default: delete it first)");
}

namespace {

std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
            .count());
}

std::string duration_text(std::uint64_t ns) {
    if (ns < 10'000) return fmt::format("{} ns", ns);
    if (ns < 10'000'000) return fmt::format("{} us", ns / 1000);
    return fmt::format("{:.1f} ms", static_cast<double>(ns) / 1e6);
}

std::string latency_line(const LatencyHistogram& h) {
    return fmt::format("p50 {}, p99 {}, p99.9 {}, max {} ({} samples)",
                       duration_text(h.percentile(50)), duration_text(h.percentile(99)),
                       duration_text(h.percentile(99.9)), duration_text(h.max()), h.count());
}

struct Shared {
    net::ClientOptions client;
    BenchArgs args;
    std::atomic<bool> failed{false};
    std::mutex mutex;
    std::string error;
    void fail(const std::string& what) {
        std::lock_guard lock(mutex);
        if (!failed.exchange(true)) error = what;
    }
};

void produce(Shared& shared, int index, std::uint64_t count, LatencyHistogram& acks,
             std::uint64_t& lag_max_ns, std::uint64_t& published, double& seconds) {
    auto client = net::Client::connect(shared.client);
    if (!client) return shared.fail("producer: " + client.error().message());
    const BenchArgs& a = shared.args;
    std::vector<std::byte> payload(a.payload_bytes, std::byte{'p'});
    std::vector<core::EventDraft> events(static_cast<std::size_t>(a.batch),
                                         core::EventDraft{std::nullopt, "bench", {}, {}});
    const double rate = a.rate > 0 ? a.rate / a.producers : 0;
    const std::uint64_t start = now_ns();
    std::uint64_t sent = 0;
    std::uint64_t acked = 0;
    int in_flight = 0;
    while (acked < count && !shared.failed) {
        while (in_flight < a.in_flight && sent < count) {
            const auto n =
                std::min<std::uint64_t>(static_cast<std::uint64_t>(a.batch), count - sent);
            const std::uint64_t now = now_ns();
            if (rate > 0) {
                // Paced: send what is due. How late it goes out is the
                // schedule lag, reported apart from the latency.
                const auto due =
                    start + static_cast<std::uint64_t>(static_cast<double>(sent) / rate * 1e9);
                if (due > now) break;
                lag_max_ns = std::max(lag_max_ns, now - due);
            }
            std::memcpy(payload.data(), &now, sizeof now);
            std::memcpy(payload.data() + 8, &index, sizeof index);
            for (auto& e : events) e.payload = payload;
            (*client)->publish_async(a.stream, std::span(events.data(), n), {},
                                     [&, n, now](core::Result<net::PublishReceipt> r) {
                                         --in_flight;
                                         if (!r)
                                             return shared.fail("publish: " + r.error().message());
                                         acks.record(now_ns() - now);
                                         acked += n;
                                     });
            ++in_flight;
            sent += n;
        }
        core::Result<void> r;
        if (rate > 0 && sent < count && in_flight < a.in_flight) {
            // Paced and nothing due: serve I/O for one loop turn (at most
            // 1 ms); events falling due meanwhile go out together, as a
            // producer with a short linger would send them.
            r = (*client)->run_for(std::chrono::milliseconds(1));
        } else {
            r = (*client)->run_until(
                [&] { return (sent < count && in_flight < a.in_flight) || acked >= count; },
                std::chrono::milliseconds(30'000));
        }
        if (!r) return shared.fail("producer: " + r.error().message());
    }
    published = acked;
    seconds = static_cast<double>(now_ns() - start) / 1e9;
}

void consume(Shared& shared, std::uint64_t expected, std::atomic<int>& ready, LatencyHistogram& e2e,
             std::uint64_t& received) {
    auto client = net::Client::connect(shared.client);
    if (!client) {
        ++ready;
        return shared.fail("consumer: " + client.error().message());
    }
    net::SubscribeOptions options;
    options.target = shared.args.stream;
    options.from = proto::From::new_;
    options.credit_events = 4096;
    options.verify = true;
    auto sub = (*client)->subscribe(options, [&](const core::EnvelopeView& e) {
        std::uint64_t sent = 0;
        if (e.payload.size() >= 8) std::memcpy(&sent, e.payload.data(), sizeof sent);
        const std::uint64_t now = now_ns();
        e2e.record(now > sent ? now - sent : 0);
        ++received;
    });
    ++ready;
    if (!sub) return shared.fail("consumer: " + sub.error().message());
    auto last_progress = Clock::now();
    std::uint64_t seen = 0;
    while (received < expected && !shared.failed) {
        auto r = (*client)->run_for(std::chrono::milliseconds(50));
        if (!r) return shared.fail("consumer: " + r.error().message());
        if ((*sub)->ended()) return shared.fail("consumer: " + (*sub)->ended()->message());
        if (received != seen) {
            seen = received;
            last_progress = Clock::now();
        } else if (Clock::now() - last_progress > std::chrono::seconds(30)) {
            return shared.fail(
                fmt::format("consumer: stalled at {} of {} events", received, expected));
        }
    }
}

}  // namespace

int run_bench(const std::string& server, const std::string& token, const BenchArgs& a) {
    if (a.producers < 1 || a.in_flight < 1 || a.batch < 1 || a.payload_bytes < 16 || a.count < 1) {
        std::fprintf(stderr,
                     "spirit bench: --producers, --in-flight, --batch and --count must be >= 1, "
                     "--payload >= 16\n");
        return 2;
    }
    Shared shared;
    shared.args = a;
    shared.client.client_name = "spirit-bench";
    shared.client.reconnect = false;
    if (!token.empty()) shared.client.token = token;
    std::string address = server;
    if (address.empty()) {
        const char* env = std::getenv("SPIRIT_SERVER");
        address = env != nullptr && env[0] != '\0' ? env : "127.0.0.1:7700";
    }
    auto endpoint = net::parse_endpoint(address);
    if (!endpoint) {
        std::fprintf(stderr, "spirit bench: %s\n", endpoint.error().message().c_str());
        return 2;
    }
    shared.client.endpoint = *endpoint;

    {
        auto admin = net::Client::connect(shared.client);
        if (!admin) {
            std::fprintf(stderr, "spirit bench: %s\n", admin.error().message().c_str());
            return 4;
        }
        if (a.fresh) (void)(*admin)->delete_stream(a.stream);
        if (!a.redundancy.empty()) {
            core::StreamPolicy policy;
            policy.redundancy = a.redundancy == "immediate" ? core::Redundancy::immediate
                                                            : core::Redundancy::eventual;
            if (a.acks == "all") {
                policy.acks.kind = core::Acks::Kind::all;
            } else if (a.acks != "majority") {
                policy.acks = {core::Acks::Kind::count,
                               static_cast<std::uint8_t>(std::stoi(a.acks))};
            }
            auto created = (*admin)->create_stream(a.stream, policy);
            if (!created && !created.error().is(core::errc::already_exists)) {
                std::fprintf(stderr, "spirit bench: %s\n", created.error().message().c_str());
                return 1;
            }
        }
    }

    std::printf(
        "spirit bench: %d producers x %d in flight x batch %d, %zu-byte payloads, %llu events, "
        "stream %s%s, rate %s\n",
        a.producers, a.in_flight, a.batch, a.payload_bytes,
        static_cast<unsigned long long>(a.count), a.stream.c_str(),
        a.redundancy.empty() ? "" : (" (" + a.redundancy + ")").c_str(),
        a.rate > 0 ? fmt::format("{:.0f}/s", a.rate).c_str() : "max");
    std::vector<LatencyHistogram> e2e(static_cast<std::size_t>(a.consumers));
    std::vector<std::uint64_t> received(static_cast<std::size_t>(a.consumers), 0);
    std::atomic<int> consumers_ready{0};
    std::vector<std::thread> consumers;
    for (int i = 0; i < a.consumers; ++i) {
        consumers.emplace_back([&, i] {
            consume(shared, a.count, consumers_ready, e2e[static_cast<std::size_t>(i)],
                    received[static_cast<std::size_t>(i)]);
        });
    }
    while (consumers_ready < a.consumers) std::this_thread::sleep_for(std::chrono::milliseconds(5));

    std::vector<LatencyHistogram> acks(static_cast<std::size_t>(a.producers));
    std::vector<std::uint64_t> published(static_cast<std::size_t>(a.producers), 0);
    std::vector<double> seconds(static_cast<std::size_t>(a.producers), 0);
    std::vector<std::uint64_t> lag_max_ns(static_cast<std::size_t>(a.producers), 0);
    std::vector<std::thread> producers;
    const auto start = Clock::now();
    for (int i = 0; i < a.producers; ++i) {
        const std::uint64_t share =
            a.count / static_cast<std::uint64_t>(a.producers) +
            (static_cast<std::uint64_t>(i) < a.count % static_cast<std::uint64_t>(a.producers) ? 1
                                                                                               : 0);
        producers.emplace_back([&, i, share] {
            const auto k = static_cast<std::size_t>(i);
            produce(shared, i, share, acks[k], lag_max_ns[k], published[k], seconds[k]);
        });
    }
    for (auto& t : producers) t.join();
    const double publish_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    for (auto& t : consumers) t.join();
    const double total_seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (shared.failed) {
        std::fprintf(stderr, "spirit bench: %s\n", shared.error.c_str());
        return 1;
    }
    LatencyHistogram ack_all;
    for (const auto& h : acks) ack_all.merge(h);
    std::uint64_t total = 0;
    for (std::uint64_t p : published) total += p;
    const double rate = static_cast<double>(total) / publish_seconds;
    std::printf("published %llu events in %.2f s: %.0f events/s, %.1f MB/s of payload\n",
                static_cast<unsigned long long>(total), publish_seconds, rate,
                rate * static_cast<double>(a.payload_bytes) / 1e6);
    std::printf("publish->ack:  %s\n", latency_line(ack_all).c_str());
    if (a.rate > 0) {
        const std::uint64_t lag = *std::max_element(lag_max_ns.begin(), lag_max_ns.end());
        std::printf("pacing: events went out at most %s after they were due%s\n",
                    duration_text(lag).c_str(),
                    lag > 50'000'000 ? " (the rate was not sustained)" : "");
    }
    if (a.consumers > 0) {
        LatencyHistogram all;
        for (const auto& h : e2e) all.merge(h);
        std::uint64_t got = 0;
        for (std::uint64_t r : received) got += r;
        std::printf("delivered %llu events to %d consumers in %.2f s\n",
                    static_cast<unsigned long long>(got), a.consumers, total_seconds);
        std::printf("publish->subscriber: %s\n", latency_line(all).c_str());
    }
    return 0;
}

}  // namespace spirit::daemon
