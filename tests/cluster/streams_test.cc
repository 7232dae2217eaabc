// A stream's lifecycle in a cluster, through real daemons: created on the
// master, its StreamCreated (with the policy) reaches every node's
// `$topology`; its retention changed on the master reaches every copy (and
// is refused on a slave, and for redundancy); a delete is refused on a slave (not_master naming the
// master), acknowledged by the master once a majority holds its
// StreamDeleted, and every copy goes, subscribers told; a stream of that
// name made again starts at seq 1 on every copy with nothing quarantined.
// An acknowledged delete survives the master's kill -9 while a third node
// was down: that node, back, drops its copy, the new master does not
// complete the stream, and the old master drops its copy when it rejoins.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "core/topology_codec.h"
#include "tests/cluster/cluster_harness.h"
#include "tests/support/bytes.h"

using namespace spirit;
using Catch::Matchers::Contains;
using std::chrono::seconds;

namespace {

// The lifecycle events of `stream` in `node`'s `$topology`, as words in the
// order stored: "created:immediate/1000", "deleted".
std::vector<std::string> lifecycle(test::Daemon& node, const std::string& stream) {
    std::vector<std::string> out;
    for (const core::Envelope& e : test::read_all(node, "$topology")) {
        auto sealed = core::decode_topology_event(e.payload);
        REQUIRE(sealed);
        const core::TopologyBody& body = sealed->event.body;
        if (const auto* c = std::get_if<core::topo::StreamCreated>(&body);
            c && c->stream == stream) {
            out.push_back(fmt::format(
                "created:{}/{}",
                c->policy.redundancy == core::Redundancy::immediate ? "immediate" : "eventual",
                c->policy.retention.events_max));
        }
        if (const auto* d = std::get_if<core::topo::StreamDeleted>(&body);
            d && d->stream == stream) {
            out.push_back("deleted");
        }
        if (const auto* p = std::get_if<core::topo::StreamPolicyChanged>(&body);
            p && p->stream == stream) {
            out.push_back(fmt::format("retention:{}", p->policy.retention.events_max));
        }
    }
    return out;
}

bool absent(test::Daemon& node, const std::string& stream) {
    auto info = node.client()->stream_info(stream);
    return !info && info.error().is(core::errc::not_found);
}

void publish_n(test::Daemon& via, const std::string& stream, std::uint64_t first_id, int count) {
    auto outcomes = test::publish_with_ids(*via.client(), stream, first_id,
                                           static_cast<std::uint64_t>(count), 5, 4);
    for (const test::Outcome& o : outcomes) {
        REQUIRE(o.result);
        INFO((o.result->has_value() ? "" : o.result->error().message()));
        REQUIRE(o.result->has_value());
    }
}

}  // namespace

