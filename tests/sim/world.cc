// The world: the step loop, delivery, clients, and the two phases of a run.
#include "tests/sim/world.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/assert.h"
#include "tests/sim/faults.h"
#include "tests/sim/master.h"

namespace spirit::sim {

namespace {

// Deliveries and disk writes in one tick past which the run is a livelock.
constexpr std::uint64_t events_per_tick_max = 200'000;
// A publish taken by a node is retried (maybe) after this many ticks without an ack.
constexpr std::uint64_t publish_timeout_ticks = 40;

topology::Members members_of(Shape shape) {
    using topology::MemberRole;
    std::vector<topology::Member> m;
    const std::size_t data = shape == Shape::five_data ? 5 : shape == Shape::three_data ? 3 : 2;
    for (std::size_t i = 1; i <= data; ++i) {
        m.push_back({core::NodeId{"n" + std::to_string(i)}, MemberRole::data});
    }
    if (shape == Shape::two_data_witness) m.push_back({core::NodeId{"w"}, MemberRole::witness});
    return topology::Members(std::move(m));
}

}  // namespace

World::World(WorldOptions options)
    : options_(std::move(options)),
      prng_(options_.seed),
      members_(members_of(options_.shape)),
      network_(members_.voters(), prng_),
      checkers_(*this) {
    for (const topology::Member& m : members_.all()) {
        const std::size_t i = nodes_.size();
        const bool data = m.role == topology::MemberRole::data;
        nodes_.push_back(std::make_unique<Node>(*this, i, m.id, data));
        if (data) data_nodes_.push_back(i);
    }
    rates_.assign(nodes_.size(), 1000);
    rate_acc_.assign(nodes_.size(), 0);
    held_.resize(nodes_.size());
    disk_delay_max_ = options_.faults.disk_delay_max;
    slow_disk_permille_ = options_.faults.slow_disk_permille;
    faults_ = std::make_unique<FaultDriver>(*this, options_.faults);
    trace(describe(options_));
    for (auto& n : nodes_) n->start();
}

World::~World() = default;

std::size_t World::index_of(const core::NodeId& id) const {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i]->id() == id) return i;
    }
    SPIRIT_ASSERT_MSG(false, ("unknown node " + id.value()).c_str());
    return 0;
}

void World::send(std::size_t from, std::size_t to, Message message) {
    network_.send(now_, Envelope{from, to, nodes_[to]->life(), std::move(message)});
}

std::uint64_t World::disk_delay() {
    std::uint64_t delay = disk_delay_max_ > 0 ? prng_.uniform(0, disk_delay_max_) : 0;
    if (slow_disk_permille_ > 0 && prng_.uniform(0, 999) < slow_disk_permille_) {
        delay += prng_.uniform(1, std::max<std::uint64_t>(1, options_.faults.slow_disk_ticks_max));
        count("slow disk write");
    }
    return delay;
}

void World::set_disk(std::uint64_t delay_max, std::uint64_t slow_permille) {
    disk_delay_max_ = delay_max;
    slow_disk_permille_ = slow_permille;
}

void World::report(std::vector<Violation> violations) {
    for (Violation& v : violations) {
        v.tick = now_;
        trace("VIOLATION " + v.invariant + ": " + v.message);
        if (violations_.empty()) first_trace_ = trace_.last();
        if (violations_.size() < 100) violations_.push_back(std::move(v));
        if (options_.stop_on_first) stopped_ = true;
    }
}

void World::record_ack(const AckRecord& ack) {
    acked_ids_.insert(ack.id);
    trace(fmt::format("{} acks {} seq {} id {} ({}) in epoch {}", nodes_[ack.node]->id().value(),
                      stream_name(ack.stream), ack.seq.value(), ack.id, short_hash(ack.hash),
                      ack.epoch.value()));
    report(checkers_.acked(ack));
}

// ---- Faults and scripted actions -------------------------------------------

void World::crash(std::size_t node) {
    nodes_[node]->crash();
    held_[node].clear();
}

void World::restart(std::size_t node) {
    if (!nodes_[node]->up()) nodes_[node]->start();
}

void World::pause(std::size_t node) {
    if (!nodes_[node]->up() || nodes_[node]->paused()) return;
    nodes_[node]->set_paused(true);
    trace(nodes_[node]->id().value() + " pauses (no ticks, messages held)");
}

