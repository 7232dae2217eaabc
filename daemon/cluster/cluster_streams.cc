// Cluster, streams: each stream's lifecycle in `$topology` (created,
// deleted), authored by the master; how far its events have spread
// (topology/spread.h); and the copies a node drops once `$topology` says
// their stream was deleted.
#include <algorithm>

#include <fmt/format.h>

#include "core/stream_name.h"
#include "daemon/cluster/cluster.h"
#include "daemon/log.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

topology::Versions versions_of(const std::vector<proto::TopologyVersion>& versions) {
    topology::Versions out;
    for (const proto::TopologyVersion& v : versions) {
        out[core::TopologyAuthor{core::NodeId(v.node), v.instance}] = v.seq;
    }
    return out;
}

}  // namespace

topology::Versions Cluster::own_versions() const {
    return versions_of(topology_log_->versions());
}

void Cluster::report_spread(const core::NodeId& peer, core::Epoch epoch,
                            const std::vector<proto::TopologyVersion>& versions) {
    spread_.report(peer, epoch, versions_of(versions));
    check_spreading();
    if (master_ && master_->gathering()) master_->topology_advanced();
}

void Cluster::vote_granted(const core::NodeId& peer, const proto::VoteResponse& vote) {
    topology::Versions theirs = versions_of(vote.versions);
    // Ask at once for what the voter holds and this node lacks: as master it
    // completes nothing before it holds that (a heartbeat shows what it has).
    if (!topology::covers(own_versions(), theirs)) {
        // The role's master, as any heartbeat of this node now: an empty one
        // from a master would tell its followers it stepped down.
        links_->send(peer, heartbeat(peer, elector_->epoch(), elector_->role().master));
    }
    spread_.report(peer, vote.epoch, std::move(theirs));
}

bool Cluster::topology_current() const {
    if (!master_) return false;
    return 1 + spread_.covered(own_versions(), master_->epoch()) >= elector_->members().majority();
}

std::optional<core::StreamPolicy> Cluster::stream_policy(const std::string& stream) const {
    if (!elector_) return std::nullopt;
    const auto state = elector_->view().stream(stream);
    if (!state || !state->exists) return std::nullopt;
    return state->policy;
}

bool Cluster::deleting(std::string_view stream) const {
    return std::any_of(spreading_.begin(), spreading_.end(), [&](const Spreading& s) {
        return s.kind == Spreading::Kind::deleted && s.stream == stream;
    });
}

void Cluster::stream_created(const std::string& stream, const core::StreamPolicy& policy,
                             Done done) {
    if (!master_) {
        if (done) done(core::make_error(errc::not_master, "this node is no longer the master"));
        return;
    }
    const auto state = elector_->view().stream(stream);
    if (!done && state && state->exists && state->policy == policy) return;  // said already
    const core::TopologyKey key =
        elector_->note(core::topo::StreamCreated{stream, master_->epoch(), policy});
    spdlog::info("stream {} created in epoch {} ({})", stream, master_->epoch().value(),
                 policy.redundancy == core::Redundancy::immediate ? "immediate" : "eventual");
    spreading_.push_back(Spreading{key, master_->epoch(),
                                   loop_.now_ms() + config_.cluster.ack_timeout_ms, stream,
                                   Spreading::Kind::created, policy, std::move(done)});
    drive();
    check_spreading();
}

void Cluster::delete_stream(const std::string& stream, Done done) {
    if (!master_) {
        return done(core::make_error(errc::not_master, "this node is no longer the master"));
    }
    if (deleting(stream)) {
        return done(core::make_error(
            errc::busy, fmt::format("stream {} is being deleted already; retry to see when it "
                                    "is gone",
                                    stream)));
    }
    const core::TopologyKey key =
        elector_->note(core::topo::StreamDeleted{stream, master_->epoch()});
    spdlog::info("stream {}: deleting it in epoch {}, once a majority of voters hold that", stream,
                 master_->epoch().value());
    spreading_.push_back(Spreading{key,
                                   master_->epoch(),
                                   loop_.now_ms() + config_.cluster.ack_timeout_ms,
                                   stream,
                                   Spreading::Kind::deleted,
                                   {},
                                   std::move(done)});
    drive();
    check_spreading();
}

void Cluster::change_policy(const std::string& stream, const core::StreamPolicy& policy,
                            Done done) {
    if (!master_) {
        return done(core::make_error(errc::not_master, "this node is no longer the master"));
    }
    const core::TopologyKey key =
        elector_->note(core::topo::StreamPolicyChanged{stream, master_->epoch(), policy});
    spdlog::info("stream {}: retention changing in epoch {} to {} events, {} bytes, {} ms", stream,
                 master_->epoch().value(), policy.retention.events_max, policy.retention.bytes_max,
                 policy.retention.age_ms_max);
    spreading_.push_back(Spreading{key, master_->epoch(),
                                   loop_.now_ms() + config_.cluster.ack_timeout_ms, stream,
                                   Spreading::Kind::policy, policy, std::move(done)});
    drive();
    check_spreading();
}

