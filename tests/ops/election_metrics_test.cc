// The election and failover metrics of real daemons: a three-node cluster
// (tests/cluster/cluster_harness.h, each node with its own metrics
// listener) loses its master to SIGKILL, sent by PID. On both survivors the
// scrape passes `promtool check metrics` line by line, and the counters
// moved as the election went: the new master started an election (after
// pre-votes) and won it, both count one change of master and one failover
// whose length is about an election timeout or two, and role, epoch,
// master and last-contact gauges name the new master. The killed node,
// started again, counts the step-down its restart made (reason
// "restarted") and no change of master (the first one it knows after
// start is none); moved back by a leadership transfer, it counts an
// election won without pre-votes and its predecessor one step-down (for
// the transfer, or for the higher epoch if it heard of that first).
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>

#include "tests/cluster/cluster_harness.h"
#include "tests/ops/ops_harness.h"

using namespace spirit;
using std::chrono::seconds;

namespace {

constexpr double election_timeout_seconds = 1.0;  // the default cluster.election_timeout_ms

std::string scrape(test::Cluster& cluster, std::size_t index) {
    const test::HttpReply r = test::http_request(cluster.metrics_port(index), "/metrics");
    REQUIRE(r.status == 200);
    return r.body;
}

std::string in_group(const std::string& name) {
    return name + "{group=\"default\"}";
}

std::string step_downs(const std::string& reason) {
    return fmt::format("spirit_step_downs_total{{group=\"default\",reason=\"{}\"}}", reason);
}

std::string master_info(const std::string& master) {
    return fmt::format("spirit_master_info{{group=\"default\",master=\"{}\"}}", master);
}

std::string role(const std::string& name) {
    return fmt::format("spirit_role{{group=\"default\",role=\"{}\"}}", name);
}

// Waits until node `index`'s scrape (its gauges are sampled every 500 ms)
// names `master` as the master; returns that scrape.
std::string wait_names_master(test::Cluster& cluster, std::size_t index,
                              const std::string& master) {
    std::string text;
    const bool named = test::wait_until(
        [&] {
            text = scrape(cluster, index);
            return test::sample_value(text, master_info(master)) == 1.0;
        },
        seconds(30));
    INFO(cluster.ids()[index] << " does not name " << master << ":\n" << text);
    REQUIRE(named);
    return text;
}

std::size_t index_of(test::Cluster& cluster, const std::string& id) {
    for (std::size_t i = 0; i < cluster.size(); ++i) {
        if (cluster.ids()[i] == id) return i;
    }
    FAIL("no node " << id);
    return 0;
}

}  // namespace

