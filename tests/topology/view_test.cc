// The streams `$topology` describes (topology/view.h) and how far it has
// spread (topology/spread.h).
#include <catch2/catch.hpp>

#include "tests/topology/any_order.h"
#include "topology/spread.h"
#include "topology/view.h"

using namespace spirit;
using core::Epoch;
using core::NodeId;
namespace topo = core::topo;

namespace {

const NodeId a{"a"}, b{"b"}, c{"c"};

// Events by one author (instance 1), numbered in order.
struct Author {
    NodeId node;
    std::uint64_t seq = 0;
    core::TopologyEvent operator()(core::TopologyBody body) {
        return core::TopologyEvent{{{node, 1}, ++seq}, core::TimestampNs{seq}, std::move(body)};
    }
};

core::TopologyEvent elected(Author& who, std::uint64_t epoch) {
    return who(topo::MasterElected{"default", Epoch{epoch}, {a, b, c}});
}

core::StreamPolicy immediate_kept(std::uint64_t events_max) {
    return core::StreamPolicy{core::Redundancy::immediate, {}, {events_max, 0, 0}};
}

}  // namespace

TEST_CASE("a stream's lifecycle in $topology: created, policy changed, deleted, created again",
          "[topology][unit]") {
    topology::View v;
    Author ma{a};
    v.add(elected(ma, 2));
    CHECK_FALSE(v.stream("orders"));

    v.add(ma(topo::StreamCreated{"orders", Epoch{2}, immediate_kept(10)}));
    auto s = v.stream("orders");
    REQUIRE(s);
    CHECK(s->exists);
    CHECK(s->policy == immediate_kept(10));

    v.add(ma(topo::StreamPolicyChanged{"orders", Epoch{2}, immediate_kept(99)}));
    CHECK(v.stream("orders")->policy == immediate_kept(99));

    Author mb{b};
    v.add(elected(mb, 3));
    v.add(mb(topo::StreamCompleted{"orders", Epoch{3}, core::Seq{5}}));
    s = v.stream("orders");
    CHECK(s->exists);
    CHECK(s->epoch == Epoch{3});
    CHECK(s->policy == immediate_kept(99));  // a completion keeps the policy

    v.add(mb(topo::StreamDeleted{"orders", Epoch{3}}));
    s = v.stream("orders");
    CHECK_FALSE(s->exists);
    CHECK_FALSE(s->policy);

    v.add(mb(topo::StreamCreated{"orders", Epoch{3}, core::StreamPolicy{}}));
    s = v.stream("orders");
    CHECK(s->exists);
    CHECK(s->policy == core::StreamPolicy{});
    CHECK(v.streams().size() == 1);
}

TEST_CASE("a late delete from an older epoch does not undo a newer master's completion",
          "[topology][unit]") {
    // The old master a, cut off, deletes in epoch 2 after b completed the
    // stream in epoch 3 (b had not seen the delete: it was never acknowledged).
    Author ma{a}, mb{b};
    std::vector<core::TopologyEvent> events{
        elected(ma, 2), ma(topo::StreamCreated{"orders", Epoch{2}, {}}), elected(mb, 3),
        mb(topo::StreamCompleted{"orders", Epoch{3}, core::Seq{7}}),
        ma(topo::StreamDeleted{"orders", Epoch{2}})};
    topology::View v;
    for (const auto& e : events) v.add(e);
    REQUIRE(v.stream("orders"));
    CHECK(v.stream("orders")->exists);
    CHECK(v.stream("orders")->epoch == Epoch{3});
}

TEST_CASE("a stream change by a node that did not master its epoch is ignored",
          "[topology][unit]") {
    Author ma{a}, mc{c};
    topology::View v;
    v.add(elected(ma, 2));
    v.add(ma(topo::StreamCreated{"orders", Epoch{2}, {}}));
    v.add(mc(topo::StreamDeleted{"orders", Epoch{2}}));  // c was not master of 2
    v.add(mc(topo::StreamDeleted{"orders", Epoch{4}}));  // nor of 4 (nobody was)
    v.add(mc(topo::StreamCreated{"audit", Epoch{2}, {}}));
    CHECK(v.stream("orders")->exists);
    CHECK_FALSE(v.stream("audit"));
    CHECK(v.streams().size() == 1);
}