void Cluster::check_spreading() {
    if (spreading_.empty()) return;
    const std::size_t majority = elector_->members().majority();
    const topology::Versions own = own_versions();
    const std::uint64_t now = loop_.now_ms();
    std::vector<Spreading> done;
    std::erase_if(spreading_, [&](Spreading& s) {
        if (!master_ || master_->epoch() != s.epoch) {
            if (s.done) {
                s.done(core::make_error(
                    errc::not_master,
                    fmt::format("node {} stopped being the master of epoch {} before a majority "
                                "of voters held the change of stream {}; it is in $topology and "
                                "may still take effect",
                                self_.value(), s.epoch.value(), s.stream)));
            }
            return true;
        }
        auto it = own.find(s.key.author);
        const bool durable = it != own.end() && it->second >= s.key.seq;
        const std::size_t holding = (durable ? 1 : 0) + spread_.holding(s.key, s.epoch);
        if (holding >= majority) {
            done.push_back(std::move(s));
            return true;
        }
        if (s.done && now >= s.deadline_ms) {
            // The change stays on its way (a delete still happens here once
            // held); the client is told it is not certain yet.
            auto d = std::move(s.done);
            s.done = nullptr;
            d(core::make_error(
                errc::timeout,
                fmt::format("the change of stream {} is in $topology, but {} of {} voters hold it "
                            "after cluster.ack_timeout_ms (a majority is {}); it takes effect "
                            "once a majority does, unless a failover comes first",
                            s.stream, holding, elector_->members().voters(), majority)));
        }
        return false;
    });
    for (Spreading& s : done) {
        switch (s.kind) {
            case Spreading::Kind::created:
                if (s.done) s.done({});
                break;
            case Spreading::Kind::deleted:
                drop_copy(s.stream, std::move(s.done));
                break;
            case Spreading::Kind::policy:
                set_policy(s.stream, s.policy, std::move(s.done));
                break;
        }
    }
}

void Cluster::set_policy(const std::string& stream, const core::StreamPolicy& policy, Done done) {
    std::weak_ptr<bool> alive = alive_;
    auto queued = store_.set_policy(
        stream, policy, [this, alive, stream, policy, done](core::Result<void> r) mutable {
            if (alive.expired() || !*alive.lock()) return;
            if (!r) {
                spdlog::error("stream {}: recording its new policy: {}", stream,
                              r.error().message());
            } else {
                if (master_) master_->policy_changed(stream, policy);
                if (slave_) slave_->policy_changed(stream, policy);
            }
            if (done) done(std::move(r));
        });
    if (!queued) {
        spdlog::error("stream {}: recording its new policy: {}", stream, queued.error().message());
        if (done) done(core::Unexpected{queued.error()});
    }
}

void Cluster::apply_policies() {
    if (witness_) return;
    for (const auto& [name, state] : elector_->view().streams()) {
        if (!state.exists || !state.policy || core::is_system_stream(name)) continue;
        auto info = store_.stream_info(name);
        if (!info || !*info) continue;
        core::StreamPolicy policy = (*info)->policy;
        // Only retention changes; a copy with another redundancy or acks is
        // not of this life of the stream (it goes to quarantine on alignment).
        if (policy.redundancy != state.policy->redundancy || policy.acks != state.policy->acks ||
            policy.retention == state.policy->retention) {
            continue;
        }
        policy.retention = state.policy->retention;
        set_policy(name, policy, nullptr);
    }
}

void Cluster::drop_copy(const std::string& stream, Done done) {
    if (!dropping_.insert(stream).second) {
        if (done) done({});
        return;
    }
    std::weak_ptr<bool> alive = alive_;
    auto queued = store_.delete_stream(stream, [this, alive, stream,
                                                done](core::Result<void> r) mutable {
        if (alive.expired() || !*alive.lock()) return;
        dropping_.erase(stream);
        if (!r && !r.error().is(errc::not_found)) {
            spdlog::error("deleting stream {}: {}", stream, r.error().message());
            if (done) done(core::Unexpected{r.error()});
            return;
        }
        spdlog::info("stream {} deleted here, as $topology says", stream);
        if (done) done({});
    });
    if (!queued) {
        dropping_.erase(stream);
        if (queued.error().is(errc::not_found)) {
            if (done) done({});
            return;
        }
        spdlog::error("deleting stream {}: {}", stream, queued.error().message());
        if (done) done(core::Unexpected{queued.error()});
        return;
    }
    // From the request on the stream does not exist here (an append after it
    // starts a new one): what tracks or follows it goes now, not at the
    // commit, which could come after a new life of the stream began.
    const core::Error why{core::make_error_code(errc::not_found),
                          fmt::format("stream {} was deleted", stream)};
    if (master_) master_->forget(stream, why);
    if (slave_) slave_->forget(stream);
    if (stream_deleted_) stream_deleted_(stream);
}

void Cluster::apply_deletes() {
    // A witness holds no copies; a master past its gather decides itself
    // (a delete it learns now is older than its epoch's completion).
    if (witness_ || (master_ && !master_->gathering())) return;
    for (const auto& [name, state] : elector_->view().streams()) {
        if (state.exists || core::is_system_stream(name)) continue;
        auto info = store_.stream_info(name);
        if (!info || !*info) continue;
        // A copy with events or a confirmation newer than the delete is of a
        // later life of the stream: its master decides about it.
        if ((*info)->last_epoch > state.epoch || (*info)->confirmed_epoch > state.epoch) continue;
        drop_copy(name, nullptr);
    }
}

}  // namespace spirit::daemon
