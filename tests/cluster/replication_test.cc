// Replication between three real spiritd processes on loopback (node-a is
// the configured master): copies end byte-identical; a slave killed or
// wiped catches up; immediate acks wait for the copies they promise and name
// the nodes that hold them; a slave cut off from its master keeps eventual
// publishes in its outbox and forwards them once each, in order; consumers
// on the master see an immediate event exactly when its copies are durable.
// (A master that lies is in lying_peer_test.cc.)
#include <catch2/catch.hpp>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <fmt/format.h>

#include "core/identity.h"
#include "tests/cluster/cluster_harness.h"

using namespace spirit;
namespace proto = core::protocol;
using Catch::Matchers::Contains;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr const char* stream_defaults = R"(
[[streams]]
pattern = "imm.>"
redundancy = "immediate"
acks = "majority"
[[streams]]
pattern = "all.>"
redundancy = "immediate"
acks = "all"
)";

// Publishes `count` events "prefix-i" in batches of `batch`, pipelined.
std::vector<net::PublishReceipt> publish(net::Client& client, const std::string& stream,
                                         std::uint64_t count, const std::string& prefix,
                                         std::size_t batch = 100,
                                         const std::function<void(std::uint64_t)>& sent = {}) {
    std::vector<net::PublishReceipt> receipts;
    std::deque<std::string> payloads;
    for (std::uint64_t i = 0; i < count; i += batch) {
        std::vector<core::EventDraft> events;
        for (std::uint64_t j = i; j < std::min<std::uint64_t>(count, i + batch); ++j) {
            payloads.push_back(fmt::format("{}-{}", prefix, j));
            events.push_back({std::nullopt, "t", {}, core::as_bytes(payloads.back())});
        }
        client.publish_async(stream, events, {}, [&](core::Result<net::PublishReceipt> r) {
            if (!r) FAIL("publish to " << stream << ": " << r.error().message());
            receipts.push_back(*r);
        });
        if (client.publishes_in_flight() >= 32) {
            REQUIRE(
                client.run_until([&] { return client.publishes_in_flight() < 8; }, seconds(60)));
        }
        if (sent) sent(std::min<std::uint64_t>(count, i + batch));
    }
    REQUIRE(client.flush(seconds(60)));
    return receipts;
}

proto::StreamDescription info(const test::Daemon& d, const std::string& stream) {
    auto client = d.client();
    auto i = client->stream_info(stream);
    if (!i) FAIL(stream << " on " << d.dir() << ": " << i.error().message());
    return *i;
}

void all_copies_equal(test::Cluster& cluster, const std::string& stream,
                      milliseconds timeout = seconds(60)) {
    const proto::StreamDescription master = info(cluster.node("node-a"), stream);
    for (std::size_t i = 1; i < cluster.size(); ++i) {
        test::wait_for_copy(cluster.node(i), stream, master.last_seq, master.last_hash, timeout);
        auto client = cluster.node(i).client();
        auto v = client->verify(stream);
        REQUIRE(v);
        CHECK_FALSE(v->break_seq);
    }
}

proto::StatusReply status(const test::Daemon& d) {
    auto client = d.client();
    auto s = client->status();
    REQUIRE(s);
    return *s;
}

}  // namespace

