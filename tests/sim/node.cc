// The node as the daemon's driver around topology::Elector: persistence
// before send, anti-entropy of `$topology`, roles, crashes and restarts.
// The slave's handlers are in slave.cc, the master's part in master.cc.
#include "tests/sim/node.h"

#include <fmt/format.h>

#include <algorithm>
#include <type_traits>

#include "core/assert.h"
#include "tests/sim/master.h"
#include "tests/sim/world.h"
#include "topology/view.h"

namespace spirit::sim {

namespace {

constexpr std::size_t sync_events_max = 32;  // `$topology` events per anti-entropy reply
constexpr std::uint64_t sync_ticks_min = 2;  // between two replies to one peer

template <class T, class... Ts>
constexpr bool is_one_of = (std::is_same_v<T, Ts> || ...);

}  // namespace

Node::Node(World& world, std::size_t index, core::NodeId id, bool data)
    : world_(world), index_(index), id_(std::move(id)), data_(data) {
    const std::size_t n = world_.members().voters();
    versions_.assign(n, 0);
    last_heard_.assign(n, 0);
    last_sync_.assign(n, 0);
}

Node::~Node() = default;

void Node::trace(const std::string& text) const {
    world_.trace(id_.value() + " " + text);
}

void Node::start() {
    SPIRIT_ASSERT(!up());
    ++life_;
    ++generation_;
    paused_ = false;
    std::vector<core::TopologyEvent> restored;
    restored.reserve(disk_.durable().topology.size());
    for (const auto& [key, e] : disk_.durable().topology) restored.push_back(e);
    // The daemon's floor: the highest epoch its copies confirmed.
    Epoch floor{0};
    for (const Copy& c : disk_.durable().copies) floor = std::max(floor, c.confirmed);
    const WorldOptions& o = world_.options();
    topology::ElectorOptions options{.self = id_,
                                     .members = world_.members(),
                                     .author = {id_, 1},
                                     .heartbeat_ticks = o.heartbeat_ticks,
                                     .election_ticks = o.election_ticks,
                                     .seed = world_.prng().next(),
                                     .epoch_floor = floor,
                                     .broken = o.mutations.broken};
    elector_ = std::make_unique<topology::Elector>(options, restored);
    head_ = disk_.durable().copies;
    learning_.clear();
    refresh_versions();
    role_ = topology::Role{};
    master_.reset();
    slave_.reset();
    last_heard_.assign(last_heard_.size(), 0);
    last_sync_.assign(last_sync_.size(), 0);
    trace(fmt::format("starts (life {}) from {} durable $topology events: epoch {}", life_,
                      restored.size(), elector_->epoch().value()));
    world_.report(world_.checkers().node_started(*this));
    after_input();
}

void Node::crash() {
    if (!up()) return;
    if (master_) master_->abandon();
    master_.reset();
    slave_.reset();
    elector_.reset();
    const std::size_t lost = disk_.pending();
    disk_.crash();
    ++generation_;
    paused_ = false;
    role_ = topology::Role{};
    trace(fmt::format("crashes: {} writes not yet durable are lost", lost));
}

void Node::transfer(const core::NodeId& target) {
    if (!up()) return;
    elector_->transfer(target);
    after_input();
}

void Node::tick() {
    ++lived_;
    elector_->tick();
    if (master_) master_->tick();
    after_input();
}

void Node::after_input() {
    if (!up()) return;
    drain_ready();
    update_role();
    world_.report(world_.checkers().node_stepped(*this));
}

void Node::drain_ready() {
    while (elector_->has_ready()) {
        topology::Ready r = elector_->take_ready();
        for (const topology::Outgoing& o : r.send_now) send_election(o);
        for (const core::TopologyEvent& e : r.events) trace("appends " + sim::describe(e));
        if (r.events.empty()) {
            // As Ready allows and the daemon's Cluster::drive does: no events,
            // so send_after leaves and persisted() is called at once.
            for (const topology::Outgoing& o : r.send_after) send_election(o);
            elector_->persisted(r.id);
            continue;
        }
        const std::uint64_t delay = world_.disk_delay();
        // Persist before send: send_after leaves, and persisted() is called,
        // only once these events (and every earlier write) are durable. A
        // crash drops the write, and with it this callback.
        disk_.write(world_.now(), delay, TopologyOp{r.events},
                    [this, id = r.id, after = std::move(r.send_after), own = r.events] {
                        for (const topology::Outgoing& o : after) send_election(o);
                        elector_->persisted(id);
                        advance_versions(own);
                        after_input();
                    });
    }
}

void Node::send_election(const topology::Outgoing& out) {
    ElectionMsg m{out.message, {}};
    if (std::holds_alternative<topology::Heartbeat>(out.message)) m.versions = versions_;
    send(world_.index_of(out.to), std::move(m));
}

void Node::send(std::size_t to, Message message) {
    world_.send(index_, to, std::move(message));
}

void Node::update_role() {
    const topology::Role r = elector_->role();
    if (r == role_) return;
    role_ = r;
    ++generation_;
    trace(fmt::format("role: epoch {} master {} ({})", r.epoch.value(),
                      r.master.empty() ? "none" : r.master.value(), elector_->describe()));
    if (master_) master_->abandon();
    master_.reset();
    slave_.reset();
    if (!data_) return;
    if (r.master == id_) {
        master_ = std::make_unique<Master>(*this, r.epoch);
        master_->start();
    } else if (!r.master.empty()) {
        slave_ = SlaveOf{r.epoch, world_.index_of(r.master), {}};
        slave_report();
    }
}

void Node::refresh_versions() {
    versions_.assign(versions_.size(), 0);
    // Keys sort by author, then seq: one pass finds each contiguous prefix.
    for (const auto& [key, e] : disk_.durable().topology) {
        std::uint64_t& v = versions_[world_.index_of(key.author.node)];
        if (key.seq == v + 1) v = key.seq;
    }
}

void Node::receive(std::size_t from, const Message& message) {
    const core::NodeId& sender = world_.node(from).id();
    last_heard_[from] = lived_ + 1;
    if (const auto* e = std::get_if<ElectionMsg>(&message)) {
        if (!e->versions.empty()) anti_entropy(from, e->versions);
        elector_->step(sender, e->message);
    } else {
        elector_->heard(sender);  // any valid frame counts for check-quorum
        if (const auto* t = std::get_if<TopologyEventsMsg>(&message)) {
            on_topology_events(*t);
        } else if (const auto* f = std::get_if<FencedMsg>(&message)) {
            on_fenced(from, *f);
        } else if (const auto* p = std::get_if<ForwardMsg>(&message)) {
            forwarded(*p);
        } else if (!master_message(from, message)) {
            slave_message(from, message);
        }
    }
    after_input();
}

void Node::anti_entropy(std::size_t from, const VersionVector& theirs) {
    if (last_sync_[from] != 0 && lived_ + 1 < last_sync_[from] + sync_ticks_min) return;
    TopologyEventsMsg out;
    const auto& held = disk_.durable().topology;
    for (std::size_t a = 0; a < versions_.size() && a < theirs.size(); ++a) {
        const core::TopologyAuthor author{world_.node(a).id(), 1};
        for (std::uint64_t seq = theirs[a] + 1;
             seq <= versions_[a] && out.events.size() < sync_events_max; ++seq) {
            auto it = held.find(core::TopologyKey{author, seq});
            SPIRIT_ASSERT(it != held.end());
            out.events.push_back(it->second);
        }
    }
    if (out.events.empty()) return;
    last_sync_[from] = lived_ + 1;
    send(from, std::move(out));
}

void Node::on_topology_events(const TopologyEventsMsg& m) {
    // The next seq of each author's sub-log this node can chain on: what is
    // durable, then what is on its way to disk. The daemon refuses an event
    // that does not chain on the previous one of its author; so does this.
    std::vector<std::uint64_t> next(versions_.size());
    for (std::size_t a = 0; a < next.size(); ++a) {
        next[a] = versions_[a] + 1;
        const core::TopologyAuthor author{world_.node(a).id(), 1};
        while (learning_.contains(core::TopologyKey{author, next[a]})) ++next[a];
    }
    std::vector<core::TopologyEvent> events = m.events;
    std::sort(events.begin(), events.end(),
              [](const auto& x, const auto& y) { return x.key < y.key; });
    std::vector<core::TopologyEvent> fresh;
    for (const core::TopologyEvent& e : events) {
        if (e.key.author.node == id_) continue;  // its own sub-log comes from itself only
        std::uint64_t& expected = next[world_.index_of(e.key.author.node)];
        if (e.key.seq != expected) continue;  // held already, or it does not chain yet
        if (auto why = topology::check_event(e, world_.members())) {
            world_.report(world_.checkers().invalid_event(*this, *why));
            continue;
        }
        learning_.insert(e.key);
        ++expected;
        fresh.push_back(e);
    }
    if (fresh.empty()) return;
    std::vector<core::TopologyEvent> learned = fresh;
    disk_.write(world_.now(), world_.disk_delay(), TopologyOp{std::move(fresh)},
                [this, events = std::move(learned)] {
                    // Durable here: now the Elector may learn them.
                    for (const core::TopologyEvent& e : events) {
                        learning_.erase(e.key);
                        elector_->learn(e);
                    }
                    advance_versions(events);
                    after_input();
                });
}

void Node::on_fenced(std::size_t from, const FencedMsg& m) {
    if (!master_ || m.epoch <= master_->epoch()) return;
    const std::string why =
        fmt::format("{} refused data of epoch {}: it knows epoch {}",
                    world_.node(from).id().value(), master_->epoch().value(), m.epoch.value());
    trace("steps down: " + why);
    elector_->step_down(why);
}

void Node::advance_versions(const std::vector<core::TopologyEvent>& durable) {
    const auto& held = disk_.durable().topology;
    for (const core::TopologyEvent& e : durable) {
        std::uint64_t& v = versions_[world_.index_of(e.key.author.node)];
        while (held.contains(core::TopologyKey{e.key.author, v + 1})) ++v;
    }
}

bool Node::master_message(std::size_t from, const Message& message) {
    return std::visit(
        [&](const auto& m) -> bool {
            using T = std::decay_t<decltype(m)>;
            if constexpr (is_one_of<T, PositionsMsg, AckMsg, RefusedMsg, ProbeReplyMsg,
                                    FetchReplyMsg>) {
                if (master_ && m.epoch == master_->epoch()) master_->receive(from, m);
                return true;
            } else {
                return false;
            }
        },
        message);
}

bool Node::slave_message(std::size_t from, const Message& message) {
    return std::visit(
        [&](const auto& m) -> bool {
            using T = std::decay_t<decltype(m)>;
            if constexpr (is_one_of<T, SolicitMsg, ReplicateMsg, ProbeMsg, TruncateMsg, FetchMsg,
                                    VisibleMsg>) {
                if (m.epoch < elector_->epoch()) {
                    // Fencing: data of an older epoch is refused, and the sender told.
                    send(from, FencedMsg{elector_->epoch()});
                    return true;
                }
                if (!slave_ || slave_->master != from || slave_->epoch != m.epoch) return true;
                if constexpr (std::is_same_v<T, SolicitMsg>) slave_report();
                if constexpr (std::is_same_v<T, ReplicateMsg>) slave_replicate(m);
                if constexpr (std::is_same_v<T, ProbeMsg>) slave_probe(m);
                if constexpr (std::is_same_v<T, TruncateMsg>) slave_truncate(m);
                if constexpr (std::is_same_v<T, FetchMsg>) slave_fetch(m);
                if constexpr (std::is_same_v<T, VisibleMsg>) slave_visible(m.stream, m.seq);
                return true;
            } else {
                return false;
            }
        },
        message);
}

void Node::forwarded(const ForwardMsg& m) {
    if (master_) (void)master_->publish(m.stream, m.id);
}

bool Node::publish(std::size_t stream, std::uint64_t id) {
    if (!up() || paused_) return false;
    if (master_) return master_->publish(stream, id);
    if (role_.master.empty() || role_.master == id_) return false;
    send(world_.index_of(role_.master), ForwardMsg{stream, id});
    return true;
}

void Node::append(std::size_t stream, std::vector<Entry> entries, Epoch confirmed,
                  std::function<void()> done) {
    Copy& h = head_[stream];
    const Seq first = h.last_seq().next();
    h.entries.insert(h.entries.end(), entries.begin(), entries.end());
    h.confirmed = std::max(h.confirmed, confirmed);
    disk_.write(world_.now(), world_.disk_delay(),
                AppendOp{stream, first, std::move(entries), confirmed}, std::move(done));
}

void Node::truncate(std::size_t stream, Seq after, std::function<void()> done) {
    Copy& h = head_[stream];
    if (after < h.last_seq()) h.entries.resize(after.value());
    disk_.write(world_.now(), world_.disk_delay(), TruncateOp{stream, after},
                [this, stream, after, done = std::move(done)] {
                    // Consumers lose sight of what left the copy, whatever the role now.
                    exposed_[stream] = std::min(exposed_[stream], after);
                    if (done) done();
                });
}

void Node::confirm(std::size_t stream, Epoch epoch, std::function<void()> done) {
    head_[stream].confirmed = epoch;
    disk_.write(world_.now(), world_.disk_delay(),
                ConfirmOp{stream, epoch, head_[stream].last_seq()}, std::move(done));
}

void Node::barrier(std::function<void()> done) {
    disk_.write(world_.now(), 0, BarrierOp{}, std::move(done));
}

std::function<void()> Node::guarded(std::function<void()> fn) {
    return [this, generation = generation_, fn = std::move(fn)] {
        if (generation_ == generation && up()) fn();
    };
}

void Node::note(core::TopologyBody body) {
    elector_->note(std::move(body));
    drain_ready();
}

void Node::expose(std::size_t stream, Seq upto) {
    const Copy& d = durable(stream);
    upto = std::min(upto, d.last_seq());
    while (exposed_[stream] < upto) {
        exposed_[stream] = exposed_[stream].next();
        world_.report(
            world_.checkers().exposed(*this, stream, exposed_[stream], d.at(exposed_[stream])));
    }
}

bool Node::reachable(std::size_t peer) const {
    return last_heard_[peer] != 0 &&
           lived_ + 1 - last_heard_[peer] < world_.options().election_ticks;
}

std::string Node::describe() const {
    if (!up()) return id_.value() + " down";
    std::string out = elector_->describe() + (paused_ ? " (paused)" : "");
    if (!data_) return out;
    for (std::size_t s = 0; s < stream_count; ++s) {
        const Copy& d = durable(s);
        out += fmt::format(" | {} {}/{} c{} {} x{}", stream_name(s), d.last_seq().value(),
                           head_[s].last_seq().value(), d.confirmed.value(),
                           short_hash(d.last_hash()), exposed_[s].value());
    }
    if (master_) out += " | " + master_->state();
    return out;
}

}  // namespace spirit::sim