void World::resume(std::size_t node) {
    if (!nodes_[node]->paused()) return;
    nodes_[node]->set_paused(false);
    trace(fmt::format("{} resumes; {} messages were held", nodes_[node]->id().value(),
                      held_[node].size()));
    for (Envelope& e : held_[node]) network_.requeue(now_, std::move(e));
    held_[node].clear();
}

void World::jump(std::size_t node, std::uint64_t ticks) {
    Node& n = *nodes_[node];
    if (!n.up() || n.paused()) return;
    trace(fmt::format("{}: its clock jumps {} ticks", n.id().value(), ticks));
    for (std::uint64_t i = 0; i < ticks && n.up(); ++i) n.tick();
}

void World::isolate(std::size_t node) {
    for (std::size_t other = 0; other < nodes_.size(); ++other) {
        if (other == node) continue;
        cut(node, other);
        cut(other, node);
    }
}

void World::stand(std::size_t node) {
    trace(nodes_[node]->id().value() + ": an operator asks it to stand");
    nodes_[node]->transfer(nodes_[node]->id());
}

// ---- The step loop ------------------------------------------------------------

void World::step() {
    ++now_;
    tick_nodes();
    tick_clients();
    drain();
    report(checkers_.tick());
}

void World::run_ticks(std::uint64_t ticks) {
    for (std::uint64_t i = 0; i < ticks && !stopped_; ++i) step();
}

bool World::run_until(const std::function<bool()>& done, std::uint64_t ticks_max) {
    for (std::uint64_t i = 0; i < ticks_max && !stopped_; ++i) {
        if (done()) return true;
        step();
    }
    return done();
}

void World::tick_nodes() {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        Node& n = *nodes_[i];
        if (!n.up() || n.paused()) continue;
        rate_acc_[i] += rates_[i];
        while (rate_acc_[i] >= 1000 && n.up()) {
            rate_acc_[i] -= 1000;
            n.tick();
        }
    }
}

void World::drain() {
    std::uint64_t events = 0;
    for (;;) {
        bool progressed = false;
        while (auto e = network_.pop_due(now_)) {
            deliver(std::move(*e));
            progressed = true;
            ++events;
        }
        for (auto& n : nodes_) {
            if (!n->up() || n->paused()) continue;
            const std::size_t applied = n->complete_disk(now_);
            events += applied;
            progressed = progressed || applied > 0;
        }
        if (!progressed) return;
        if (events > events_per_tick_max) {
            report({{"livelock", fmt::format("{} deliveries and writes in one tick", events)}});
            stopped_ = true;
            return;
        }
    }
}

void World::deliver(Envelope e) {
    Node& to = *nodes_[e.to];
    if (!to.up() || to.life() != e.to_life) return;  // its connection died with it
    if (to.paused()) {
        held_[e.to].push_back(std::move(e));
        return;
    }
    if (trace_.messages()) {
        trace(fmt::format("{} -> {}: {}", nodes_[e.from]->id().value(), to.id().value(),
                          sim::describe(e.message)));
    }
    to.receive(e.from, e.message);
}

// ---- Clients ---------------------------------------------------------------

void World::tick_clients() {
    if (!publishing_) return;
    publish_acc_ += options_.publish_permille;
    while (publish_acc_ >= 1000) {
        publish_acc_ -= 1000;
        client_publish(prng_.uniform(0, stream_count - 1), next_id_++);
    }
    while (!retries_.empty() && retries_.begin()->first <= now_) {
        const auto [stream, id] = retries_.begin()->second;
        retries_.erase(retries_.begin());
        if (acked_ids_.contains(id)) continue;
        if (prng_.uniform(0, 999) < options_.retry_permille) client_publish(stream, id);
    }
}

void World::client_publish(std::size_t stream, std::uint64_t id) {
    const std::size_t target = prng_.uniform(0, nodes_.size() - 1);
    const bool taken = publish(target, stream, id);
    const std::uint64_t wait = taken ? publish_timeout_ticks : prng_.uniform(3, 20);
    retries_.emplace(now_ + wait, std::pair{stream, id});
}

bool World::publish(std::size_t node, std::size_t stream, std::uint64_t id) {
    const bool taken = nodes_[node]->publish(stream, id);
    trace(fmt::format("client: {} id {} to {}: {}", stream_name(stream), id,
                      nodes_[node]->id().value(), taken ? "taken" : "refused"));
    return taken;
}

