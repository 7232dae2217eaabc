// Publish and subscribe through real spiritd processes over a Unix socket:
// many producers, subscriptions from first / a seq / a time / new, every
// event once and in order with its chain verified by the client library;
// a durable consumer (the spirit CLI) killed mid-stream resumes after its
// last ack; SIGKILL of spiritd while publishing loses no acknowledged event.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "core/codec.h"
#include "tests/integration/daemon_harness.h"

using namespace spirit;
namespace proto = core::protocol;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

struct Received {
    std::vector<std::uint64_t> seqs;
    std::vector<std::string> payloads;
    std::vector<std::uint64_t> stamps;
};

// Subscribes and collects until `expected` events or `timeout`.
Received collect(net::Client& client, net::SubscribeOptions options, std::size_t expected,
                 milliseconds timeout = seconds(60)) {
    Received r;
    auto sub = client.subscribe(options, [&](const core::EnvelopeView& e) {
        r.seqs.push_back(e.seq.value());
        r.payloads.emplace_back(core::as_chars(e.payload));
        r.stamps.push_back(e.timestamp_ns.value());
    });
    REQUIRE(sub);
    auto done =
        client.run_until([&] { return r.seqs.size() >= expected || (*sub)->ended(); }, timeout);
    INFO("received " << r.seqs.size() << " of " << expected);
    REQUIRE(done);
    REQUIRE_FALSE((*sub)->ended());  // a chain break would end it with hash_mismatch
    return r;
}

void check_consecutive(const Received& r, std::uint64_t first) {
    for (std::size_t i = 0; i < r.seqs.size(); ++i) REQUIRE(r.seqs[i] == first + i);
}

}  // namespace

