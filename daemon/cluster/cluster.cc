#include "daemon/cluster/cluster.h"

#include <sodium.h>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/stream_name.h"
#include "daemon/cluster/node_record.h"
#include "daemon/log.h"
#include "daemon/ops/metrics.h"
#include "daemon/visibility.h"
#include "daemon/write_path.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

// The Elector's tick. Heartbeats and timeouts are whole numbers of it.
constexpr std::uint32_t tick_ms = 10;
// Sealed `$topology` events sent to one peer per heartbeat, at most.
constexpr std::size_t anti_entropy_bytes_max = 256 << 10;

core::Error error(errc code, std::string detail) {
    return core::Error{core::make_error_code(code), std::move(detail)};
}

std::uint32_t wire_code(const core::Error& e) {
    return e.code.category() == core::spirit_category()
               ? static_cast<std::uint32_t>(e.code.value())
               : static_cast<std::uint32_t>(errc::internal);
}

std::map<core::NodeId, core::PublicKey> member_keys(const Config& config) {
    std::map<core::NodeId, core::PublicKey> keys;
    for (const Config::Member& m : config.cluster.members) keys[core::NodeId(m.id)] = m.public_key;
    return keys;
}

}  // namespace

Cluster::Cluster(const Config& config, net::Loop& loop, storage::Store& store,
                 Visibility& visibility, const core::Identity& identity)
    : config_(config),
      loop_(loop),
      store_(store),
      visibility_(visibility),
      identity_(identity),
      self_(config.node.id),
      witness_(config.is_witness()) {
    SPIRIT_ASSERT(config_.in_cluster());
    for (const Config::Member& m : config_.cluster.members) {
        if (m.id != self_.value() && m.role == topology::MemberRole::data) {
            data_peers_.push_back(core::NodeId(m.id));
        }
    }
    topology_log_ = std::make_unique<TopologyLog>(TopologyLog::Context{
        store_, identity_, self_, config_.group(), member_keys(config_),
        [this](core::Seq last) { visibility_.advance(std::string(topology_stream), last); }});
    links_ = std::make_unique<PeerLinks>(config_, loop_, *this, [this] { return hello(); });
    forwarder_ = std::make_unique<Forwarder>(
        Forwarder::Context{.self = self_,
                           .store = store_,
                           .links = *links_,
                           .master = [this] { return known_master(); },
                           .epoch = [this] { return epoch(); },
                           .order_here =
                               [this](const PublishRequest& request, PublishReply reply) {
                                   SPIRIT_ASSERT(write_path_ != nullptr);
                                   write_path_->order(request, std::move(reply));
                               }});
}

Cluster::~Cluster() {
    stop();
}

core::Result<core::Epoch> Cluster::epoch_floor() const {
    // Copies confirmed in an epoch, and a role recorded before elections
    // existed, are epochs this node knew: it never votes at or below them.
    core::Epoch floor{0};
    auto role_bytes = store_.node_value(node_key_role);
    if (!role_bytes) return core::Unexpected{role_bytes.error()};
    if (*role_bytes) {
        auto role = decode_role(**role_bytes);
        if (!role) return core::Unexpected{role.error()};
        floor = role->epoch;
    }
    auto streams = store_.list_streams();
    if (!streams) return core::Unexpected{streams.error()};
    for (const storage::StreamInfo& s : *streams) {
        if (!core::is_system_stream(s.name)) floor = std::max(floor, s.confirmed_epoch);
    }
    return floor;
}

