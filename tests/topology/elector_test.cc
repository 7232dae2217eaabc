// The election state machine, driven through its inputs only. A small
// harness holds several Electors, makes every Ready's events durable at
// once (or, for the durability cases, holds them), and delivers messages
// between nodes that are not cut off from each other, in the order sent.
// Each case names the rule it checks: ballots, pre-vote, one durable vote
// per epoch, check-quorum, fencing by a higher epoch, restart, transfer,
// witnesses, and the notes each Ready carries for the daemon's metrics
// (elections started and won, step-downs by cause). The view's fold is
// checked for order independence.
#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "tests/topology/any_order.h"
#include "topology/elector.h"

using namespace spirit;
using core::Epoch;
using core::NodeId;
using topology::Elector;
using topology::Member;
using topology::MemberRole;
using topology::Members;

namespace {

const NodeId a{"a"}, b{"b"}, c{"c"}, w{"w"};

Members three() {
    return Members({{a, MemberRole::data}, {b, MemberRole::data}, {c, MemberRole::data}});
}

// Electors on an instant network: messages go out in the order they were
// sent and are delivered at the next deliver(); events are durable at once
// unless the node's disk is held.
struct Net {
    Members members;
    std::map<NodeId, std::unique_ptr<Elector>> nodes;
    std::map<NodeId, std::vector<core::TopologyEvent>> durable;  // every event each node holds
    std::set<std::pair<NodeId, NodeId>> cut;                     // (from, to) dropped
    std::set<NodeId> held_disk;
    std::map<NodeId, std::vector<topology::Ready>> held;
    std::map<NodeId, std::vector<topology::ElectionNote>> notes;  // every Ready's, in order
    std::deque<std::tuple<NodeId, NodeId, topology::ElectionMessage>> wire;
    std::uint64_t seed = 1;

    explicit Net(Members m) : members(std::move(m)) {
        for (const Member& x : members.all()) start(x.id);
    }

    void start(const NodeId& id) {
        topology::ElectorOptions o{.self = id,
                                   .members = members,
                                   .author = {id, 7},
                                   .heartbeat_ticks = 1,
                                   .election_ticks = 10,
                                   .seed = seed++};
        nodes[id] = std::make_unique<Elector>(o, durable[id]);
        flush(id);
    }

    void flush(const NodeId& id) {
        Elector& e = *nodes[id];
        while (e.has_ready()) {
            topology::Ready r = e.take_ready();
            notes[id].insert(notes[id].end(), r.notes.begin(), r.notes.end());
            for (auto& [to, m] : std::vector(r.send_now.begin(), r.send_now.end())) {
                wire.emplace_back(id, to, m);
            }
            if (held_disk.contains(id)) {
                held[id].push_back(std::move(r));
                continue;
            }
            persist(id, r);
        }
    }

    void persist(const NodeId& id, const topology::Ready& r) {
        for (const auto& ev : r.events) {
            for (auto& [other, log] : durable) {
                // Anti-entropy is instant here: every node learns the event.
                if (other == id || !cut.contains({id, other})) {
                    log.push_back(ev);
                    if (other != id && nodes.contains(other) && nodes[other]) {
                        nodes[other]->learn(ev);
                    }
                }
            }
        }
        for (auto& [to, m] : r.send_after) wire.emplace_back(id, to, m);
        nodes[id]->persisted(r.id);
    }

    void release_disk(const NodeId& id) {
        held_disk.erase(id);
        for (auto& r : held[id]) persist(id, r);
        held[id].clear();
        flush(id);
    }

    void deliver() {
        for (int guard = 0; guard < 10'000 && !wire.empty(); ++guard) {
            auto [from, to, m] = wire.front();
            wire.pop_front();
            if (cut.contains({from, to}) || !nodes[to]) continue;
            nodes[to]->step(from, m);
            flush(to);
        }
    }

    void tick(int n = 1) {
        for (int i = 0; i < n; ++i) {
            for (auto& [id, e] : nodes) {
                if (!e) continue;
                e->tick();
                flush(id);
            }
            deliver();
            if (trace) {
                for (auto& [id, e] : nodes) {
                    if (e)
                        std::printf("%llu %s\n", (unsigned long long)e->now(),
                                    e->describe().c_str());
                }
            }
        }
    }
    bool trace = false;