TEST_CASE("the master killed: the survivors count the election and the failover",
          "[ops][metrics][cluster]") {
    test::Cluster cluster({.nodes = 3, .master = "node-a", .metrics = true});
    cluster.start_all();
    cluster.wait_connected();
    std::map<std::size_t, std::string> before;
    for (std::size_t i : {1u, 2u}) before[i] = wait_names_master(cluster, i, "node-a");
    const double old_epoch = test::metric_value(before[1], in_group("spirit_epoch"));
    auto moved = [&](std::size_t i, const std::string& after, const std::string& series) {
        return test::metric_value(after, series) - test::metric_value(before[i], series);
    };

    cluster.node(0).kill9();
    std::string next;
    REQUIRE(test::wait_until(
        [&] {
            auto m = cluster.serving_master();
            if (m && *m != "node-a") next = *m;
            return !next.empty();
        },
        seconds(30)));
    const std::size_t n = index_of(cluster, next);
    const std::size_t other = n == 1 ? 2 : 1;
    std::map<std::size_t, std::string> after;
    for (std::size_t i : {n, other}) after[i] = wait_names_master(cluster, i, next);

    for (std::size_t i : {n, other}) {
        INFO("node " << cluster.ids()[i]);
        const std::string& s = after[i];
        test::check_promtool_accepts(s);
        CHECK(moved(i, s, in_group("spirit_master_changes_total")) >= 1);
        const double failovers = moved(i, s, in_group("spirit_failover_seconds_count"));
        CHECK(failovers >= 1);
        const double took = moved(i, s, in_group("spirit_failover_seconds_sum")) / failovers;
        WARN(cluster.ids()[i] << ": failover " << took << " s");
        CHECK(took > 0);
#ifndef SPIRIT_SANITIZED  // instrumentation slows every step
        // Heard nothing for an election timeout (or up to two), then one
        // round of pre-votes and votes on loopback.
        CHECK(took < 2 * election_timeout_seconds + 1.5);
#endif
        CHECK(test::metric_value(s, in_group("spirit_epoch")) > old_epoch);
        CHECK(test::metric_value(s, master_info(next)) == 1);
        CHECK_FALSE(test::sample_value(s, master_info("node-a")));
        for (const char* reason :
             {"restarted", "check_quorum", "higher_epoch", "transfer", "commit_failed"}) {
            CHECK(test::sample_value(s, step_downs(reason)));  // every reason, 0 or more
        }
    }
    const std::string& won = after[n];
    CHECK(moved(n, won, in_group("spirit_pre_votes_started_total")) >= 1);
    CHECK(moved(n, won, in_group("spirit_elections_started_total")) >= 1);
    CHECK(moved(n, won, in_group("spirit_elections_won_total")) == 1);
    CHECK(test::metric_value(won, role("master")) == 1);
    CHECK(test::metric_value(won, role("slave")) == 0);
    CHECK(test::metric_value(won, in_group("spirit_master_last_contact_seconds")) == 0);
    const std::string& follows = after[other];
    CHECK(moved(other, follows, in_group("spirit_elections_won_total")) == 0);
    CHECK(test::metric_value(follows, role("slave")) == 1);
    CHECK(test::metric_value(follows, in_group("spirit_master_last_contact_seconds")) < 5);

    // The killed master, started again: its restart stepped down from the
    // epoch it had; the master it then learns of is no change.
    cluster.node(0).start();
    const std::string restarted = wait_names_master(cluster, 0, next);
    test::check_promtool_accepts(restarted);
    CHECK(test::metric_value(restarted, step_downs("restarted")) == 1);
    CHECK(test::metric_value(restarted, in_group("spirit_master_changes_total")) == 0);
    CHECK(test::metric_value(restarted, in_group("spirit_failover_seconds_count")) == 0);
    CHECK(test::metric_value(restarted, role("slave")) == 1);

    // A leadership transfer back to node-a: it stands at once (no
    // pre-votes) and wins; its predecessor steps down.
    const std::string before_transfer = scrape(cluster, n);
    const std::string a_before = scrape(cluster, 0);
    cluster.make_master("node-a");
    const std::string a = wait_names_master(cluster, 0, "node-a");
    test::check_promtool_accepts(a);
    auto a_moved = [&](const std::string& series) {
        return test::metric_value(a, series) - test::metric_value(a_before, series);
    };
    CHECK(a_moved(in_group("spirit_elections_won_total")) == 1);
    CHECK(a_moved(in_group("spirit_elections_started_total")) == 1);
    CHECK(a_moved(in_group("spirit_pre_votes_started_total")) == 0);
    CHECK(a_moved(in_group("spirit_master_changes_total")) == 1);
    CHECK(test::metric_value(a, role("master")) == 1);
    const std::string gave_up = wait_names_master(cluster, n, "node-a");
    test::check_promtool_accepts(gave_up);
    // It steps down for the transfer when it grants node-a's forced vote,
    // or for the higher epoch when node-a's word of it came first (node-a
    // wins with the other node's vote alone).
    auto gave_up_for = [&](const char* reason) {
        return test::metric_value(gave_up, step_downs(reason)) -
               test::metric_value(before_transfer, step_downs(reason));
    };
    CHECK(gave_up_for("transfer") + gave_up_for("higher_epoch") == 1);
    CHECK(gave_up_for("check_quorum") == 0);
    CHECK(test::metric_value(gave_up, role("slave")) == 1);
}