core::Result<void> Cluster::start() {
    SPIRIT_ASSERT(write_path_ != nullptr);
    if (identity_.public_key() != config_.self_member().public_key) {
        return core::make_error(
            errc::config_invalid,
            fmt::format("node.key_file {} has public key {}, but this node's [[cluster.members]] "
                        "entry says {}",
                        config_.node.key_file.string(),
                        core::public_key_text(identity_.public_key()),
                        core::public_key_text(config_.self_member().public_key)));
    }
    auto caught_up = store_.node_value(node_key_caught_up);
    if (!caught_up) return core::Unexpected{caught_up.error()};
    auto streams = store_.list_streams();
    if (!streams) return core::Unexpected{streams.error()};
    // Data from before these records existed was written under a master
    // and holds what it acknowledged.
    const bool has_data = std::any_of(streams->begin(), streams->end(), [](const auto& s) {
        return !core::is_system_stream(s.name);
    });
    // A store restored from a backup records 0 (spiritd --restore): its copies
    // may lack what this node held since, so they count once caught up again.
    const bool restored =
        *caught_up && (*caught_up)->size() == 1 && (**caught_up)[0] == std::byte{0};
    freshness_ = !restored && (*caught_up || has_data) ? topology::CopyFreshness::caught_up
                                                       : topology::CopyFreshness::fresh;
    auto events = topology_log_->load();
    if (!events) return core::Unexpected{events.error()};
    auto floor = epoch_floor();
    if (!floor) return core::Unexpected{floor.error()};
    std::uint64_t seed = 0;
    randombytes_buf(&seed, sizeof seed);
    ticks_per_heartbeat_ = std::max<std::uint32_t>(1, config_.cluster.heartbeat_ms / tick_ms);
    elector_ = std::make_unique<topology::Elector>(
        topology::ElectorOptions{
            .self = self_,
            .members = config_.group(),
            .author = topology_log_->author(),
            .heartbeat_ticks = ticks_per_heartbeat_,
            .election_ticks = std::max<std::uint64_t>(
                ticks_per_heartbeat_ + 1, config_.cluster.election_timeout_ms / tick_ms),
            .seed = seed,
            .epoch_floor = *floor},
        *events);
    forwarder_->start();
    SPIRIT_TRY(links_->start());
    ticker_ = std::make_unique<net::Timer>(loop_);
    ticker_->start(tick_ms, tick_ms, [this] { on_tick(); });
    spdlog::info(
        "cluster {}: node {} ({}), {}; {} $topology events, epoch {}", config_.cluster.name,
        self_.value(), witness_ ? "witness" : "data",
        freshness_ == topology::CopyFreshness::fresh ? "a fresh data dir" : "copies caught up",
        events->size(), elector_->epoch().value());
    drive();
    // Changes learnt before a crash that this copy did not act on.
    apply_deletes();
    apply_policies();
    return {};
}

void Cluster::begin_stop(std::function<void()> wake) {
    if (stopped_ || stopping_) return;
    stopping_ = true;
    wake_ = std::move(wake);
    if (master_) {
        spdlog::info("stopping: the master orders no more forwards and waits for its replicas");
    }
}

bool Cluster::drained() const {
    if (stopped_) return true;
    if (forwards_ordered_ > 0 || forwarder_->in_flight() > 0) return false;
    if (!master_) return true;
    return std::all_of(data_peers_.begin(), data_peers_.end(), [&](const core::NodeId& peer) {
        return !links_->linked(peer) || master_->lag_events(peer) == 0;
    });
}

void Cluster::stop() {
    if (stopped_) return;
    stopped_ = true;
    *alive_ = false;
    if (ticker_) ticker_->stop();
    const core::Error why = error(errc::shutting_down, "the daemon is shutting down");
    if (master_) master_->abandon(why);
    master_.reset();
    slave_.reset();
    forwarder_->stop();
    links_->stop();
}

core::Epoch Cluster::epoch() const {
    return elector_ ? elector_->epoch() : core::Epoch{0};
}

std::optional<core::NodeId> Cluster::known_master() const {
    if (!elector_) return std::nullopt;
    if (master_) return self_;
    const topology::Role role = elector_->role();
    if (role.master.empty() || role.master == self_) return std::nullopt;
    return role.master;
}

std::optional<std::uint64_t> Cluster::master_contact_ms() const {
    if (master_) return 0;
    const auto m = known_master();
    if (!m || !last_master_ || last_master_->master != *m) return std::nullopt;
    const std::uint64_t now = loop_.now_ms();
    return now > master_heard_ms_ ? now - master_heard_ms_ : 0;
}