    void isolate(const NodeId& x) {
        for (const Member& m : members.all()) {
            if (m.id == x) continue;
            cut.insert({x, m.id});
            cut.insert({m.id, x});
        }
    }
    void heal() { cut.clear(); }

    std::vector<NodeId> masters() const {
        std::vector<NodeId> out;
        for (const auto& [id, e] : nodes) {
            if (e && e->state() == Elector::State::master) out.push_back(id);
        }
        return out;
    }

    // Ticks until exactly one master exists; returns it.
    NodeId settle(int ticks_max = 200) {
        for (int i = 0; i < ticks_max; ++i) {
            tick();
            auto m = masters();
            if (m.size() == 1) {
                bool all_follow = true;
                for (const auto& [id, e] : nodes) {
                    if (e && !cut.contains({m[0], id}) && e->role().master != m[0]) {
                        all_follow = false;
                    }
                }
                if (all_follow) return m[0];
            }
        }
        FAIL("no single master after " << ticks_max << " ticks");
        return NodeId{};
    }
};

}  // namespace

TEST_CASE("epochs are ballots: each belongs to one data member", "[topology][unit]") {
    const Members m({{a, MemberRole::data}, {b, MemberRole::data}, {w, MemberRole::witness}});
    CHECK(m.voters() == 3);
    CHECK(m.majority() == 2);
    CHECK(m.data() == std::vector<NodeId>{a, b});
    CHECK(m.candidate_of(Epoch{1}) == b);
    CHECK(m.candidate_of(Epoch{2}) == a);
    CHECK(m.next_epoch(a, Epoch{0}) == Epoch{2});
    CHECK(m.next_epoch(b, Epoch{0}) == Epoch{1});
    CHECK(m.next_epoch(a, Epoch{2}) == Epoch{4});
    CHECK(m.next_epoch(b, Epoch{2}) == Epoch{3});
    CHECK(m.next_epoch(b, Epoch{3}) == Epoch{5});
    const Members t = three();
    for (std::uint64_t after = 0; after < 30; ++after) {
        for (const NodeId& n : t.data()) {
            const Epoch e = t.next_epoch(n, Epoch{after});
            CHECK(e > Epoch{after});
            CHECK(e.value() <= after + 3);
            CHECK(t.candidate_of(e) == n);
        }
    }
}

TEST_CASE("three nodes elect one master, and every node follows it", "[topology][unit]") {
    Net net(three());
    const NodeId m = net.settle();
    const Epoch e = net.nodes[m]->epoch();
    CHECK(net.members.candidate_of(e) == m);
    for (auto& [id, node] : net.nodes) {
        CHECK(node->epoch() == e);
        CHECK(node->role().master == m);
        CHECK(node->view().master_of(e) == m);
    }
    // Quiet afterwards: heartbeats keep the master, no new epoch.
    net.tick(100);
    CHECK(net.masters() == std::vector<NodeId>{m});
    CHECK(net.nodes[m]->epoch() == e);
}

TEST_CASE("a node back from a partition cannot depose a healthy master (pre-vote)",
          "[topology][unit]") {
    Net net(three());
    const NodeId m = net.settle();
    const Epoch e = net.nodes[m]->epoch();
    const NodeId lone = m == a ? b : a;
    // Cut the lone node off from both others; it stands again and again, but
    // only asks for pre-votes, which change nothing.
    net.isolate(lone);
    net.tick(100);
    CHECK(net.nodes[lone]->state() != Elector::State::candidate);
    CHECK(net.nodes[lone]->epoch() == e);
    net.heal();
    net.tick(50);
    CHECK(net.masters() == std::vector<NodeId>{m});
    CHECK(net.nodes[m]->epoch() == e);
    CHECK(net.nodes[lone]->role().master == m);
}

TEST_CASE("a vote is answered only once its Voted event is durable", "[topology][unit]") {
    Net net(three());
    // b's disk holds everything: its own Voted for itself is not durable, so
    // its VoteRequests never leave; a and c elect among themselves.
    net.held_disk.insert(b);
    const NodeId m = net.settle();
    CHECK(m != b);
    // A voter whose disk holds: c's vote for a new candidate stays unanswered.
    net.release_disk(b);
    net.tick(5);
    const NodeId voter = m == a ? c : a;
    net.held_disk.insert(voter);
    net.isolate(m);
    for (int i = 0; i < 40; ++i) {
        net.tick();
        CHECK(net.masters().size() <= 1);
        // Without its answer the candidate cannot win with two of three.
        for (auto& [id, e] : net.nodes) {
            if (id != m) CHECK(e->state() != Elector::State::master);
        }
    }
    net.release_disk(voter);
    net.tick(40);
    auto masters = net.masters();
    // The old master is cut off and stepped down (check-quorum); a new one
    // exists among the other two.
    REQUIRE(masters.size() == 1);
    CHECK(masters[0] != m);
}

