#include "daemon/write_path.h"

#include <fmt/format.h>

#include "core/assert.h"
#include "core/hash_chain.h"
#include "daemon/cluster/cluster.h"
#include "daemon/log.h"
#include "daemon/visibility.h"
#include "topology/quorum.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

WritePath::WritePath(const Config& config, storage::Store& store, Visibility& visibility,
                     Cluster* cluster)
    : config_(config), store_(store), visibility_(visibility), cluster_(cluster) {}

std::optional<core::StreamPolicy> WritePath::policy_of(std::string_view stream) const {
    auto info = store_.stream_info(stream);
    if (info && *info) return (*info)->policy;
    // No copy here yet: the policy every node agrees on through `$topology`.
    if (cluster_ != nullptr) return cluster_->stream_policy(std::string(stream));
    return std::nullopt;
}

core::Seq WritePath::initial_visible(const std::string& stream) const {
    auto info = store_.stream_info(stream);
    if (!info || !*info) return core::Seq{0};
    // In a cluster an immediate stream is shown only as far as the master
    // knows enough verified copies hold it: after a start nothing, until its
    // master checked the copies (a slave learns it when its copy is aligned).
    if (cluster_ != nullptr && (*info)->policy.redundancy == core::Redundancy::immediate) {
        return core::Seq{0};
    }
    return (*info)->last_seq;
}

void WritePath::publish(const PublishRequest& request, PublishReply reply) {
    if (cluster_ != nullptr && cluster_->is_witness()) {
        // A witness holds no data streams: publish to a data node.
        return reply(core::Unexpected{not_here()});
    }
    if (cluster_ != nullptr && !cluster_->is_master()) {
        // A slave orders nothing itself: the master does, or the outbox keeps it.
        return cluster_->forwarder().forward(request, policy_of(request.stream), std::move(reply));
    }
    order(request, std::move(reply));
}

void WritePath::order(const PublishRequest& request, PublishReply reply) {
    if (cluster_ == nullptr) return append(request, std::move(reply));
    Master* master = cluster_->master();
    if (master == nullptr) {
        const auto m = cluster_->known_master();
        return reply(core::Unexpected{
            core::Error{core::make_error_code(errc::not_master),
                        fmt::format("node {} is not the master (the master of epoch {} is {})",
                                    cluster_->self().value(), cluster_->epoch().value(),
                                    m ? m->value() : "not known yet")}});
    }
    const std::string stream(request.stream);
    if (cluster_->deleting(stream)) {
        return reply(core::make_error(
            errc::busy, fmt::format("stream {} is being deleted; publish again once it is gone "
                                    "(a new stream of that name starts at seq 1)",
                                    stream)));
    }
    if (master->writable(stream)) return append(request, std::move(reply));
    // Completing: wait, owning the events, until the stream takes writes.
    auto owned = std::make_shared<OwnedPublish>(OwnedPublish::copy(request, false));
    master->when_writable(stream, [this, owned,
                                   reply = std::move(reply)](core::Result<void> ready) mutable {
        if (!ready) return reply(core::Unexpected{ready.error()});
        const auto drafts = owned->drafts();
        append(PublishRequest{owned->stream, owned->expected_last_seq, drafts}, std::move(reply));
    });
}

core::Error WritePath::not_here() const {
    SPIRIT_ASSERT(cluster_ != nullptr);
    if (const auto m = cluster_->known_master()) {
        return core::Error{
            core::make_error_code(errc::not_master),
            fmt::format("node {} is not the master; the master of epoch {} is {}",
                        cluster_->self().value(), cluster_->epoch().value(), m->value())};
    }
    return core::Error{core::make_error_code(errc::unavailable),
                       fmt::format("no master is known to node {} now ({}); retry",
                                   cluster_->self().value(), cluster_->state())};
}

core::Epoch WritePath::epoch_for(const std::optional<storage::StreamInfo>& info) const {
    if (cluster_ != nullptr) {
        const Master* master = cluster_->master();
        return master != nullptr ? master->epoch() : cluster_->epoch();
    }
    // Alone, a node continues in the epoch its copy was last confirmed in.
    if (!info) return core::Epoch{1};
    return std::max({core::Epoch{1}, info->confirmed_epoch, info->last_epoch});
}