proto::PeerHello Cluster::hello() const {
    const topology::Role role = elector_ ? elector_->role() : topology::Role{};
    return proto::PeerHello{proto::peer_version, config_.cluster.name,
                            self_.value(),       role.epoch,
                            role.master.value(), freshness_ == topology::CopyFreshness::fresh};
}

proto::Heartbeat Cluster::heartbeat(const core::NodeId& peer, core::Epoch epoch,
                                    const core::NodeId& master) const {
    return proto::Heartbeat{epoch, master.value(), master_ && master_->caught_up(peer),
                            topology_log_->versions()};
}

void Cluster::send_election(const topology::Outgoing& out) {
    std::visit(
        [&](const auto& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, topology::Heartbeat>) {
                links_->send(out.to, heartbeat(out.to, m.epoch, m.master));
            } else if constexpr (std::is_same_v<T, topology::VoteRequest>) {
                links_->send(out.to, proto::VoteRequest{m.epoch, m.pre, m.forced});
            } else if constexpr (std::is_same_v<T, topology::VoteResponse>) {
                // A vote says what the voter holds of `$topology` (topology/spread.h).
                links_->send(out.to,
                             proto::VoteResponse{m.epoch, m.pre, m.granted, m.known,
                                                 m.granted && !m.pre
                                                     ? topology_log_->versions()
                                                     : std::vector<proto::TopologyVersion>{}});
            } else if constexpr (std::is_same_v<T, topology::TimeoutNow>) {
                links_->send(out.to, proto::TimeoutNow{m.epoch});
            }
        },
        out.message);
}

void Cluster::drive() {
    if (stopped_ || !elector_ || driving_) return;
    driving_ = true;
    while (elector_->has_ready()) {
        topology::Ready ready = elector_->take_ready();
        for (const topology::ElectionNote& note : ready.notes) count(note);
        for (const topology::Outgoing& out : ready.send_now) send_election(out);
        if (ready.events.empty()) {
            for (const topology::Outgoing& out : ready.send_after) send_election(out);
            elector_->persisted(ready.id);
            continue;
        }
        std::weak_ptr<bool> alive = alive_;
        topology_log_->append_own(std::move(ready.events), [this, alive, id = ready.id,
                                                            after = std::move(ready.send_after)] {
            if (alive.expired() || !*alive.lock()) return;
            for (const topology::Outgoing& out : after) send_election(out);
            elector_->persisted(id);
            drive();
            check_spreading();  // this node's own stream changes are durable now
        });
    }
    driving_ = false;
    apply_role();
}

void Cluster::count(const topology::ElectionNote& note) {
    using Kind = topology::ElectionNote::Kind;
    if (metrics_ == nullptr) return;
    switch (note.kind) {
        case Kind::pre_vote_started:
            return metrics_->pre_vote_started();
        case Kind::campaign_started:
            return metrics_->election_started();
        case Kind::won:
            return metrics_->election_won();
        case Kind::stepped_down:
            return metrics_->stepped_down(note.cause);
    }
}

void Cluster::observe_master(const topology::Role& role) {
    if (role.master.empty()) return;  // none known: a failover's clock runs on
    if (last_master_ && last_master_->epoch == role.epoch && last_master_->master == role.master) {
        return;
    }
    const std::uint64_t now = loop_.now_ms();
    // The first master known after start is no change: this node had none.
    if (last_master_ && metrics_ != nullptr) {
        std::optional<double> took;
        if (master_heard_) {
            took = static_cast<double>(now - std::min(now, master_heard_ms_)) / 1000.0;
        }
        metrics_->master_changed(took);
    }
    last_master_ = role;
    master_heard_ms_ = now;
    master_heard_ = role.master == self_;
}