TEST_CASE("a voter grants one vote per epoch, only to the epoch's own candidate",
          "[topology][unit]") {
    const Members m = three();
    topology::ElectorOptions o{.self = c, .members = m, .author = {c, 1}, .seed = 3};
    Elector voter(o, {});
    (void)voter.take_ready();
    // Epoch 1 belongs to b: a's request for it is refused.
    voter.step(a, topology::VoteRequest{Epoch{1}, false, false});
    auto r = voter.take_ready();
    REQUIRE(r.send_now.size() == 1);
    CHECK(std::get<topology::VoteResponse>(r.send_now[0].message).granted == false);
    CHECK(r.events.empty());
    // b's request is granted: a Voted event, the answer after it is durable.
    voter.step(b, topology::VoteRequest{Epoch{1}, false, false});
    r = voter.take_ready();
    REQUIRE(r.events.size() == 1);
    const auto* voted = std::get_if<core::topo::Voted>(&r.events[0].body);
    REQUIRE(voted != nullptr);
    CHECK(voted->epoch == Epoch{1});
    CHECK(voted->candidate == b);
    const core::TopologyEvent vote_event = r.events[0];
    CHECK(r.send_now.empty());
    REQUIRE(r.send_after.size() == 1);
    CHECK(std::get<topology::VoteResponse>(r.send_after[0].message).granted);
    CHECK(voter.epoch() == Epoch{1});
    // The same epoch again, and an older one: refused.
    voter.step(b, topology::VoteRequest{Epoch{1}, false, false});
    r = voter.take_ready();
    CHECK(r.events.empty());
    REQUIRE(r.send_now.size() == 1);
    CHECK_FALSE(std::get<topology::VoteResponse>(r.send_now[0].message).granted);
    // After a restart from its durable events it still refuses epoch 1.
    Elector restarted(o, {vote_event});
    (void)restarted.take_ready();
    CHECK(restarted.epoch() == Epoch{1});
    restarted.step(b, topology::VoteRequest{Epoch{1}, false, false});
    r = restarted.take_ready();
    CHECK(r.events.empty());
}

TEST_CASE("a master cut off from a majority steps down within an election timeout",
          "[topology][unit]") {
    Net net(three());
    const NodeId m = net.settle();
    net.isolate(m);
    int ticks = 0;
    while (net.nodes[m]->state() == Elector::State::master && ticks < 100) {
        net.tick();
        ++ticks;
    }
    CHECK(net.nodes[m]->state() != Elector::State::master);
    CHECK(ticks <= 2 * 10);  // check-quorum runs every election timeout
    // It says why, in its own sub-log.
    bool said = false;
    for (const auto& ev : net.durable[m]) {
        if (const auto* s = std::get_if<core::topo::SteppedDown>(&ev.body)) {
            said = said || s->reason.find("voters in an election timeout") != std::string::npos;
        }
    }
    CHECK(said);
    // The other two elect a new master in a higher epoch.
    net.tick(60);
    auto masters = net.masters();
    REQUIRE(masters.size() == 1);
    CHECK(masters[0] != m);
    CHECK(net.nodes[masters[0]]->epoch() > net.nodes[m]->epoch());
    // Healed, the old master follows the new one.
    net.heal();
    net.tick(30);
    CHECK(net.nodes[m]->role().master == masters[0]);
}

TEST_CASE("a master that hears of a higher epoch steps down at once", "[topology][unit]") {
    Net net(three());
    const NodeId m = net.settle();
    const Epoch e = net.nodes[m]->epoch();
    const NodeId other = m == a ? b : a;
    const Epoch higher = net.members.next_epoch(other, e);
    net.nodes[m]->step(other, topology::Heartbeat{higher, other});
    CHECK(net.nodes[m]->state() == Elector::State::follower);
    CHECK(net.nodes[m]->role() == topology::Role{higher, other});
    CHECK(net.nodes[m]->epoch() == higher);
}

