// `spirit topology` through real daemons and the real CLI binary. On three
// data nodes every node's --json names the same master and epoch and lists
// the three members linked; its fields are those docs/topology.md lists
// (tests/ops/json_fields.py); the master lists every copy of a stream with
// its lag. After the master is killed (SIGKILL, by PID) and another is
// elected, the survivors name the new master and epoch and the old master
// unlinked; --follow prints the new epoch's master_elected; errors that
// refuse a write (not_master, unavailable) name the new master, through the
// C++ client and the CLI; `$topology` is read-only. --follow --from-now
// prints what arrives live (the old master's restart). Two data nodes and a
// witness: the witness answers, with no positions. A node alone answers as
// its own master, and refuses --follow: it keeps no `$topology`.
//
// The JSON is read with /usr/bin/python3 (a few fields printed as words), so
// the assertions are about what a script sees.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "tests/cluster/cluster_harness.h"

using namespace spirit;
using Catch::Matchers::Contains;
using std::chrono::seconds;

namespace {

test::CommandResult spirit_cli(const test::Daemon& d, std::vector<std::string> args) {
    std::vector<std::string> argv{SPIRIT_CLI, "--socket", (d.dir() / "spirit.sock").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run_command(argv, "", seconds(20));
}

// What a script reads of `spirit topology --json`, as one line of words:
// "role=slave master=node-a epoch=3 group=node-a@3 node-a=up node-b=up ...
//  positions=master/6 events=12".
std::string summary(const std::string& json) {
    static const char* script = R"(
import json, sys
t = json.load(sys.stdin)
g = t["groups"][0]
words = ["role=%s" % t["role"], "master=%s" % t["master"], "epoch=%d" % t["epoch"],
         "group=%s@%d" % (g["master"], g["epoch"])]
words += ["%s=%s" % (m["node"], "up" if m["linked"] else "down") for m in t["members"]]
words += ["positions=%s/%d" % (t["positions_source"], t["positions_total"]),
          "events=%d" % t["topology_events"]]
print(" ".join(words))
)";
    auto r = test::run_command({"/usr/bin/python3", "-c", script}, json);
    INFO(json << "\n" << r.err);
    REQUIRE(r.exit_code == 0);
    return r.out.substr(0, r.out.find('\n'));
}

// The --json of `d`'s `spirit topology` (REQUIREs an answer).
std::string topology_json(const test::Daemon& d) {
    auto r = spirit_cli(d, {"topology", "--json"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return r.out;
}

// The JSON's fields are the ones the docs list under `heading`.
void check_documented(const std::string& json) {
    auto fields =
        test::run_command({SPIRIT_SOURCE_DIR "/tests/ops/json_fields.py",
                           SPIRIT_SOURCE_DIR "/docs/topology.md", "### `spirit topology --json`"},
                          json);
    INFO(json << "\n" << fields.out << fields.err);
    CHECK(fields.exit_code == 0);
}

// Waits until every running node's summary is `want` apart from its role;
// returns the last summaries seen.
std::string wait_same_view(test::Cluster& cluster, const std::string& want) {
    std::string seen;
    test::wait_until(
        [&] {
            seen.clear();
            bool all = true;
            for (std::size_t i = 0; i < cluster.size(); ++i) {
                if (!cluster.node(i).running()) continue;
                std::string s = summary(topology_json(cluster.node(i)));
                s = s.substr(s.find(' ') + 1);  // without the role
                s = s.substr(0, s.find(" positions="));
                all = all && s == want;
                seen += cluster.ids()[i] + ": " + s + "\n";
            }
            return all;
        },
        seconds(15));
    return seen;
}

}  // namespace

TEST_CASE("spirit topology names one master and epoch on every node and the next after a kill",
          "[cluster][topology]") {
    test::Cluster cluster;
    cluster.start_all();
    cluster.wait_connected();
    test::Daemon& a = cluster.node("node-a");
    for (int i = 0; i < 5; ++i) {
        const std::string payload = fmt::format("e{}", i);
        core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
        REQUIRE(a.client()->publish("orders", std::span(&e, 1)));
    }
    const std::uint64_t epoch = test::status_of(a).epoch;
    const std::string group = fmt::format("master=node-a epoch={} group=node-a@{}", epoch, epoch);
    const std::string all_up = group + " node-a=up node-b=up node-c=up";
    std::string seen = wait_same_view(cluster, all_up);
    INFO(seen);
    REQUIRE(seen == "node-a: " + all_up + "\nnode-b: " + all_up + "\nnode-c: " + all_up + "\n");

    // The master lists every copy; its JSON has exactly the documented fields.
    const std::string master_json = topology_json(a);
    CHECK_THAT(summary(master_json), Contains("role=master") && Contains("positions=master/3"));
    check_documented(master_json);
    CHECK_THAT(summary(topology_json(cluster.node("node-b"))),
               Contains("role=slave") && Contains("positions=self/1"));
    auto text = spirit_cli(cluster.node("node-b"), {"topology"});
    INFO(text.out);
    CHECK_THAT(text.out, Contains("group           default: master node-a, elected in epoch " +
                                  std::to_string(epoch) + "\n"));
    CHECK_THAT(text.out, Contains("connected; the master\n"));

    // $topology is the daemon's: read-only for clients.
    {
        const std::string payload = "x";
        core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
        auto refused = cluster.node("node-b").client()->publish("$topology", std::span(&e, 1));
        REQUIRE_FALSE(refused);
        CHECK(refused.error().is(core::errc::invalid_stream_name));
        CHECK_THAT(refused.error().detail, Contains("\"$topology\""));
    }

    a.kill9();
    std::optional<std::string> next;
    REQUIRE(test::wait_until(
        [&] {
            next = cluster.serving_master();
            return next && *next != "node-a";
        },
        seconds(15)));
    const std::uint64_t new_epoch = test::status_of(cluster.node(*next)).epoch;
    CHECK(new_epoch > epoch);
    const std::string other = *next == "node-b" ? "node-c" : "node-b";
    const std::string after =
        fmt::format("master={} epoch={} group={}@{} node-a=down node-b=up node-c=up", *next,
                    new_epoch, *next, new_epoch);
    seen = wait_same_view(cluster, after);
    INFO(seen);
    CHECK(seen == "node-b: " + after + "\nnode-c: " + after + "\n");

    // --follow from the first event prints the new epoch's election.
    auto follow = spirit_cli(cluster.node(other),
                             {"topology", "--follow", "--json", "--idle-exit-ms", "1000"});
    INFO(follow.out << follow.err);
    REQUIRE(follow.exit_code == 0);
    const std::string elected =
        fmt::format("\"kind\":\"master_elected\",\"group\":\"default\",\"epoch\":{},", new_epoch);
    bool found = false;
    for (std::size_t at = 0, end; at < follow.out.size(); at = end + 1) {
        end = follow.out.find('\n', at);
        const std::string line = follow.out.substr(at, end - at);
        found = found || (line.find(elected) != std::string::npos &&
                          line.find("\"author\":\"" + *next + "\"") != std::string::npos);
    }
    CHECK(found);
    auto plain = spirit_cli(cluster.node(other), {"topology", "--follow", "--idle-exit-ms", "500"});
    CHECK_THAT(plain.out, Contains(fmt::format("  master_elected  group=default epoch={} voters=",
                                               new_epoch)));

    // Refused writes name the new master: a stream change on a slave
    // (not_master), a transfer to a node that cannot be reached (unavailable).
    auto create = spirit_cli(cluster.node(other), {"stream", "create", "fresh"});
    INFO(create.err);
    CHECK(create.exit_code == 1);
    CHECK_THAT(create.err, Contains("not_master") && Contains(*next));
    auto refused = cluster.node(other).client()->create_stream("fresh", core::StreamPolicy{});
    REQUIRE_FALSE(refused);
    CHECK(refused.error().is(core::errc::not_master));
    CHECK_THAT(refused.error().detail,
               Contains("the master of epoch " + std::to_string(new_epoch) + " is " + *next));
    auto transfer = spirit_cli(cluster.node(other), {"cluster", "set-master", "node-a"});
    INFO(transfer.err);
    CHECK(transfer.exit_code == 1);
    CHECK_THAT(transfer.err, Contains("cannot reach node-a") &&
                                 Contains("; the master is " + *next + " (unavailable)"));

    // Live: the old master's restart arrives while --follow --from-now waits.
    test::CommandResult live;
    std::thread follower([&] {
        live = spirit_cli(cluster.node(other),
                          {"topology", "--follow", "--from-now", "--json", "--count", "1"});
    });
    const bool subscribed = test::wait_until(
        [&] { return test::status_of(cluster.node(other)).subscriptions == 1; }, seconds(10));
    if (subscribed) a.start();
    follower.join();
    REQUIRE(subscribed);
    INFO(live.out << live.err);
    CHECK(live.exit_code == 0);
    CHECK_THAT(live.out, Contains("\"author\":\"node-a\""));
    CHECK(std::count(live.out.begin(), live.out.end(), '\n') == 1);
    // It rejoins as a slave and names the new master too.
    REQUIRE(test::wait_until([&] { return test::status_of(a).role == "slave"; }, seconds(15)));
    const std::string back = fmt::format(
        "master={} epoch={} group={}@{} node-a=up node-b=up "
        "node-c=up",
        *next, new_epoch, *next, new_epoch);
    seen = wait_same_view(cluster, back);
    INFO(seen);
    CHECK(seen == "node-a: " + back + "\nnode-b: " + back + "\nnode-c: " + back + "\n");
}

TEST_CASE("spirit topology on a witness names the master and lists no positions",
          "[cluster][topology]") {
    test::Cluster cluster({.nodes = 2, .witnesses = 1});
    cluster.start_all();
    cluster.wait_connected();
    const std::string json = topology_json(cluster.node("witness-1"));
    const std::string s = summary(json);
    INFO(s);
    CHECK_THAT(s, Contains("role=witness master=node-a"));
    CHECK_THAT(s, Contains("node-a=up node-b=up witness-1=up positions=None/0"));
    check_documented(json);
    auto text = spirit_cli(cluster.node("witness-1"), {"topology"});
    CHECK_THAT(text.out, Contains("witness-1       witness  "));
    CHECK(text.out.find("POSITIONS") == std::string::npos);
}

TEST_CASE("a node alone answers spirit topology as its own master", "[cluster][topology]") {
    test::Daemon d;
    d.start();
    const std::string payload = "x";
    core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
    REQUIRE(d.client()->publish("orders", std::span(&e, 1)));
    const std::string json = topology_json(d);
    CHECK(summary(json) ==
          "role=single master=node-1 epoch=1 group=node-1@1 node-1=up positions=master/1 events=0");
    check_documented(json);
    auto text = spirit_cli(d, {"topology"});
    CHECK(text.exit_code == 0);
    CHECK_THAT(text.out, Contains("node            node-1 (single, epoch 1)\n"));
    CHECK_THAT(text.out, Contains("orders          node-1          1            "));
    auto follow = spirit_cli(d, {"topology", "--follow"});
    CHECK(follow.exit_code == 1);
    CHECK_THAT(follow.err, Contains("node node-1 runs alone") && Contains("no $topology"));
    auto usage = spirit_cli(d, {"topology", "--count", "1"});
    CHECK(usage.exit_code == 2);
}