void Cluster::apply_role() {
    if (stopped_) return;
    const topology::Role role = elector_->role();
    observe_master(role);
    if (witness_) return;
    const bool master_now = role.master == self_;
    if (master_now && master_ && master_->epoch() != role.epoch) step_down_master(role);
    if (master_now && !master_) return become_master(role.epoch);
    if (!master_now && master_) step_down_master(role);
    if (master_now) return;
    if (role.master.empty()) {
        slave_.reset();  // no master to follow yet
        return;
    }
    if (!slave_ || slave_->epoch() != role.epoch || slave_->master() != role.master) {
        follow(role.epoch, role.master);
    }
}

void Cluster::follow(core::Epoch epoch, const core::NodeId& master) {
    ++follows_;
    master_caught_up_ = false;
    spdlog::info("following {} as master of epoch {}", master.value(), epoch.value());
    slave_ = std::make_unique<Slave>(
        Slave::Context{.config = config_,
                       .loop = loop_,
                       .store = store_,
                       .links = *links_,
                       .visibility = visibility_,
                       .freshness = [this] { return freshness_; },
                       .record = [this](core::TopologyBody body) { record(std::move(body)); }},
        epoch, master);
    if (links_->linked(master)) {
        slave_->master_linked();
        forwarder_->master_reachable();
    }
}

void Cluster::become_master(core::Epoch epoch) {
    spdlog::info("node {} is the master of epoch {}", self_.value(), epoch.value());
    slave_.reset();
    master_ = std::make_unique<Master>(
        Master::Context{
            .config = config_,
            .loop = loop_,
            .store = store_,
            .links = *links_,
            .visibility = visibility_,
            .self = self_,
            .replicas = data_peers_,
            .freshness = freshness_,
            .caught_up = [this] { record_caught_up(); },
            .record = [this](core::TopologyBody body) { record(std::move(body)); },
            .announce =
                [this](const core::NodeId& peer) {
                    const topology::Role role = elector_->role();
                    links_->send(peer, heartbeat(peer, role.epoch, role.master));
                },
            .topology_current = [this] { return topology_current(); },
            .stream_state =
                [this](const std::string& stream) { return elector_->view().stream(stream); }},
        epoch);
    master_->start();
    forwarder_->master_reachable();  // its outbox drains into its own write path
}

void Cluster::step_down_master(const topology::Role& role) {
    const std::string next = role.master.empty() ? "not elected yet" : role.master.value();
    spdlog::warn("node {} is no longer the master of epoch {}: epoch {} has master {}",
                 self_.value(), master_->epoch().value(), role.epoch.value(), next);
    master_->abandon(
        error(errc::not_master, fmt::format("node {} stepped down: epoch {} has master {}",
                                            self_.value(), role.epoch.value(), next)));
    master_.reset();
    master_heard_ms_ = loop_.now_ms();  // the failover, if another follows, starts now
    master_heard_ = true;
    check_spreading();  // its changes on their way fail: it is not the master any more
}

void Cluster::step_down(const std::string& reason) {
    if (!elector_) return;
    elector_->step_down(reason);
    drive();
}

void Cluster::record(core::TopologyBody body) {
    if (stopped_ || !elector_) return;
    elector_->note(std::move(body));
    drive();
}

void Cluster::record_caught_up() {
    freshness_ = topology::CopyFreshness::caught_up;
    auto queued = store_.put_node_value(node_key_caught_up, core::Bytes{std::byte{1}},
                                        [](core::Result<void> r) {
                                            if (!r) {
                                                spdlog::warn(
                                                    "recording that the copies caught "
                                                    "up: {}",
                                                    r.error().message());
                                            }
                                        });
    if (!queued) spdlog::warn("recording that the copies caught up: {}", queued.error().message());
    spdlog::info("this node's copies have caught up: they count in completions from now on");
}

