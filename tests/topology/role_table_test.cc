// The role table: who masters which epoch. Start-up from a recorded role,
// from legacy data and from a fresh data dir; designations; fencing by a
// superseding role; persist-before-use. Each case drives the table through
// its inputs only and checks role(), is_master() and what it asks to record.
#include <catch2/catch.hpp>

#include "topology/role_table.h"

using namespace spirit;
using core::Epoch;
using core::NodeId;
using topology::Freshness;
using topology::Role;
using topology::RoleTable;

namespace {

const NodeId a{"node-a"}, b{"node-b"}, c{"node-c"};

RoleTable table(const NodeId& self, std::optional<Role> persisted, Freshness fresh,
                const NodeId& seed = a) {
    return RoleTable({.self = self, .members = {a, b, c}, .seed_master = seed}, persisted, fresh);
}

// Records what the table asks to record; returns it.
std::optional<Role> persist(RoleTable& t) {
    auto r = t.take_persist();
    if (r) t.persisted(*r);
    return r;
}

}  // namespace

TEST_CASE("supersedes orders by epoch, then by the smaller master id", "[topology][unit]") {
    CHECK(topology::supersedes(Role{Epoch{2}, b}, Role{Epoch{1}, a}));
    CHECK_FALSE(topology::supersedes(Role{Epoch{1}, a}, Role{Epoch{2}, b}));
    CHECK(topology::supersedes(Role{Epoch{3}, a}, Role{Epoch{3}, b}));
    CHECK_FALSE(topology::supersedes(Role{Epoch{3}, b}, Role{Epoch{3}, a}));
    CHECK_FALSE(topology::supersedes(Role{Epoch{3}, a}, Role{Epoch{3}, a}));
}

TEST_CASE("a recorded master takes a new epoch on every start, recorded before use",
          "[topology][unit]") {
    auto t = table(a, Role{Epoch{4}, a}, Freshness::recorded);
    CHECK(t.learning());  // its record may be behind the group's
    CHECK_FALSE(t.take_persist());
    t.observe(b, Role{Epoch{4}, a});
    CHECK(t.role() == Role{Epoch{5}, a});
    CHECK_FALSE(t.is_master());  // not before the record is durable
    auto r = persist(t);
    REQUIRE(r);
    CHECK(*r == Role{Epoch{5}, a});
    CHECK(t.is_master());
}

TEST_CASE("a recorded slave keeps its role and asks nothing", "[topology][unit]") {
    auto t = table(b, Role{Epoch{4}, a}, Freshness::recorded);
    CHECK(t.role() == Role{Epoch{4}, a});
    CHECK_FALSE(t.take_persist());
    CHECK(t.master() == a);
    CHECK_FALSE(t.is_master());
}

TEST_CASE("data written before roles were recorded belongs to epoch 1", "[topology][unit]") {
    auto master = table(a, std::nullopt, Freshness::recorded);
    master.observe(c, Role{Epoch{0}, a});
    CHECK(persist(master) == Role{Epoch{2}, a});
    CHECK(master.is_master());
    auto slave = table(b, std::nullopt, Freshness::recorded);
    CHECK(persist(slave) == Role{Epoch{1}, a});
    CHECK_FALSE(slave.is_master());
}

TEST_CASE("a fresh group learns from a majority that nobody knows an epoch", "[topology][unit]") {
    auto ta = table(a, std::nullopt, Freshness::fresh);
    auto tb = table(b, std::nullopt, Freshness::fresh);
    CHECK(ta.learning());
    CHECK_FALSE(ta.master());
    CHECK_FALSE(ta.take_persist());
    ta.observe(b, tb.role());  // a and b: a majority of three
    CHECK_FALSE(ta.learning());
    CHECK(persist(ta) == Role{Epoch{1}, a});
    CHECK(ta.is_master());
    tb.observe(a, ta.role());
    CHECK_FALSE(tb.learning());
    CHECK(persist(tb) == Role{Epoch{1}, a});
    CHECK(tb.master() == a);
}