TEST_CASE("200,000 events to an eventual and an immediate stream end identical on three nodes",
          "[cluster]") {
    test::Cluster cluster({.extra_toml = stream_defaults});
    cluster.start_all();
    cluster.wait_connected();
    auto client = cluster.node("node-a").client();
    auto eventual = publish(*client, "ev.orders", 100'000, "e");
    auto immediate = publish(*client, "imm.orders", 100'000, "i");
    for (const auto& r : eventual) {
        CHECK(r.kind == proto::AckKind::durable);
        CHECK(r.holders == std::vector<std::string>{"node-a"});
    }
    for (const auto& r : immediate) {
        REQUIRE(r.kind == proto::AckKind::replicated);
        // A majority of 3, the master first, each holder a node of the cluster.
        REQUIRE(r.holders.size() >= 2);
        CHECK(r.holders[0] == "node-a");
        for (std::size_t h = 1; h < r.holders.size(); ++h) {
            CHECK((r.holders[h] == "node-b" || r.holders[h] == "node-c"));
        }
    }
    all_copies_equal(cluster, "ev.orders");
    all_copies_equal(cluster, "imm.orders");
    const auto s = status(cluster.node("node-a"));
    CHECK(s.role == "master");
    CHECK(s.replication_errors.empty());
    CHECK(status(cluster.node("node-b")).role == "slave");
    // Consumers on a slave read what it holds.
    auto reader = cluster.node("node-c").client();
    std::uint64_t got = 0;
    auto sub =
        reader->subscribe({.target = "imm.orders"}, [&](const core::EnvelopeView&) { ++got; });
    REQUIRE(sub);
    REQUIRE(reader->run_until([&] { return got == 100'000; }, seconds(60)));
}

TEST_CASE("a slave killed mid-stream, or wiped, catches up from the master", "[cluster]") {
    test::Cluster cluster;
    cluster.start_all();
    cluster.wait_connected();
    auto client = cluster.node("node-a").client();
    publish(*client, "log", 20'000, "a");
    // Killed while the master streams live events to it.
    publish(*client, "log", 20'000, "b", 100, [&](std::uint64_t sent) {
        if (sent == 10'000) cluster.node("node-b").kill9();
    });
    cluster.node("node-b").start();
    publish(*client, "log", 5'000, "c");
    all_copies_equal(cluster, "log");
    // It caught up from where its copy ended, not from the start.
    const auto b = status(cluster.node("node-b"));
    CHECK(b.events_written > 5'000);
    CHECK(b.events_written < 40'000);

    cluster.node("node-c").stop();
    std::filesystem::remove_all(cluster.node("node-c").data_dir());
    cluster.node("node-c").start();
    all_copies_equal(cluster, "log");
    CHECK(info(cluster.node("node-c"), "log").event_count == 45'000);
}

TEST_CASE("immediate acks wait for their copies: all blocks on a paused slave, majority does not",
          "[cluster]") {
    test::Cluster cluster({.extra_toml = stream_defaults});
    cluster.start_all();
    cluster.wait_connected();
    auto client = cluster.node("node-a").client();
    publish(*client, "all.orders", 10, "warm");
    publish(*client, "imm.orders", 10, "warm");
    const pid_t paused = cluster.node("node-c").pid();
    REQUIRE(::kill(paused, SIGSTOP) == 0);
    const std::string payload = "while paused";
    core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
    auto blocked = client->publish("all.orders", std::span(&e, 1));
    REQUIRE_FALSE(blocked);
    CHECK(blocked.error().is(core::errc::timeout));
    CHECK_THAT(blocked.error().detail, Contains("2 of 3 copies durable"));
    auto majority = client->publish("imm.orders", std::span(&e, 1));
    REQUIRE(majority);
    CHECK(majority->kind == proto::AckKind::replicated);
    CHECK(majority->holders == std::vector<std::string>{"node-a", "node-b"});
    REQUIRE(::kill(paused, SIGCONT) == 0);
    // The paused slave catches up; acks=all publishes succeed again.
    auto resumed = client->publish("all.orders", std::span(&e, 1));
    for (int i = 0; i < 20 && !resumed; ++i) {
        resumed = client->publish("all.orders", std::span(&e, 1));
    }
    REQUIRE(resumed);
    CHECK(resumed->holders == std::vector<std::string>{"node-a", "node-b", "node-c"});
    all_copies_equal(cluster, "all.orders");
}

TEST_CASE("a slave cut off from its master keeps eventual publishes in its outbox", "[cluster]") {
    test::Cluster cluster({.extra_toml = stream_defaults});
    cluster.start_all();
    cluster.wait_connected();
    auto master = cluster.node("node-a").client();
    publish(*master, "ev.log", 100, "before");
    publish(*master, "imm.log", 1, "known");
    all_copies_equal(cluster, "ev.log");
    all_copies_equal(cluster, "imm.log");
    // Cut node-b off from both others (paused): it cannot reach a master,
    // and alone it cannot elect one.
    const pid_t pid = cluster.node("node-a").pid();
    const pid_t other = cluster.node("node-c").pid();
    REQUIRE(::kill(pid, SIGSTOP) == 0);
    REQUIRE(::kill(other, SIGSTOP) == 0);
    // The slave notices the silence (peer_timeout_ms = 1000 here).
    auto slave = cluster.node("node-b").client();
    for (int i = 0; i < 100 && status(cluster.node("node-b")).peers.at(0).connected; ++i) {
        std::this_thread::sleep_for(milliseconds(50));
    }
    auto accepted = publish(*slave, "ev.log", 500, "outbox", 50);
    for (const auto& r : accepted) CHECK(r.kind == proto::AckKind::accepted);
    CHECK(status(cluster.node("node-b")).outbox_events == 500);
    // An immediate stream cannot be accepted that way, nor one whose
    // redundancy this slave does not know (it holds no copy of it).
    const std::string payload = "x";
    core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
    auto refused = slave->publish("imm.log", std::span(&e, 1));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().is(core::errc::not_master));
    auto unknown = slave->publish("ev.new", std::span(&e, 1));
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().is(core::errc::unavailable));
    CHECK(status(cluster.node("node-b")).outbox_events == 500);
    REQUIRE(::kill(pid, SIGCONT) == 0);
    REQUIRE(::kill(other, SIGCONT) == 0);

    // Once the link is back the outbox drains to the master, in order, once each.
    for (int i = 0; i < 200 && status(cluster.node("node-b")).outbox_events > 0; ++i) {
        std::this_thread::sleep_for(milliseconds(50));
    }
    CHECK(status(cluster.node("node-b")).outbox_events == 0);
    std::vector<std::string> seen;
    auto sub = master->subscribe({.target = "ev.log"}, [&](const core::EnvelopeView& ev) {
        seen.emplace_back(core::as_chars(ev.payload));
    });
    REQUIRE(sub);
    REQUIRE(master->run_until([&] { return seen.size() >= 600; }, seconds(30)));
    CHECK(master->run_for(milliseconds(300)));
    REQUIRE(seen.size() == 600);
    for (int i = 0; i < 500; ++i)
        CHECK(seen[static_cast<std::size_t>(100 + i)] == fmt::format("outbox-{}", i));
    CHECK(info(cluster.node("node-a"), "ev.log").last_seq == core::Seq{600});
    all_copies_equal(cluster, "ev.log");
}

TEST_CASE("a peer from another cluster or with an unknown id is refused with the reason logged",
          "[cluster]") {
    test::Cluster cluster({.nodes = 2});
    cluster.start_all();
    cluster.wait_connected();
    // "node-0" sorts before node-a, so it dials node-a.
    test::TempDir keys("spirit-keys");
    const core::Identity key = core::Identity::generate();
    REQUIRE(key.save(keys.path() / "intruder.key"));
    auto intruder = [&](const std::string& cluster_name) {
        const std::uint16_t port = test::free_tcp_port();
        return std::make_unique<test::Daemon>(test::DaemonOptions{
            .node_id = "node-0",
            .extra_toml = fmt::format(
                "[cluster]\nname = \"{}\"\nlisten = \"127.0.0.1:{}\"\nreconnect_ms_min = 20\n"
                "[[cluster.members]]\nid = \"node-0\"\naddress = \"127.0.0.1:{}\"\n"
                "public_key = \"{}\"\n"
                "[[cluster.members]]\nid = \"node-a\"\naddress = \"127.0.0.1:{}\"\n"
                "public_key = \"{}\"\n",
                cluster_name, port, port, core::public_key_text(key.public_key()),
                cluster.peer_port(0), cluster.public_key(0)),
            .node_toml =
                fmt::format("key_file = \"{}\"\n", (keys.path() / "intruder.key").string())});
    };
    auto wait_for_log = [&](const std::string& text) {
        for (int i = 0; i < 200; ++i) {
            if (cluster.node("node-a").log().find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(milliseconds(25));
        }
        return false;
    };
    {
        auto other = intruder("other");
        other->start();
        CHECK(wait_for_log("cluster name \"other\", this node is in \"test\""));
    }
    {
        auto unknown = intruder("test");
        unknown->start();
        CHECK(wait_for_log("unknown node id \"node-0\""));
    }
    // The real peers are still connected and replicating.
    auto client = cluster.node("node-a").client();
    publish(*client, "s", 10, "z");
    all_copies_equal(cluster, "s");
}

TEST_CASE("consumers on the master see an immediate event once its copies are durable, not before",
          "[cluster]") {
    // Both slaves are paused for a while below: not long enough for the
    // master to give up (check-quorum), even on a slow machine.
    test::Cluster cluster(
        {.extra_cluster_toml = "election_timeout_ms = 5000", .extra_toml = stream_defaults});
    cluster.start_all();
    cluster.wait_connected();
    auto producer = cluster.node("node-a").client();
    publish(*producer, "imm.live", 1, "warm", 1);
    auto consumer = cluster.node("node-a").client();
    std::vector<std::string> seen;
    auto sub = consumer->subscribe({.target = "imm.live"}, [&](const core::EnvelopeView& ev) {
        seen.emplace_back(core::as_chars(ev.payload));
    });
    REQUIRE(sub);
    REQUIRE(consumer->run_until([&] { return seen.size() == 1; }, seconds(10)));
    // Each event reaches the live consumer on its own: no later publish or
    // client frame is needed to release the last one.
    for (std::size_t i = 0; i < 50; ++i) {
        const std::string payload = fmt::format("live-{}", i);
        core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
        auto acked = producer->publish("imm.live", std::span(&e, 1));
        REQUIRE(acked);
        REQUIRE(consumer->run_until([&] { return seen.size() == 2u + i; }, seconds(10)));
        CHECK(seen.back() == payload);
    }
    // With both slaves paused the master holds the event alone: consumers
    // must not see it until a majority does.
    const pid_t b = cluster.node("node-b").pid();
    const pid_t c = cluster.node("node-c").pid();
    REQUIRE(::kill(b, SIGSTOP) == 0);
    REQUIRE(::kill(c, SIGSTOP) == 0);
    const std::string payload = "held";
    core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
    std::optional<core::Result<net::PublishReceipt>> held;
    producer->publish_async("imm.live", std::span(&e, 1), {},
                            [&](core::Result<net::PublishReceipt> r) { held = std::move(r); });
    REQUIRE(producer->run_for(milliseconds(400)));
    REQUIRE(consumer->run_for(milliseconds(400)));
    CHECK_FALSE(held.has_value());
    CHECK(seen.size() == 51);
    REQUIRE(::kill(b, SIGCONT) == 0);
    REQUIRE(::kill(c, SIGCONT) == 0);
    REQUIRE(producer->run_until([&] { return held.has_value(); }, seconds(10)));
    REQUIRE(*held);
    CHECK((*held)->kind == proto::AckKind::replicated);
    REQUIRE(consumer->run_until([&] { return seen.size() == 52; }, seconds(10)));
    CHECK(seen.back() == "held");
}