void Cluster::designate(const core::NodeId& master, bool force,
                        std::function<void(core::Result<void>)> done) {
    if (!config_.group().contains(master)) {
        return done(core::Unexpected{
            error(errc::invalid_argument,
                  fmt::format("{} is not a node of this cluster", master.value()))});
    }
    if (!config_.group().is_data(master)) {
        return done(core::Unexpected{
            error(errc::invalid_argument,
                  fmt::format("{} is a witness: it holds no data, so it cannot be master",
                              master.value()))});
    }
    if (master == self_ && freshness_ == topology::CopyFreshness::fresh && !force) {
        // Its completion could not count its own copy: it would wait on others.
        return done(core::Unexpected{
            error(errc::unavailable,
                  fmt::format("node {} has not caught up since its data dir was made; it takes the "
                              "master's role once spirit status no longer says \"not caught up\" "
                              "(or with --force)",
                              self_.value()))});
    }
    if (master != self_ && !links_->linked(master)) {
        return done(core::Unexpected{error(
            errc::unavailable, fmt::format("node {} cannot reach {}; ask a node that can, or {} "
                                           "itself",
                                           self_.value(), master.value(), master.value()))});
    }
    spdlog::warn("an operator asked that {} become master (a leadership transfer)", master.value());
    if (master != self_ && force) {
        return done(core::Unexpected{
            error(errc::invalid_argument,
                  fmt::format("--force is decided by the target: ask {} itself", master.value()))});
    }
    elector_->transfer(master);
    drive();
    done({});
}

void Cluster::on_tick() {
    if (stopped_) return;
    if (master_ && master_->own_commit_failed()) step_down(*master_->own_commit_failed());
    elector_->tick();
    drive();
    if (++ticks_ % ticks_per_heartbeat_ == 0) heartbeat_tick();
}

void Cluster::heartbeat_tick() {
    links_->check_timeouts();
    check_spreading();
    topology_log_->tick();
    if (master_) master_->tick();
    if (slave_) slave_->tick();
    forwarder_->tick();
    if (stopping_ && wake_) wake_();
}

void Cluster::link_up(const core::NodeId& peer, const proto::PeerHello& hello) {
    const std::uint64_t followed = follows_;
    elector_->heard(peer);
    elector_->step(peer, topology::Heartbeat{hello.epoch, core::NodeId(hello.master)});
    drive();
    const topology::Role role = elector_->role();
    links_->send(peer, heartbeat(peer, elector_->epoch(), role.master));
    if (master_) master_->link_up(peer);
    // A Slave made just now (drive) reported its positions already.
    if (slave_ && follows_ == followed && slave_->master() == peer) {
        slave_->master_linked();
        forwarder_->master_reachable();
    }
}

void Cluster::link_down(const core::NodeId& peer, std::string_view why) {
    if (master_) master_->link_down(peer);
    if (slave_ && slave_->master() == peer) slave_->master_unlinked();
    forwarder_->peer_lost(peer, why);
}

void Cluster::on_writable(const core::NodeId& peer) {
    if (master_) master_->on_writable(peer);
}

bool Cluster::stale(const core::NodeId& peer, core::Epoch epoch) {
    const core::Epoch known = elector_->epoch();
    if (epoch >= known) return false;
    spdlog::debug("refused data of epoch {} from {}: this node knows epoch {}", epoch.value(),
                  peer.value(), known.value());
    links_->send(peer, heartbeat(peer, known, elector_->role().master));
    return true;
}

bool Cluster::from_master(const core::NodeId& peer, core::Epoch epoch) {
    if (stale(peer, epoch)) return false;
    return slave_ && slave_->master() == peer && slave_->epoch() == epoch;
}

void Cluster::on_heartbeat(const core::NodeId& peer, const proto::Heartbeat& h) {
    elector_->step(peer, topology::Heartbeat{h.epoch, core::NodeId(h.master)});
    drive();
    if (slave_ && slave_->master() == peer) master_caught_up_ = h.caught_up;
    if (h.caught_up && slave_ && slave_->master() == peer &&
        freshness_ == topology::CopyFreshness::fresh) {
        record_caught_up();
    }
    auto missing = topology_log_->missing_for(h.versions, anti_entropy_bytes_max);
    if (!missing.empty()) links_->send(peer, proto::TopologyEvents{std::move(missing)});
    report_spread(peer, h.epoch, h.versions);
}