void WritePath::append(const PublishRequest& request, PublishReply reply) {
    auto info = store_.stream_info(request.stream);
    if (!info) return reply(core::Unexpected{info.error()});
    std::optional<core::StreamPolicy> agreed;
    if (!*info && cluster_ != nullptr)
        agreed = cluster_->stream_policy(std::string(request.stream));
    const core::StreamPolicy policy =
        *info ? (*info)->policy : agreed.value_or(config_.policy_for(request.stream));
    storage::AppendRequest append{.stream = request.stream,
                                  .events = request.events,
                                  .expected_last_seq = request.expected_last_seq,
                                  .epoch = epoch_for(*info),
                                  .create = storage::CreateMode::if_missing,
                                  .policy = policy};
    // A master sends an immediate stream's events to its replicas as soon
    // as they are sealed, in parallel with its own commit.
    Master* master = cluster_ != nullptr ? cluster_->master() : nullptr;
    // A first publish creates the stream: `$topology` records it with its policy.
    if (master != nullptr && !*info) {
        cluster_->stream_created(std::string(request.stream), policy, nullptr);
    }
    storage::Sealed sealed;
    if (master != nullptr && policy.redundancy == core::Redundancy::immediate) {
        append.sealed = &sealed;
    }
    auto shared = std::make_shared<PublishReply>(std::move(reply));
    auto queued =
        store_.append(append, [this, stream = std::string(request.stream), policy,
                               shared](core::Result<storage::AppendResult> result) mutable {
            if (!result) {
                if (result.error().is(errc::storage_full) || result.error().is(errc::storage_io) ||
                    result.error().is(errc::storage_failed)) {
                    spdlog::error("publish to {} failed: {}", stream, result.error().message());
                    // A master must not order with a copy shorter than its
                    // slaves may hold: another node takes over.
                    if (cluster_ != nullptr && cluster_->is_master()) {
                        cluster_->step_down("its own commit failed: " + result.error().message());
                    }
                }
                return (*shared)(core::Unexpected{std::move(result).error()});
            }
            committed(stream, policy, std::move(*result), std::move(*shared));
        });
    if (!queued) return (*shared)(core::Unexpected{std::move(queued).error()});
    if (append.sealed != nullptr) master->sealed(std::string(request.stream), std::move(sealed));
}

void WritePath::committed(const std::string& stream, const core::StreamPolicy& policy,
                          storage::AppendResult result, PublishReply reply) {
    proto::PublishAck ack;
    ack.kind = proto::AckKind::durable;
    ack.first_seq = result.first_seq;
    ack.last_seq = result.last_seq;
    ack.epoch = result.epoch;
    ack.timestamp_ns = result.timestamp_ns;
    ack.last_hash = result.last_hash;
    core::Seq highest = result.last_seq;
    ack.duplicates.reserve(result.duplicates.size());
    for (const storage::Duplicate& d : result.duplicates) {
        ack.duplicates.push_back(proto::Duplicate{d.index, d.seq});
        highest = std::max(highest, d.seq);
    }
    Master* master = cluster_ != nullptr ? cluster_->master() : nullptr;
    if (master != nullptr && result.stored > 0) {
        master->committed(stream, policy, result.last_seq, result.last_hash);
    }
    if (master != nullptr && policy.redundancy == core::Redundancy::immediate) {
        // Acknowledged once enough verified copies are durable, never before;
        // the master's watermark also makes them visible.
        const std::size_t copies = topology::copies_required(policy, cluster_->group_size());
        return master->await_copies(stream, highest, copies,
                                    [ack = std::move(ack), reply = std::move(reply)](
                                        core::Result<std::vector<core::NodeId>> holders) mutable {
                                        if (!holders)
                                            return reply(core::Unexpected{holders.error()});
                                        ack.kind = proto::AckKind::replicated;
                                        for (const core::NodeId& n : *holders)
                                            ack.holders.push_back(n.value());
                                        reply(std::move(ack));
                                    });
    }
    if (cluster_ != nullptr && master == nullptr) {
        // It stepped down meanwhile: durable here, but not ordered by a master.
        // The client is told where to retry (the ids make a retry harmless).
        const auto m = cluster_->known_master();
        return reply(core::Unexpected{core::Error{
            core::make_error_code(errc::not_master),
            fmt::format("node {} stepped down before the events of {} were acknowledged (the "
                        "master of epoch {} is {}); they are stored here and go to quarantine "
                        "if the new master does not hold them",
                        cluster_->self().value(), stream, cluster_->epoch().value(),
                        m ? m->value() : "not known yet")}});
    }
    // Eventual (or alone): durable here is the promise; consumers may see it.
    if (result.stored > 0) visibility_.advance(stream, result.last_seq);
    ack.holders.push_back(config_.node.id);
    reply(std::move(ack));
}