TEST_CASE("a wiped master learns the current epoch and takes the next", "[topology][unit]") {
    // The group is at epoch 7 under node-a, whose data dir was wiped.
    auto t = table(a, std::nullopt, Freshness::fresh);
    t.observe(b, Role{Epoch{7}, a});
    CHECK_FALSE(t.learning());
    // It never writes in epoch 7, which its previous life used.
    CHECK(persist(t) == Role{Epoch{8}, a});
    CHECK(t.is_master());
}

TEST_CASE("a wiped slave adopts the current role without claiming", "[topology][unit]") {
    auto t = table(c, std::nullopt, Freshness::fresh);
    t.observe(b, Role{Epoch{7}, b});
    CHECK(persist(t) == Role{Epoch{7}, b});
    CHECK(t.master() == b);
    CHECK_FALSE(t.is_master());
}

TEST_CASE("a master steps down at once when a superseding role arrives", "[topology][unit]") {
    auto t = table(a, Role{Epoch{1}, a}, Freshness::recorded);
    t.observe(b, Role{Epoch{1}, a});
    persist(t);
    REQUIRE(t.is_master());
    t.observe(c, Role{Epoch{3}, b});
    CHECK_FALSE(t.is_master());
    CHECK(t.master() == b);
    CHECK(persist(t) == Role{Epoch{3}, b});
    // An older role changes nothing.
    t.observe(c, Role{Epoch{2}, c});
    CHECK(t.role() == Role{Epoch{3}, b});
    CHECK_FALSE(t.take_persist());
}

TEST_CASE("a node named master of an epoch it did not create claims the next", "[topology][unit]") {
    auto t = table(b, Role{Epoch{2}, a}, Freshness::recorded);
    t.observe(c, Role{Epoch{3}, b});  // an operator's designation, made on node-c
    CHECK_FALSE(t.is_master());
    CHECK(persist(t) == Role{Epoch{4}, b});
    CHECK(t.is_master());
}

TEST_CASE("designating moves the role both ways", "[topology][unit]") {
    auto t = table(a, Role{Epoch{1}, a}, Freshness::recorded);
    t.observe(b, Role{Epoch{1}, a});
    persist(t);  // a masters epoch 2
    t.designate(b);
    CHECK_FALSE(t.is_master());
    CHECK(persist(t) == Role{Epoch{3}, b});
    t.designate(a);
    CHECK(persist(t) == Role{Epoch{4}, a});
    CHECK(t.is_master());
}

TEST_CASE("an equal epoch with two masters settles on the smaller id", "[topology][unit]") {
    auto t = table(c, Role{Epoch{5}, b}, Freshness::recorded);
    t.observe(a, Role{Epoch{5}, a});
    CHECK(t.role() == Role{Epoch{5}, a});
    t.observe(b, Role{Epoch{5}, b});
    CHECK(t.role() == Role{Epoch{5}, a});
}

TEST_CASE("roles from nodes outside the group are ignored", "[topology][unit]") {
    auto t = table(b, Role{Epoch{2}, a}, Freshness::recorded);
    t.observe(NodeId{"stranger"}, Role{Epoch{9}, NodeId{"stranger"}});
    CHECK(t.role() == Role{Epoch{2}, a});
}

TEST_CASE("a master restored from an old copy claims past what its peers know",
          "[topology][unit]") {
    // Its record says epoch 3, but it mastered epoch 4 since (then lost it).
    auto t = table(a, Role{Epoch{3}, a}, Freshness::recorded);
    CHECK(t.learning());
    t.observe(b, Role{Epoch{4}, a});  // itself and b: a majority
    CHECK_FALSE(t.learning());
    CHECK(persist(t) == Role{Epoch{5}, a});
    CHECK(t.is_master());
}