void Cluster::on_message(const core::NodeId& peer, proto::Message& message) {
    if (stopped_) return;
    receive(peer, message);
    if (stopping_ && wake_) wake_();  // an ack may have drained it
}

void Cluster::receive(const core::NodeId& peer, proto::Message& message) {
    elector_->heard(peer);
    if (last_master_ && last_master_->master == peer && elector_->role() == *last_master_) {
        master_heard_ms_ = loop_.now_ms();
        master_heard_ = true;
    }
    if (auto* h = std::get_if<proto::Heartbeat>(&message)) return on_heartbeat(peer, *h);
    if (auto* r = std::get_if<proto::VoteRequest>(&message)) {
        elector_->step(peer, topology::VoteRequest{r->epoch, r->pre, r->forced});
        return drive();
    }
    if (auto* r = std::get_if<proto::VoteResponse>(&message)) {
        if (r->granted && !r->pre) vote_granted(peer, *r);
        elector_->step(peer, topology::VoteResponse{r->epoch, r->pre, r->granted, r->known});
        return drive();
    }
    if (auto* t = std::get_if<proto::TimeoutNow>(&message)) {
        if (freshness_ == topology::CopyFreshness::fresh) {
            spdlog::warn(
                "{} asked this node to stand for election, but its copies have not "
                "caught up since its data dir was made: it does not",
                peer.value());
            return;
        }
        elector_->step(peer, topology::TimeoutNow{t->epoch});
        return drive();
    }
    if (auto* t = std::get_if<proto::TopologyEvents>(&message)) {
        std::weak_ptr<bool> alive = alive_;
        topology_log_->accept(peer, t->events, [this, alive](const core::TopologyEvent& e) {
            if (alive.expired() || !*alive.lock()) return;
            elector_->learn(e);
            drive();
            if (std::holds_alternative<core::topo::StreamDeleted>(e.body)) apply_deletes();
            if (std::holds_alternative<core::topo::StreamPolicyChanged>(e.body)) {
                apply_policies();
            }
            if (master_ && master_->gathering()) master_->topology_advanced();
        });
        return;
    }
    if (witness_) return;  // a witness holds no data: it neither replicates nor forwards
    dispatch(peer, message);
}

void Cluster::dispatch(const core::NodeId& peer, proto::Message& message) {
    std::visit(
        [&](auto& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, proto::Replicate> || std::is_same_v<T, proto::Probe> ||
                          std::is_same_v<T, proto::Truncate> || std::is_same_v<T, proto::Fetch> ||
                          std::is_same_v<T, proto::Visible>) {
                if (!from_master(peer, m.epoch)) return;
                if constexpr (std::is_same_v<T, proto::Visible>) slave_->on_visible(m);
                if constexpr (std::is_same_v<T, proto::Replicate>) slave_->on_replicate(m);
                if constexpr (std::is_same_v<T, proto::Probe>) slave_->on_probe(m);
                if constexpr (std::is_same_v<T, proto::Truncate>) slave_->on_truncate(m);
                if constexpr (std::is_same_v<T, proto::Fetch>) slave_->on_fetch(m);
            } else if constexpr (std::is_same_v<T, proto::Positions> ||
                                 std::is_same_v<T, proto::ReplicaAck> ||
                                 std::is_same_v<T, proto::ReplicaRefused> ||
                                 std::is_same_v<T, proto::ProbeReply> ||
                                 std::is_same_v<T, proto::FetchReply>) {
                if (stale(peer, m.epoch) || !master_ || master_->epoch() != m.epoch) return;
                if constexpr (std::is_same_v<T, proto::Positions>) master_->on_positions(peer, m);
                if constexpr (std::is_same_v<T, proto::ReplicaAck>) master_->on_ack(peer, m);
                if constexpr (std::is_same_v<T, proto::ReplicaRefused>) {
                    master_->on_refused(peer, m);
                }
                if constexpr (std::is_same_v<T, proto::ProbeReply>) {
                    master_->on_probe_reply(peer, m);
                }
                if constexpr (std::is_same_v<T, proto::FetchReply>) {
                    master_->on_fetch_reply(peer, m);
                }
            } else if constexpr (std::is_same_v<T, proto::Forward>) {
                on_forward(peer, m);
            } else if constexpr (std::is_same_v<T, proto::ForwardAck>) {
                stale(peer, m.epoch);
                forwarder_->on_reply(peer, m.ack.request_id, m.ack);
            } else if constexpr (std::is_same_v<T, proto::ForwardError>) {
                stale(peer, m.epoch);
                forwarder_->on_reply(
                    peer, m.request_id,
                    core::Unexpected{core::Error{
                        std::error_code(static_cast<int>(m.code), core::spirit_category()),
                        m.message}});
            }
        },
        message);
}