TEST_CASE("a claim to an epoch that belongs to another node is ignored", "[topology][unit]") {
    Net net(three());
    const NodeId m = net.settle();
    const Epoch e = net.nodes[m]->epoch();
    const NodeId liar = m == a ? b : a;
    // The liar claims the next epoch, which is not its ballot.
    Epoch not_its = e.next();
    while (net.members.candidate_of(not_its) == liar) not_its = not_its.next();
    for (auto& [id, node] : net.nodes) {
        if (id == liar) continue;
        node->step(liar, topology::Heartbeat{not_its, liar});
        CHECK(node->epoch() == e);
    }
    CHECK(net.nodes[m]->state() == Elector::State::master);
}

TEST_CASE("a restarted master never resumes its epoch, and its followers elect at once",
          "[topology][unit]") {
    Net net(three());
    const NodeId m = net.settle();
    const Epoch e = net.nodes[m]->epoch();
    net.nodes[m].reset();
    net.start(m);  // from its durable events only
    CHECK(net.nodes[m]->state() == Elector::State::follower);
    CHECK(net.nodes[m]->role().master.empty());
    CHECK(net.nodes[m]->view().stepped_down(e));
    const NodeId next = net.settle();
    CHECK(net.nodes[next]->epoch() > e);
}

TEST_CASE("a transfer makes the target master in a higher epoch", "[topology][unit]") {
    Net net(three());
    const NodeId m = net.settle();
    const Epoch e = net.nodes[m]->epoch();
    const NodeId target = m == c ? a : c;
    net.nodes[m]->transfer(target);
    net.flush(m);
    net.deliver();
    net.tick(3);
    CHECK(net.masters() == std::vector<NodeId>{target});
    CHECK(net.nodes[target]->epoch() > e);
    CHECK(net.nodes[m]->role().master == target);
}

TEST_CASE("a witness votes but never stands, and two data nodes and a witness fail over",
          "[topology][unit]") {
    Net net(Members({{a, MemberRole::data}, {b, MemberRole::data}, {w, MemberRole::witness}}));
    const NodeId m = net.settle();
    CHECK(m != w);
    net.isolate(m);
    net.nodes[m].reset();
    net.tick(60);
    auto masters = net.masters();
    REQUIRE(masters.size() == 1);
    CHECK(masters[0] == (m == a ? b : a));
    for (int i = 0; i < 100; ++i) {
        net.tick();
        CHECK(net.nodes[w]->state() == Elector::State::follower);
    }
}

TEST_CASE("the view is the same for any order of the same events, with duplicates",
          "[topology][property]") {
    Net net(three());
    for (int round = 0; round < 4; ++round) {
        const NodeId m = net.settle();
        net.isolate(m);
        net.tick(40);
        net.heal();
    }
    std::vector<core::TopologyEvent> events = net.durable[a];
    REQUIRE(events.size() > 10);
    test::check_view_in_any_order(events, 50, 42);
}

TEST_CASE("events that break the election rules are refused with a reason", "[topology][unit]") {
    const Members m = three();
    auto ev = [](const NodeId& author, core::TopologyBody body) {
        return core::TopologyEvent{{{author, 1}, 1}, {}, std::move(body)};
    };
    CHECK_FALSE(topology::check_event(ev(a, core::topo::Voted{"default", Epoch{3}, a}), m));
    auto why = topology::check_event(ev(a, core::topo::Voted{"default", Epoch{3}, b}), m);
    REQUIRE(why);
    CHECK(why->find("belongs to a") != std::string::npos);
    why = topology::check_event(ev(b, core::topo::MasterElected{"default", Epoch{3}, {a, b}}), m);
    REQUIRE(why);
    CHECK(why->find("belongs to a") != std::string::npos);
    why = topology::check_event(ev(a, core::topo::MasterElected{"default", Epoch{3}, {a, a}}), m);
    REQUIRE(why);
    CHECK(why->find("fewer than a majority") != std::string::npos);
    CHECK_FALSE(
        topology::check_event(ev(a, core::topo::MasterElected{"default", Epoch{3}, {a, c}}), m));
    why = topology::check_event(ev(NodeId{"x"}, core::topo::NodeStarted{1, false}), m);
    REQUIRE(why);
    CHECK(why->find("not a member") != std::string::npos);
    why = topology::check_event(ev(a, core::topo::Voted{"other", Epoch{3}, a}), m);
    REQUIRE(why);
    CHECK(why->find("group") != std::string::npos);
}