void WritePath::create_stream(const std::string& stream, const core::StreamPolicy& policy,
                              std::function<void(core::Result<void>)> done) {
    auto create = [this, stream, policy, done]() mutable {
        if (cluster_ != nullptr && cluster_->deleting(stream)) {
            return done(core::make_error(
                errc::busy, fmt::format("stream {} is being deleted; create it again once it "
                                        "is gone",
                                        stream)));
        }
        auto queued = store_.create_stream(
            stream, policy, [this, stream, policy, done](core::Result<void> r) mutable {
                if (!r) return done(std::move(r));
                visibility_.advance(stream, core::Seq{0});
                Master* m = cluster_ ? cluster_->master() : nullptr;
                if (m == nullptr) return done(std::move(r));
                m->committed(stream, policy, core::Seq{0}, core::genesis_hash);
                cluster_->stream_created(stream, policy, std::move(done));
            });
        if (!queued) done(core::Unexpected{queued.error()});
    };
    when_master_writable(stream, done, std::move(create));
}

void WritePath::when_master_writable(const std::string& stream,
                                     const std::function<void(core::Result<void>)>& done,
                                     std::function<void()> act) {
    if (cluster_ == nullptr) return act();
    Master* master = cluster_->master();
    if (master == nullptr) return done(core::Unexpected{not_here()});
    master->when_writable(stream, [act = std::move(act), done](core::Result<void> ready) {
        if (!ready) return done(core::Unexpected{ready.error()});
        act();
    });
}

core::Result<storage::StreamInfo> WritePath::existing(const std::string& stream) const {
    auto info = store_.stream_info(stream);
    if (!info) return core::Unexpected{info.error()};
    if (!*info) {
        return core::make_error(errc::not_found, fmt::format("stream {} does not exist", stream));
    }
    return std::move(**info);
}

namespace {

// Why `stream` may not go from `now` to `next`: a change of anything but
// its retention (a completion relies on the redundancy and acks its
// history was written with).
std::optional<core::Error> policy_change_refused(const std::string& stream,
                                                 const core::StreamPolicy& now,
                                                 const core::StreamPolicy& next) {
    if (now.redundancy == next.redundancy && now.acks == next.acks) return std::nullopt;
    return core::Error{core::make_error_code(errc::invalid_argument),
                       fmt::format("stream {}: only its retention can change; its redundancy and "
                                   "acks are those its events were acknowledged with (create "
                                   "another stream for others)",
                                   stream)};
}

}  // namespace

void WritePath::alter_stream(const std::string& stream, const core::StreamPolicy& policy,
                             std::function<void(core::Result<void>)> done) {
    when_master_writable(stream, done, [this, stream, policy, done]() mutable {
        auto info = existing(stream);
        if (!info) return done(core::Unexpected{info.error()});
        if (auto refused = policy_change_refused(stream, info->policy, policy)) {
            return done(core::Unexpected{*refused});
        }
        if (cluster_ != nullptr) return cluster_->change_policy(stream, policy, std::move(done));
        auto queued = store_.set_policy(stream, policy, done);
        if (!queued) done(core::Unexpected{queued.error()});
    });
}

void WritePath::delete_stream(const std::string& stream,
                              std::function<void(core::Result<void>)> done,
                              std::function<void()> deleted) {
    if (cluster_ == nullptr) {
        auto queued = store_.delete_stream(stream, done);
        if (!queued) return done(core::Unexpected{queued.error()});
        return deleted();
    }
    when_master_writable(stream, done, [this, stream, done]() mutable {
        if (auto info = existing(stream); !info) return done(core::Unexpected{info.error()});
        // The copy goes, and subscribers hear of it, through the Cluster.
        cluster_->delete_stream(stream, std::move(done));
    });
}

}  // namespace spirit::daemon