void Cluster::on_forward(const core::NodeId& peer, const proto::Forward& forward) {
    // A forward is a client's publish: its sender's epoch only tells whether
    // the sender should hear of a newer role.
    stale(peer, forward.epoch);
    const std::uint64_t request = forward.request_id;
    if (!master_) {
        const auto m = known_master();
        return (void)links_->send(
            peer,
            proto::ForwardError{
                epoch(), request, static_cast<std::uint32_t>(errc::not_master),
                fmt::format("node {} is not the master (the master of epoch "
                            "{} is {})",
                            self_.value(), epoch().value(), m ? m->value() : "not known yet")});
    }
    if (stopping_) return;  // not ordered: the links' close answers it (begin_stop)
    std::weak_ptr<bool> alive = alive_;
    ++forwards_ordered_;
    write_path_->order(PublishRequest{forward.stream, forward.expected_last_seq, forward.events},
                       [this, alive, peer, request](core::Result<proto::PublishAck> r) {
                           if (alive.expired() || !*alive.lock()) return;
                           --forwards_ordered_;
                           if (stopping_ && wake_) wake_();
                           if (r) {
                               r->request_id = request;
                               links_->send(peer, proto::ForwardAck{epoch(), std::move(*r)});
                           } else {
                               links_->send(
                                   peer, proto::ForwardError{epoch(), request, wire_code(r.error()),
                                                             r.error().detail});
                           }
                       });
}

std::string Cluster::role_name() const {
    if (witness_) return "witness";
    if (master_) return "master";
    if (!elector_ || elector_->role().master.empty()) return "electing";
    return "slave";
}

std::string Cluster::state() const {
    if (master_) return master_->state();
    const topology::Role role = elector_ ? elector_->role() : topology::Role{};
    if (role.master.empty()) {
        return fmt::format("no master of epoch {} known; {}", role.epoch.value(),
                           elector_ ? topology::elector_state_name(elector_->state()) : "starting");
    }
    if (witness_) return "voting; the master is " + role.master.value();
    std::string text = links_->linked(role.master)
                           ? "following " + role.master.value()
                           : "the master " + role.master.value() + " is unreachable";
    if (freshness_ == topology::CopyFreshness::fresh) {
        text += "; not caught up since its data dir was made";
    }
    return text;
}

std::vector<proto::PeerStatus> Cluster::peer_status() const {
    std::vector<proto::PeerStatus> out;
    const auto m = known_master();
    for (const Config::Peer& p : config_.cluster.peers) {
        const core::NodeId peer(p.id);
        proto::PeerStatus s;
        s.node_id = p.id;
        s.connected = links_->linked(peer);
        if (master_) s.lag_events = master_->lag_events(peer);
        const std::string state = links_->state(peer);
        s.detail = m && *m == peer ? "master; " + state : state;
        if (!config_.group().is_data(peer)) s.detail = "witness; " + s.detail;
        out.push_back(std::move(s));
    }
    return out;
}

std::vector<proto::ReplicationError> Cluster::errors() const {
    if (master_) return master_->errors();
    if (slave_) return slave_->errors();
    return {};
}

}  // namespace spirit::daemon