TEST_CASE("100,000 events from 4 producers reach subscribers from first, a seq, a time and new",
          "[integration]") {
    test::Daemon daemon;
    daemon.start();
    constexpr int producers = 4;
    constexpr int per_producer = 25'000;
    constexpr std::size_t total = producers * per_producer;

    // A `new` subscriber started before anything is published.
    std::atomic<bool> new_ready{false};
    Received from_new;
    std::thread new_thread([&] {
        auto client = daemon.client();
        net::SubscribeOptions options{.target = "orders", .from = proto::From::new_};
        std::atomic<bool>* ready = &new_ready;
        auto sub = client->subscribe(
            options, [&](const core::EnvelopeView& e) { from_new.seqs.push_back(e.seq.value()); });
        REQUIRE(sub);
        ready->store(true);
        REQUIRE(client->run_until([&] { return from_new.seqs.size() >= total; }, seconds(120)));
    });
    while (!new_ready) std::this_thread::sleep_for(milliseconds(5));

    std::mutex mutex;
    std::uint64_t middle_ts = 0;
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            auto client = daemon.client();
            std::vector<std::string> payloads;
            for (int i = 0; i < per_producer; ++i) payloads.push_back(fmt::format("p{}-{}", p, i));
            int acked = 0;
            for (int i = 0; i < per_producer; ++i) {
                core::EventDraft e{std::nullopt,
                                   "test",
                                   {},
                                   core::as_bytes(payloads[static_cast<std::size_t>(i)])};
                client->publish_async("orders", std::span(&e, 1), {},
                                      [&, i](core::Result<net::PublishReceipt> r) {
                                          REQUIRE(r);
                                          ++acked;
                                          if (p == 0 && i == per_producer / 2) {
                                              std::lock_guard lock(mutex);
                                              middle_ts = r->timestamp_ns.value();
                                          }
                                      });
                if (client->publishes_in_flight() >= 256) {
                    REQUIRE(client->run_until([&] { return client->publishes_in_flight() < 64; },
                                              seconds(60)));
                }
            }
            REQUIRE(client->flush(seconds(60)));
            REQUIRE(acked == per_producer);
        });
    }
    for (auto& t : threads) t.join();
    new_thread.join();

    auto client = daemon.client();
    SECTION("from first: all, once, in order, each producer's events in its order") {
        // The subscription stays open after the last event: a sentinel
        // published after everything else must be the very next event, so
        // any duplicate or stray event sent before it is counted too.
        Received all;
        auto sub = client->subscribe({.target = "orders"}, [&](const core::EnvelopeView& e) {
            all.seqs.push_back(e.seq.value());
            all.payloads.emplace_back(core::as_chars(e.payload));
        });
        REQUIRE(sub);
        REQUIRE(client->run_until([&] { return all.seqs.size() >= total || (*sub)->ended(); },
                                  seconds(60)));
        REQUIRE_FALSE((*sub)->ended());
        auto publisher = daemon.client();
        const std::string sentinel = "sentinel";
        core::EventDraft e{std::nullopt, "", {}, core::as_bytes(sentinel)};
        auto sentinel_ack = publisher->publish("orders", std::span(&e, 1));
        REQUIRE(sentinel_ack);
        REQUIRE(sentinel_ack->first_seq.value() == total + 1);
        REQUIRE(client->run_until(
            [&] { return !all.payloads.empty() && all.payloads.back() == sentinel; }, seconds(30)));
        // Exactly once: total events, then the sentinel, nothing else.
        REQUIRE(all.seqs.size() == total + 1);
        check_consecutive(all, 1);
        all.payloads.pop_back();
        std::set<std::string> unique(all.payloads.begin(), all.payloads.end());
        CHECK(unique.size() == total);
        std::map<int, int> next;
        for (const std::string& payload : all.payloads) {
            const int producer = payload[1] - '0';
            const int index = std::stoi(payload.substr(payload.find('-') + 1));
            REQUIRE(index == next[producer]);
            ++next[producer];
        }
        for (int p = 0; p < producers; ++p) CHECK(next[p] == per_producer);
    }
    SECTION("from a seq") {
        Received r =
            collect(*client, {.target = "orders", .from = proto::From::seq, .from_value = 50'001},
                    total - 50'000);
        REQUIRE(r.seqs.size() == total - 50'000);
        check_consecutive(r, 50'001);
    }
    SECTION("from a time") {
        REQUIRE(middle_ts > 0);
        Received all = collect(*client, {.target = "orders"}, total);
        std::size_t first_at = 0;
        while (all.stamps[first_at] < middle_ts) ++first_at;
        auto client2 = daemon.client();
        Received r = collect(
            *client2, {.target = "orders", .from = proto::From::time, .from_value = middle_ts},
            total - first_at);
        REQUIRE(r.seqs.size() == total - first_at);
        CHECK(r.seqs.front() == first_at + 1);
        CHECK(r.stamps.front() >= middle_ts);
        check_consecutive(r, first_at + 1);
    }
    SECTION("new: everything published after it started, and only that") {
        REQUIRE(from_new.seqs.size() == total);
        check_consecutive(from_new, 1);
        Received later;
        auto sub = client->subscribe(
            {.target = "orders", .from = proto::From::new_},
            [&](const core::EnvelopeView& e) { later.seqs.push_back(e.seq.value()); });
        REQUIRE(sub);
        CHECK(client->run_for(milliseconds(200)));
        CHECK(later.seqs.empty());
        auto publisher = daemon.client();
        const std::string payload = "one more";
        core::EventDraft e{std::nullopt, "", {}, core::as_bytes(payload)};
        REQUIRE(publisher->publish("orders", std::span(&e, 1)));
        REQUIRE(client->run_until([&] { return !later.seqs.empty(); }, seconds(10)));
        CHECK(later.seqs == std::vector<std::uint64_t>{total + 1});
    }
}

namespace {

// A child process whose stdout we read line by line.
struct Child {
    pid_t pid = -1;
    int out = -1;
    std::string buffer;
    ~Child() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (out >= 0) ::close(out);
    }
    void start(const std::vector<std::string>& argv) {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::dup2(fds[1], STDOUT_FILENO);
            ::close(fds[0]);
            ::close(fds[1]);
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        out = fds[0];
    }
    // Lines read so far; waits up to `timeout` for at least `lines`.
    std::vector<std::string> read_lines(std::size_t lines, milliseconds timeout) {
        std::vector<std::string> got;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (got.size() < lines && std::chrono::steady_clock::now() < deadline) {
            std::size_t nl;
            while ((nl = buffer.find('\n')) != std::string::npos && got.size() < lines) {
                got.push_back(buffer.substr(0, nl));
                buffer.erase(0, nl + 1);
            }
            if (got.size() >= lines) break;
            pollfd p{out, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            char chunk[65536];
            ssize_t n = ::read(out, chunk, sizeof chunk);
            if (n <= 0) break;
            buffer.append(chunk, static_cast<std::size_t>(n));
        }
        return got;
    }
};

std::uint64_t seq_of(const std::string& json_line) {
    const auto at = json_line.find("\"seq\":");
    REQUIRE(at != std::string::npos);
    return std::stoull(json_line.substr(at + 6));
}

}  // namespace

namespace {

struct Resumed {
    std::uint64_t last_printed = 0;  // by the consumer that was killed
    std::uint64_t resumed_at = 0;    // the first seq its successor printed
};

constexpr std::uint64_t durable_credit = 50;

// A durable `spirit sub` with credit 50 prints 5,000 of 20,000 events and is
// killed; another with the same name prints the rest. Checks the resumed
// stream (every seq from the resume point to the end, once, no gap, nothing
// after) and returns where each stopped and started.
Resumed kill_and_resume() {
    test::Daemon daemon;
    daemon.start();
    constexpr std::uint64_t total = 20'000;
    {
        auto client = daemon.client();
        std::vector<std::string> payloads;
        for (std::uint64_t i = 0; i < total; ++i) payloads.push_back(std::to_string(i + 1));
        std::vector<core::EventDraft> batch;
        for (const auto& p : payloads) batch.push_back({std::nullopt, "t", {}, core::as_bytes(p)});
        for (std::size_t at = 0; at < batch.size(); at += 1000) {
            REQUIRE(client->publish("ledger", std::span(batch).subspan(at, 1000)));
        }
    }
    const std::vector<std::string> command{
        SPIRIT_CLI, "--socket", (daemon.dir() / "spirit.sock").string(),
        "sub",      "ledger",   "--durable",
        "billing",  "--credit", std::to_string(durable_credit)};
    Resumed r;
    {
        Child consumer;
        consumer.start(command);
        auto lines = consumer.read_lines(5000, seconds(30));
        REQUIRE(lines.size() == 5000);
        for (std::size_t i = 0; i < lines.size(); ++i) REQUIRE(seq_of(lines[i]) == i + 1);
        ::kill(consumer.pid, SIGKILL);  // mid-stream: no goodbye, no final ack
        ::waitpid(consumer.pid, nullptr, 0);
        consumer.pid = -1;
        // What it printed before dying, including lines still in the pipe
        // (it acks only what it printed and flushed).
        auto unread = consumer.read_lines(total, milliseconds(500));
        r.last_printed = seq_of(unread.empty() ? lines.back() : unread.back());
    }
    Child again;
    again.start(command);
    auto lines = again.read_lines(1, seconds(30));
    REQUIRE(lines.size() == 1);
    r.resumed_at = seq_of(lines.front());
    INFO("printed up to " << r.last_printed << ", resumed at " << r.resumed_at);
    REQUIRE(r.last_printed >= 5000);
    // Never from the start, never past what was printed.
    CHECK(r.resumed_at > 1);
    CHECK(r.resumed_at <= r.last_printed + 1);
    auto rest = again.read_lines(total - r.resumed_at, seconds(60));
    REQUIRE(rest.size() == total - r.resumed_at);
    for (std::size_t i = 0; i < rest.size(); ++i) {
        REQUIRE(seq_of(rest[i]) == r.resumed_at + 1 + i);
    }
    // And nothing after the last event.
    CHECK(again.read_lines(1, milliseconds(300)).empty());
    return r;
}

}  // namespace

TEST_CASE("a durable consumer killed mid-stream resumes after its last ack, without a gap",
          "[integration]") {
    (void)kill_and_resume();
}

// The CLI acks each Events frame (at most `credit` events) once it has
// printed it, and the daemon stores a durable consumer's position as it
// acks (docs/protocol.md), keeping the last ack even if it came just before
// the consumer left (Server::forget_subscription), also while an earlier
// cursor write was in flight, so the stored ack is one frame behind what was
// printed at most (the consumer may die between printing a frame and acking
// it): the resume point lies in [last_printed + 1 - credit, last_printed + 1].
// (It once lost the acks that came during a write in flight: printed up to
// 5,150, resumed at 4,351.)
TEST_CASE("a durable consumer killed mid-stream resumes within one frame of what it printed",
          "[integration]") {
    const Resumed r = kill_and_resume();
    INFO("printed up to " << r.last_printed << ", resumed at " << r.resumed_at << ", credit "
                          << durable_credit);
    CHECK(r.resumed_at + durable_credit >= r.last_printed + 1);
}

TEST_CASE("SIGKILL of spiritd while publishing loses no acknowledged event", "[integration]") {
    test::Daemon daemon;
    daemon.start();
    std::map<std::uint64_t, std::string> acked;  // seq -> payload
    std::atomic<std::uint64_t> acked_count{0};   // read by the main thread
    std::atomic<bool> stop{false};
    std::thread producer([&] {
        net::ClientOptions options;
        options.reconnect = false;
        auto client = daemon.client(options);
        std::deque<std::string> payloads;  // stable addresses for the callbacks
        std::uint64_t n = 0;
        while (!stop) {
            payloads.push_back(fmt::format("event-{}", n++));
            core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payloads.back())};
            const std::string* p = &payloads.back();
            client->publish_async("crashy", std::span(&e, 1), {},
                                  [&acked, &acked_count, p](core::Result<net::PublishReceipt> r) {
                                      if (!r) return;
                                      acked[r->first_seq.value()] = *p;
                                      ++acked_count;
                                  });
            if (client->publishes_in_flight() >= 128) {
                if (!client->run_until([&] { return client->publishes_in_flight() < 32; },
                                       seconds(10))) {
                    break;  // the daemon is gone
                }
            }
            if (payloads.size() > 2'000'000) break;
        }
        (void)client->flush(seconds(2));
    });
    // Kill it mid-stream, once a good number of publishes were acked (a
    // condition, not a time: slow machines just take longer to get there).
    constexpr std::uint64_t acked_before_kill = 5000;
    const auto deadline = std::chrono::steady_clock::now() + seconds(120);
    while (acked_count < acked_before_kill && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(5));
    }
    daemon.kill9();
    stop = true;
    producer.join();
    REQUIRE(acked.size() >= acked_before_kill);

    daemon.start();
    auto client = daemon.client();
    auto info = client->stream_info("crashy");
    REQUIRE(info);
    Received r = collect(*client, {.target = "crashy"}, info->last_seq.value(), seconds(60));
    INFO("acked " << acked.size() << ", stored " << info->last_seq.value());
    REQUIRE(info->last_seq.value() >= acked.rbegin()->first);
    for (const auto& [seq, payload] : acked) {
        REQUIRE(seq <= r.seqs.size());
        REQUIRE(r.payloads[seq - 1] == payload);
    }
    auto verify = client->verify("crashy");
    REQUIRE(verify);
    CHECK_FALSE(verify->break_seq);
}