TEST_CASE("streams are created and deleted through $topology on every node", "[cluster]") {
    test::Cluster cluster;
    cluster.start_all();
    cluster.wait_connected();
    test::Daemon& a = cluster.node("node-a");
    test::Daemon& b = cluster.node("node-b");
    test::Daemon& c = cluster.node("node-c");

    core::StreamPolicy policy{core::Redundancy::immediate, {}, {1000, 0, 0}};
    REQUIRE(a.client()->create_stream("audit", policy));
    for (test::Daemon* node : {&a, &b, &c}) {
        INFO(node->node_id());
        CHECK(test::wait_until([&] { return !lifecycle(*node, "audit").empty(); }, seconds(10)));
        CHECK(lifecycle(*node, "audit") == std::vector<std::string>{"created:immediate/1000"});
    }
    publish_n(b, "audit", 1, 40);  // forwarded by a slave
    auto master_copy = a.client()->stream_info("audit");
    REQUIRE(master_copy);
    CHECK(master_copy->last_seq == core::Seq{40});
    for (test::Daemon* node : {&b, &c}) {
        auto copy =
            test::wait_for_copy(*node, "audit", core::Seq{40}, master_copy->last_hash, seconds(10));
        CHECK(copy.policy == policy);
    }

    // Its retention changes on the master, and so on every copy; nothing
    // else of its policy may change.
    core::StreamPolicy kept = policy;
    kept.retention.events_max = 25;
    auto not_here = c.client()->alter_stream("audit", kept);
    REQUIRE_FALSE(not_here);
    CHECK(not_here.error().is(core::errc::not_master));
    core::StreamPolicy weaker = kept;
    weaker.redundancy = core::Redundancy::eventual;
    auto refused_policy = a.client()->alter_stream("audit", weaker);
    REQUIRE_FALSE(refused_policy);
    CHECK(refused_policy.error().is(core::errc::invalid_argument));
    REQUIRE(a.client()->alter_stream("audit", kept));
    for (test::Daemon* node : {&a, &b, &c}) {
        INFO(node->node_id());
        CHECK(test::wait_until(
            [&] {
                auto info = node->client()->stream_info("audit");
                return info && info->policy == kept && info->first_seq == core::Seq{16};
            },
            seconds(20)));
        CHECK(lifecycle(*node, "audit") ==
              std::vector<std::string>{"created:immediate/1000", "retention:25"});
    }

    // A consumer on a slave follows the stream until it goes.
    auto consumer = c.client();
    std::uint64_t delivered = 0;
    net::SubscribeOptions options;
    options.target = "audit";
    auto sub = consumer->subscribe(options, [&](const core::EnvelopeView&) { ++delivered; });
    REQUIRE(sub);

    auto refused = b.client()->delete_stream("audit");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().is(core::errc::not_master));
    CHECK_THAT(refused.error().detail, Contains("node-a"));
    REQUIRE(a.client()->delete_stream("audit"));
    CHECK(absent(a, "audit"));
    for (test::Daemon* node : {&b, &c}) {
        INFO(node->node_id());
        CHECK(test::wait_until([&] { return absent(*node, "audit"); }, seconds(10)));
        CHECK(lifecycle(*node, "audit") ==
              std::vector<std::string>{"created:immediate/1000", "retention:25", "deleted"});
    }
    REQUIRE(consumer->run_until([&] { return (*sub)->ended().has_value(); }, seconds(10)));
    CHECK(delivered == 25);
    CHECK((*sub)->ended()->is(core::errc::not_found));
    CHECK_THAT((*sub)->ended()->detail, Contains("audit was deleted"));
    auto again = a.client()->delete_stream("audit");
    REQUIRE_FALSE(again);
    CHECK(again.error().is(core::errc::not_found));

    // Made again (by a first publish, with the config's policy): a new life
    // from seq 1 on every copy; nothing of the old one is quarantined.
    publish_n(a, "audit", 1000, 3);
    auto fresh = a.client()->stream_info("audit");
    REQUIRE(fresh);
    CHECK(fresh->first_seq == core::Seq{1});
    CHECK(fresh->last_seq == core::Seq{3});
    CHECK(fresh->policy.redundancy == core::Redundancy::eventual);
    for (test::Daemon* node : {&b, &c}) {
        INFO(node->node_id());
        test::wait_for_copy(*node, "audit", core::Seq{3}, fresh->last_hash, seconds(10));
        CHECK(test::quarantined(*node).empty());
        CHECK(test::wait_until(
            [&] {
                return lifecycle(*node, "audit") ==
                       std::vector<std::string>{"created:immediate/1000", "retention:25", "deleted",
                                                "created:eventual/0"};
            },
            seconds(10)));
    }
}

TEST_CASE("an acknowledged delete survives the master's kill, with a node down during it",
          "[cluster]") {
    test::Cluster cluster;
    cluster.start_all();
    cluster.wait_connected();
    test::Daemon& a = cluster.node("node-a");
    test::Daemon& b = cluster.node("node-b");
    test::Daemon& c = cluster.node("node-c");
    publish_n(a, "imm.orders", 1, 30);
    auto before = a.client()->stream_info("imm.orders");
    REQUIRE(before);
    for (test::Daemon* node : {&b, &c}) {
        test::wait_for_copy(*node, "imm.orders", core::Seq{30}, before->last_hash, seconds(10));
    }

    c.stop();
    REQUIRE(a.client()->delete_stream("imm.orders"));  // a and b: a majority
    a.kill9();
    c.start();  // it holds the stream; b holds the delete
    std::optional<std::string> next;
    REQUIRE(test::wait_until([&] { return (next = cluster.serving_master()).has_value(); },
                             seconds(30)));
    UNSCOPED_INFO("the new master is " << *next);
    test::Daemon& master = cluster.node(*next);
    CHECK(absent(master, "imm.orders"));
    CHECK(test::wait_until([&] { return absent(c, "imm.orders"); }, seconds(10)));
    CHECK(test::wait_until([&] { return absent(b, "imm.orders"); }, seconds(10)));

    // The name starts a new life; the old master drops its copy on rejoin.
    publish_n(master, "imm.orders", 500, 2);
    auto fresh = master.client()->stream_info("imm.orders");
    REQUIRE(fresh);
    CHECK(fresh->last_seq == core::Seq{2});
    a.start();
    for (test::Daemon* node : {&a, &b, &c}) {
        INFO(node->node_id());
        test::wait_for_copy(*node, "imm.orders", core::Seq{2}, fresh->last_hash, seconds(20));
        auto events = test::read_all(*node, "imm.orders");
        REQUIRE(events.size() == 2);
        CHECK(events[0].id == test::event_id(500));
    }
}
