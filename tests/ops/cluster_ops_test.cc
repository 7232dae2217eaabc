// Operations in a three-node cluster with a fixed master (node-a), real
// spiritd processes through tests/cluster/cluster_harness.h.
//
// A slave (node-c) is backed up, falls behind, is stopped, its data dir is
// replaced by the backup (`spiritd --restore`), and it starts while both
// of its peers are down: /ready says 503 naming the missing majority (not
// a race with an election that the two others could win meanwhile). Once
// they are back, the restored node catches up from whichever is elected:
// its copy ends where the old master's does and verifies, and whenever
// /ready answered 200 the copy had caught up. Along the way: the master's /metrics passes
// promtool with per-peer replication lag, and `spirit status --json` of the
// master (peers, a durable consumer) names exactly the fields
// docs/operations.md lists.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <filesystem>

#include "tests/cluster/cluster_harness.h"
#include "tests/ops/ops_harness.h"
#include "tests/support/bytes.h"

using namespace spirit;
using Catch::Matchers::Contains;

namespace {

test::CommandResult spirit_cli(const test::Daemon& d, std::vector<std::string> args) {
    std::vector<std::string> argv{SPIRIT_CLI, "--socket", (d.dir() / "spirit.sock").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run_command(argv, "", std::chrono::seconds(120));
}

void publish(const test::Daemon& d, const std::string& stream, std::uint64_t first_id,
             std::uint64_t count) {
    auto c = d.client();
    for (const test::Outcome& o : test::publish_with_ids(*c, stream, first_id, count, 50, 8)) {
        REQUIRE(o.result);
        REQUIRE(*o.result);
    }
}

std::string ready_of(std::uint16_t port) {
    const test::HttpReply r = test::http_request(port, "/ready");
    return fmt::format("{} {}", r.status, r.body);
}

}  // namespace

TEST_CASE("a node restored from a backup catches up from its peers and is ready only then",
          "[ops][cluster]") {
    test::Cluster cluster({.nodes = 3, .master = "node-a", .metrics = true});
    cluster.start_all();
    cluster.wait_connected();
    test::Daemon& a = cluster.node(0);
    test::Daemon& c = cluster.node(2);
    test::wait_serving(a);
    publish(a, "orders", 1, 2000);
    auto head = a.client()->stream_info("orders");
    REQUIRE(head);
    test::wait_for_copy(c, "orders", head->last_seq, head->last_hash, std::chrono::seconds(30));
    for (std::size_t i = 0; i < 3; ++i) {
        REQUIRE(test::wait_until([&] { return ready_of(cluster.metrics_port(i)) == "200 ready\n"; },
                                 std::chrono::seconds(10)));
    }

    const std::filesystem::path file = c.dir() / "node-c.backup";
    auto backup = spirit_cli(c, {"backup", "--out", file.string()});
    INFO(backup.out << backup.err);
    REQUIRE(backup.exit_code == 0);
    publish(a, "orders", 100'000, 3000);  // the backup falls behind
    head = a.client()->stream_info("orders");
    REQUIRE(head);

    SECTION("the master's metrics and status") {
        test::HttpReply m = test::http_request(cluster.metrics_port(0), "/metrics");
        REQUIRE(m.status == 200);
        auto check = test::run_command({"/usr/bin/promtool", "check", "metrics"}, m.body);
        INFO(check.out << check.err);
        CHECK(check.exit_code == 0);
        INFO("node-a's log:\n" << a.log());
        CHECK(test::sample_value(m.body, "spirit_role{group=\"default\",role=\"master\"}") == 1);
        CHECK(test::sample_value(m.body,
                                 "spirit_master_info{group=\"default\",master=\"node-a\"}") == 1);
        CHECK(test::sample_value(m.body, "spirit_peer_connected{peer=\"node-c\"}") == 1);
        CHECK(test::sample_value(m.body, "spirit_replication_lag_events{peer=\"node-b\"}"));
        CHECK(test::sample_value(m.body, "spirit_replication_lag_seconds{peer=\"node-c\"}"));

        auto consumer = a.client();
        REQUIRE(consumer->subscribe({.target = "orders", .durable = "billing", .credit_events = 0},
                                    [](const core::EnvelopeView&) {}));
        REQUIRE(test::wait_until([&] {
            return spirit_cli(a, {"status", "--json"}).out.find("\"billing\"") != std::string::npos;
        }));
        auto json = spirit_cli(a, {"status", "--json"});
        REQUIRE(json.exit_code == 0);
        auto fields = test::run_command({SPIRIT_SOURCE_DIR "/tests/ops/json_fields.py",
                                         SPIRIT_SOURCE_DIR "/docs/operations.md"},
                                        json.out);
        INFO(json.out << "\n" << fields.out << fields.err);
        CHECK(fields.exit_code == 0);
        auto text = spirit_cli(a, {"status"});
        CHECK_THAT(text.out, Contains("ready           yes\n"));
        CHECK_THAT(text.out, Contains("consumer        billing on orders: 5000 events behind "
                                      "(acked 0 of 5000)\n"));
    }

    SECTION("restored while its peers are down, then caught up") {
        // Whichever of node-a and node-b is elected later holds every event.
        test::wait_for_copy(cluster.node(1), "orders", head->last_seq, head->last_hash,
                            std::chrono::seconds(30));
        c.stop();
        std::filesystem::remove_all(c.data_dir());
        auto restored = test::run_command(
            {SPIRIT_SPIRITD, "--config", c.config_path().string(), "--restore", file.string()});
        INFO(restored.out << restored.err);
        REQUIRE(restored.exit_code == 0);
        a.stop();
        cluster.node(1).stop();
        const std::size_t log_before = c.log().size();
        c.start();
        const std::uint16_t port = cluster.metrics_port(2);
        REQUIRE(test::wait_until(
            [&] {
                return ready_of(port) ==
                       "503 not ready: 1 of 3 nodes reachable (a majority is 2)\n";
            },
            std::chrono::seconds(10)));
        CHECK(test::http_request(port, "/health").status == 200);
        a.start();
        cluster.node(1).start();
        // Ready only once caught up: every 200 seen comes with the whole copy.
        bool ready = false;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!ready && std::chrono::steady_clock::now() < deadline) {
            ready = test::http_request(port, "/ready").status == 200;
            auto info = c.client()->stream_info("orders");
            REQUIRE(info);
            if (ready) {
                CHECK(info->last_seq == head->last_seq);
                CHECK(info->last_hash == head->last_hash);
            }
        }
        REQUIRE(ready);
        test::wait_for_copy(c, "orders", head->last_seq, head->last_hash, std::chrono::seconds(30));
        auto verify = spirit_cli(c, {"verify"});
        INFO(verify.out << verify.err);
        CHECK(verify.exit_code == 0);
        CHECK_THAT(verify.out, Contains("orders: ok, 5000 events (seq 1..5000)"));
        // It started as a fresh copy (not counted in completions) until caught up.
        const std::string log = c.log().substr(log_before);
        INFO(log);
        const std::size_t fresh = log.find("a fresh data dir");
        REQUIRE(fresh != std::string::npos);
        CHECK(log.find("this node's copies have caught up", fresh) != std::string::npos);
    }
}