TEST_CASE("stream changes that name epoch 0, no stream or a system stream are refused",
          "[topology][unit]") {
    const topology::Members m({{a, topology::MemberRole::data},
                               {b, topology::MemberRole::data},
                               {c, topology::MemberRole::data}});
    Author ma{a};
    CHECK_FALSE(topology::check_event(ma(topo::StreamDeleted{"orders", Epoch{2}}), m));
    auto why = topology::check_event(ma(topo::StreamDeleted{"orders", Epoch{0}}), m);
    REQUIRE(why);
    CHECK(why->find("epoch 0") != std::string::npos);
    why = topology::check_event(ma(topo::StreamCreated{"$topology", Epoch{2}, {}}), m);
    REQUIRE(why);
    CHECK(why->find("system stream") != std::string::npos);
    CHECK(topology::check_event(ma(topo::StreamPolicyChanged{"", Epoch{2}, {}}), m));
}

TEST_CASE("the streams of the view are the same for any order of the same events",
          "[topology][property]") {
    Author ma{a}, mb{b}, mc{c};
    std::vector<core::TopologyEvent> events{
        elected(ma, 2),
        ma(topo::StreamCreated{"orders", Epoch{2}, immediate_kept(1)}),
        ma(topo::StreamCreated{"audit", Epoch{2}, {}}),
        ma(topo::StreamDeleted{"audit", Epoch{2}}),
        elected(mb, 3),
        mb(topo::StreamCompleted{"orders", Epoch{3}, core::Seq{2}}),
        mb(topo::StreamPolicyChanged{"orders", Epoch{3}, immediate_kept(2)}),
        mb(topo::StreamCreated{"audit", Epoch{3}, immediate_kept(3)}),
        ma(topo::StreamDeleted{"orders", Epoch{2}}),  // late, from the old master
        mc(topo::StreamDeleted{"audit", Epoch{3}}),   // not the master of 3
        elected(mc, 4),
        mc(topo::StreamDeleted{"orders", Epoch{4}}),
    };
    topology::View reference;
    for (const auto& e : events) reference.add(e);
    CHECK_FALSE(reference.stream("orders")->exists);
    CHECK(reference.stream("audit")->exists);
    CHECK(reference.stream("audit")->policy == immediate_kept(3));
    test::check_view_in_any_order(events, 100, 7);
}

TEST_CASE("a change counts as held only by peers that reported it in its own epoch",
          "[topology][unit]") {
    const core::TopologyAuthor author{a, 1};
    const core::TopologyKey key{author, 5};
    topology::Spread spread;
    CHECK(spread.holding(key, Epoch{2}) == 0);
    spread.report(b, Epoch{2}, {{author, 4}});
    CHECK(spread.holding(key, Epoch{2}) == 0);
    spread.report(b, Epoch{2}, {{author, 5}});
    spread.report(c, Epoch{3}, {{author, 9}});  // c moved on: it does not count for epoch 2
    CHECK(spread.holding(key, Epoch{2}) == 1);
    spread.report(b, Epoch{1}, {});  // an older report, reordered: ignored
    CHECK(spread.holding(key, Epoch{2}) == 1);
    spread.forget(b);
    CHECK(spread.holding(key, Epoch{2}) == 0);
}

TEST_CASE("a new master counts the voters whose reports in its epoch it covers",
          "[topology][unit]") {
    const core::TopologyAuthor author_a{a, 1}, author_b{b, 1};
    topology::Spread spread;
    spread.report(b, Epoch{3}, {{author_a, 5}, {author_b, 2}});
    spread.report(c, Epoch{2}, {{author_a, 9}});  // before epoch 3: not counted
    CHECK(spread.covered({{author_a, 5}, {author_b, 2}}, Epoch{3}) == 1);
    CHECK(spread.covered({{author_a, 5}}, Epoch{3}) == 0);
    CHECK(spread.covered({{author_a, 9}, {author_b, 2}}, Epoch{2}) == 2);
    CHECK(topology::covers({{author_a, 1}}, {{author_b, 0}}));
    CHECK_FALSE(topology::covers({}, {{author_b, 1}}));
}