// Found by the simulator (tests/sim/seeds.txt): a node followed, on another
// node's heartbeat (hearsay) or on a late heartbeat of the master itself, a
// master that had stepped down in that epoch, and its role flapped between
// that master and none every heartbeat.
TEST_CASE("hearsay of a master that stepped down does not make it master again",
          "[topology][unit]") {
    struct Row {
        const char* name;
        bool told_by_master;  // the master's own heartbeat named no master
        bool view_knows;      // its SteppedDown event is in the view
        std::uint64_t epoch;  // of the master and of the hearsay (b's ballots: 1, 4)
        const NodeId& from;   // who says b is master: a (hearsay) or b itself (late)
        bool expect_master;   // the node follows b after that heartbeat
    };
    const Row rows[] = {
        {"a live master is followed on hearsay", false, false, 1, a, true},
        // Its heartbeat without a master may be a late one from before it won:
        // only the durable SteppedDown is believed.
        {"hearsay after the master's heartbeat named none", true, false, 1, a, true},
        {"its claim after its heartbeat named none", true, false, 1, b, true},
        {"hearsay when the view holds its step-down", false, true, 1, a, false},
        {"a late claim when the view holds its step-down", false, true, 1, b, false},
        {"a higher epoch whose master stepped down fences, with no master", false, true, 4, a,
         false},
    };
    for (const Row& row : rows) {
        INFO(row.name);
        topology::ElectorOptions o{.self = c, .members = three(), .author = {c, 1}, .seed = 5};
        Elector node(o, {});
        (void)node.take_ready();
        const Epoch e{row.epoch};
        REQUIRE(node.members().candidate_of(e) == b);
        if (row.told_by_master) {
            node.step(b, topology::Heartbeat{e, b});
            REQUIRE(node.role() == topology::Role{e, b});
            node.step(b, topology::Heartbeat{e, NodeId{}});
            REQUIRE(node.role().master.empty());
        }
        if (row.view_knows) {
            const core::TopologyAuthor author{b, 7};
            node.learn({{author, 1}, {}, core::topo::MasterElected{"default", e, {a, b}}});
            node.learn({{author, 2}, {}, core::topo::SteppedDown{"default", e, "test"}});
        }
        node.step(row.from, topology::Heartbeat{e, b});
        CHECK(node.role().master == (row.expect_master ? b : NodeId{}));
        CHECK(node.epoch() == e);
        CHECK(node.state() == Elector::State::follower);
    }
}

// Found by the simulator (tests/sim/seeds.txt): the daemon calls persisted()
// at once for a Ready without events, as Ready allows; the Elector took that
// for "everything before is durable" and became master while its
// MasterElected was still on its way to disk.
TEST_CASE("a node is master only once the Ready holding MasterElected is persisted",
          "[topology][unit]") {
    struct Row {
        const char* name;
        bool later_with_events;  // the next Ready carries an event (else only heartbeats)
        bool persist_later_first;
        bool master_after_later;  // master once only the later Ready is persisted
    };
    const Row rows[] = {
        {"an empty later Ready persisted first", false, true, false},
        {"a later Ready with events persisted first covers the earlier one", true, true, true},
        {"in order", false, false, true},
    };
    for (const Row& row : rows) {
        INFO(row.name);
        topology::ElectorOptions o{.self = b, .members = three(), .author = {b, 1}, .seed = 9};
        Elector node(o, {});
        node.persisted(node.take_ready().id);  // NodeStarted
        node.transfer(b);                      // stands at once in epoch 1, b's ballot
        node.persisted(node.take_ready().id);  // its own Voted
        node.step(a, topology::VoteResponse{Epoch{1}, false, true, Epoch{1}});
        REQUIRE(node.state() == Elector::State::elected);
        const topology::Ready won = node.take_ready();
        REQUIRE(won.events.size() == 1);
        if (row.later_with_events) {
            node.note(core::topo::StreamCompleted{"orders", Epoch{1}, core::Seq{0}});
        }
        node.tick();
        const topology::Ready later = node.take_ready();
        REQUIRE(later.events.empty() != row.later_with_events);
        if (row.persist_later_first) {
            node.persisted(later.id);
            CHECK((node.state() == Elector::State::master) == row.master_after_later);
            node.persisted(won.id);
        } else {
            node.persisted(won.id);
            CHECK(node.state() == Elector::State::master);
            node.persisted(later.id);
        }
        CHECK(node.state() == Elector::State::master);
        CHECK(node.role() == topology::Role{Epoch{1}, b});
    }
}