TEST_CASE("SIGTERM while publishing: committed publishes are acked, then a clean exit",
          "[integration]") {
    test::Daemon daemon;
    daemon.start();
    std::map<std::uint64_t, std::string> acked;
    std::uint64_t refused = 0;
    std::uint64_t lost = 0;
    std::atomic<std::uint64_t> acked_count{0};  // read by the main thread
    std::atomic<bool> go{true};
    std::thread producer([&] {
        net::ClientOptions options;
        options.reconnect = false;
        auto client = daemon.client(options);
        std::deque<std::string> payloads;
        for (int i = 0; go && i < 1'000'000; ++i) {
            payloads.push_back(fmt::format("e{}", i));
            const std::string* p = &payloads.back();
            core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(*p)};
            client->publish_async("graceful", std::span(&e, 1), {},
                                  [&, p](core::Result<net::PublishReceipt> r) {
                                      if (r) {
                                          acked[r->first_seq.value()] = *p;
                                          ++acked_count;
                                      } else if (r.error().is(core::errc::connection_lost)) {
                                          ++lost;
                                      } else {
                                          ++refused;
                                      }
                                  });
            if (client->publishes_in_flight() >= 64 &&
                !client->run_until([&] { return client->publishes_in_flight() < 16; },
                                   seconds(10))) {
                break;
            }
        }
        (void)client->flush(seconds(5));
    });
    constexpr std::uint64_t acked_before_stop = 1000;
    const auto deadline = std::chrono::steady_clock::now() + seconds(120);
    while (acked_count < acked_before_stop && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(5));
    }
    const int status = daemon.stop(SIGTERM);
    go = false;
    producer.join();
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_THAT(daemon.log(), Catch::Matchers::Contains("shutdown complete"));
    INFO("acked " << acked.size() << " refused " << refused << " lost " << lost);
    REQUIRE(acked.size() >= acked_before_stop);
    // Publishes already read were committed and acked before the close; the
    // connection closing can only cut off ones the daemon never read.
    daemon.start();
    auto client = daemon.client();
    auto info = client->stream_info("graceful");
    REQUIRE(info);
    Received r = collect(*client, {.target = "graceful"}, info->last_seq.value());
    for (const auto& [seq, payload] : acked) REQUIRE(r.payloads[seq - 1] == payload);
    // Nothing committed went unacknowledged: the daemon acked every event it stored.
    CHECK(info->last_seq.value() == acked.size());
}