std::uint64_t World::new_id() {
    return next_id_++;
}

// ---- Phases ------------------------------------------------------------------

Outcome World::run() {
    while (now_ < options_.safety_ticks && !stopped_) {
        faults_->tick();
        step();
    }
    if (!stopped_) liveness();
    if (!stopped_) report(checkers_.final_copies());
    return outcome();
}

std::optional<std::size_t> World::serving_master() const {
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        const Node& n = *nodes_[i];
        if (!n.up() || n.master() == nullptr || !n.master()->serving()) continue;
        if (!best || n.role().epoch > nodes_[*best]->role().epoch) best = i;
    }
    return best;
}

bool World::settled() const {
    const auto m = serving_master();
    if (!m) return false;
    const Node& master = *nodes_[*m];
    if (!master.master()->writable(imm) || !master.master()->writable(ev)) return false;
    return std::all_of(nodes_.begin(), nodes_.end(),
                       [&](const auto& n) { return !n->up() || n->role() == master.role(); });
}

bool World::converged() const {
    const auto m = serving_master();
    if (!m) return false;
    const Node& master = *nodes_[*m];
    for (std::size_t i : data_nodes_) {
        const Node& n = *nodes_[i];
        if (!n.up()) continue;
        if (!n.disk().idle()) return false;
        for (std::size_t s = 0; s < stream_count; ++s) {
            if (n.durable(s).last_seq() != master.head(s).last_seq() ||
                n.durable(s).last_hash() != master.head(s).last_hash()) {
                return false;
            }
        }
    }
    return true;
}

std::string World::states() const {
    std::string out;
    for (const auto& n : nodes_) out += "\n  " + n->describe();
    return out;
}

void World::liveness() {
    trace("liveness phase: every fault heals");
    faults_->heal_all();
    const std::uint64_t healed = now_;
    const std::uint64_t bound = liveness_master_ticks();
    // A master that every live node follows acks a publish to each stream
    // (sent again, with its id, to whichever master serves then).
    const std::uint64_t ids[] = {new_id(), new_id()};
    auto both_acked = [&] { return acked(ids[0]) && acked(ids[1]); };
    std::uint64_t tried = 0;
    while (!both_acked() && now_ - healed < bound && !stopped_) {
        if (settled() && (tried == 0 || now_ - tried >= 3)) {
            tried = now_;
            for (std::size_t s = 0; s < stream_count; ++s) {
                if (!acked(ids[s])) (void)publish(*serving_master(), s, ids[s]);
            }
        }
        step();
    }
    if (stopped_) return;
    if (!both_acked()) {
        return report({{"liveness", fmt::format("{} ticks after the heal no master that every "
                                                "live node follows has acked a write to each "
                                                "stream:{}",
                                                bound, states())}});
    }
    heal_to_master_ = now_ - healed;
    set_publishing(false);
    if (!run_until([&] { return converged(); }, options_.liveness_ticks)) {
        return report({{"converged", fmt::format("{} ticks after the last publish the live copies "
                                                 "differ:{}",
                                                 options_.liveness_ticks, states())}});
    }
    trace(fmt::format("converged {} ticks after the heal", now_ - healed));
}

std::uint64_t World::liveness_master_ticks() const {
    // Two election timeouts (each at most 2 * election_ticks), and one more
    // as slack for a pre-vote round lost to a split vote, the completion and
    // the first acks.
    return 3 * (2 * options_.election_ticks);
}

Outcome World::outcome() const {
    Outcome o;
    o.seed = options_.seed;
    o.violations = violations_;
    o.last_trace = first_trace_.empty() ? trace_.last() : first_trace_;
    o.ticks = now_;
    o.digest = trace_.digest();
    o.faults = fault_counts_;
    if (network_.lost() > 0) o.faults["message lost"] = network_.lost();
    if (network_.duplicated() > 0) o.faults["message duplicated"] = network_.duplicated();
    o.acks = checkers_.acks().size();
    o.masters = checkers_.masters();
    o.heal_to_master_ticks = heal_to_master_;
    o.stale_ack_ticks_max = checkers_.stale_ack_ticks_max();
    return o;
}

}  // namespace spirit::sim