namespace {

using Kind = topology::ElectionNote::Kind;
using topology::StepDownCause;

std::vector<StepDownCause> step_downs(const std::vector<topology::ElectionNote>& notes) {
    std::vector<StepDownCause> out;
    for (const auto& n : notes) {
        if (n.kind == Kind::stepped_down) out.push_back(n.cause);
    }
    return out;
}

std::size_t count(const std::vector<topology::ElectionNote>& notes, Kind kind) {
    return static_cast<std::size_t>(
        std::count_if(notes.begin(), notes.end(), [&](const auto& n) { return n.kind == kind; }));
}

}  // namespace

TEST_CASE("a Ready notes the elections a node starts and wins and why it steps down",
          "[topology][unit]") {
    Net net(three());
    const NodeId m = net.settle();
    const Epoch e = net.nodes[m]->epoch();
    // The winner asked for pre-votes, stood and won, in that order, in epoch e.
    std::vector<topology::ElectionNote> won;
    for (const auto& n : net.notes[m]) {
        if (n.epoch == e) won.push_back(n);
    }
    REQUIRE(won.size() >= 3);
    CHECK(won[won.size() - 3] == topology::ElectionNote{Kind::pre_vote_started, e});
    CHECK(won[won.size() - 2] == topology::ElectionNote{Kind::campaign_started, e});
    CHECK(won[won.size() - 1] == topology::ElectionNote{Kind::won, e});
    for (const auto& [id, notes] : net.notes) {
        INFO("node " << id.value());
        CHECK(step_downs(notes).empty());
        if (id != m) CHECK(count(notes, Kind::won) == 0);
    }

    SECTION("check_quorum: cut off from both voters") {
        net.isolate(m);
        net.notes.clear();
        net.tick(2 * 10);
        CHECK(step_downs(net.notes[m]) == std::vector{StepDownCause::check_quorum});
        CHECK(std::string(topology::step_down_cause_name(StepDownCause::check_quorum)) ==
              "check_quorum");
    }
    SECTION("higher_epoch: a voter knows a higher epoch") {
        const NodeId other = m == a ? b : a;
        net.notes.clear();
        net.nodes[m]->step(other, topology::Heartbeat{net.members.next_epoch(other, e), {}});
        net.flush(m);
        CHECK(step_downs(net.notes[m]) == std::vector{StepDownCause::higher_epoch});
    }
    SECTION("higher_epoch: another node is master of a higher epoch") {
        const NodeId other = m == a ? b : a;
        net.notes.clear();
        net.nodes[m]->step(other, topology::Heartbeat{net.members.next_epoch(other, e), other});
        net.flush(m);
        CHECK(step_downs(net.notes[m]) == std::vector{StepDownCause::higher_epoch});
    }
    SECTION("transfer: the target stands, forced, and wins") {
        const NodeId target = m == c ? a : c;
        net.notes.clear();
        net.nodes[m]->transfer(target);
        net.flush(m);
        net.deliver();
        net.tick(3);
        CHECK(net.masters() == std::vector<NodeId>{target});
        CHECK(step_downs(net.notes[m]) == std::vector{StepDownCause::transfer});
        // A forced campaign asks for no pre-votes.
        CHECK(count(net.notes[target], Kind::pre_vote_started) == 0);
        CHECK(count(net.notes[target], Kind::campaign_started) == 1);
        CHECK(count(net.notes[target], Kind::won) == 1);
    }
    SECTION("commit_failed: the daemon asks") {
        net.notes.clear();
        net.nodes[m]->step_down("its own commit failed: disk full");
        net.flush(m);
        CHECK(step_downs(net.notes[m]) == std::vector{StepDownCause::commit_failed});
        net.nodes[m]->step_down("again");  // no longer master: nothing
        net.flush(m);
        CHECK(step_downs(net.notes[m]).size() == 1);
    }
    SECTION("restarted: a master that starts again gives up its epoch") {
        net.nodes[m].reset();
        net.notes.clear();
        net.start(m);
        CHECK(net.notes[m] ==
              std::vector{topology::ElectionNote{Kind::stepped_down, e, StepDownCause::restarted}});
    }
}
