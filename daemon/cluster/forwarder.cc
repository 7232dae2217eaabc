#include "daemon/cluster/forwarder.h"

#include <sodium.h>

#include <fmt/format.h>

#include "core/assert.h"
#include "daemon/cluster/peer_links.h"
#include "daemon/log.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

core::Error error(errc code, std::string detail) {
    return core::Error{core::make_error_code(code), std::move(detail)};
}

// The master could not take it now; the entry stays and is sent again.
bool transient(const core::Error& e) {
    return e.is(errc::overloaded) || e.is(errc::shutting_down) || e.is(errc::timeout) ||
           e.is(errc::not_master) || e.is(errc::unavailable) || e.is(errc::storage_full) ||
           e.is(errc::storage_io) || e.is(errc::storage_failed) || e.is(errc::connection_lost);
}

}  // namespace

OwnedPublish OwnedPublish::copy(const PublishRequest& request, bool ids) {
    OwnedPublish out;
    out.stream = std::string(request.stream);
    out.expected_last_seq = request.expected_last_seq;
    out.events.reserve(request.events.size());
    for (const core::EventDraft& e : request.events) {
        storage::OutboxEntry::Event owned;
        if (e.id) {
            owned.id = *e.id;
        } else if (ids) {
            // An id of its own, so that sending it again cannot store it twice.
            randombytes_buf(owned.id.bytes.data(), owned.id.bytes.size());
        }
        owned.type = std::string(e.type);
        owned.metadata.assign(e.metadata.begin(), e.metadata.end());
        owned.payload.assign(e.payload.begin(), e.payload.end());
        out.events.push_back(std::move(owned));
    }
    return out;
}

std::vector<core::EventDraft> OwnedPublish::drafts() const {
    std::vector<core::EventDraft> out;
    out.reserve(events.size());
    for (const auto& e : events) {
        std::optional<core::EventId> id;
        if (!e.id.is_zero()) id = e.id;
        out.push_back(core::EventDraft{id, e.type, e.metadata, e.payload});
    }
    return out;
}

Forwarder::Forwarder(Context context) : c_(std::move(context)) {}

Forwarder::~Forwarder() {
    stop();
}

void Forwarder::start() {
    auto events = c_.store.outbox_events();
    if (!events) {
        spdlog::warn("reading the outbox: {}", events.error().message());
        outbox_pending_ = true;  // try draining: it will read again
        return;
    }
    // Entries kept from before a restart go first: new publishes queue behind.
    outbox_pending_ = *events > 0;
    if (outbox_pending_) spdlog::info("the outbox holds {} events from before", *events);
}

void Forwarder::stop() {
    *alive_ = false;
    std::map<std::uint64_t, Pending> pending;
    pending.swap(in_flight_);
    for (auto& [id, p] : pending) {
        if (!p.from_outbox) p.reply(core::Unexpected{error(errc::shutting_down, "shutting down")});
    }
}

bool Forwarder::master_linked() const {
    auto master = c_.master();
    return master && *master != c_.self && c_.links.linked(*master);
}

void Forwarder::forward(const PublishRequest& request,
                        const std::optional<core::StreamPolicy>& policy, PublishReply reply) {
    auto master = c_.master();
    const bool reachable = master_linked();
    const std::string who = master ? master->value() : "(none known)";
    if (request.expected_last_seq && (!reachable || outbox_pending_)) {
        // Only the master can check an expected seq, and only in order.
        return reply(core::Unexpected{error(
            errc::not_master,
            fmt::format("an expected seq needs the master {}, which is unreachable from {} now "
                        "(or its outbox is still draining)",
                        who, c_.self.value()))});
    }
    const std::optional<core::Redundancy> redundancy =
        policy ? std::optional(policy->redundancy) : std::nullopt;
    if (redundancy == core::Redundancy::eventual && (!reachable || outbox_pending_)) {
        // Store and forward: behind what the outbox holds already, in order.
        return to_outbox(OwnedPublish::copy(request, true), std::move(reply));
    }
    if (!reachable) {
        if (!master) {
            return reply(core::Unexpected{
                error(errc::unavailable,
                      fmt::format("no master is known to {} now; retry", c_.self.value()))});
        }
        if (!redundancy) {
            return reply(core::Unexpected{
                error(errc::unavailable,
                      fmt::format("stream {} is not known on {} yet (it holds no copy, so its "
                                  "redundancy is unknown) and the master {} is unreachable; retry",
                                  request.stream, c_.self.value(), who))});
        }
        return reply(core::Unexpected{
            error(errc::not_master,
                  fmt::format("the master {} is unreachable from {}; an immediate stream needs it",
                              who, c_.self.value()))});
    }
    send(Pending{OwnedPublish::copy(request, true), redundancy, std::move(reply), false, 0, {}});
}

void Forwarder::send(Pending pending) {
    const std::uint64_t id = next_id_++;
    const core::NodeId master = *c_.master();
    const auto drafts = pending.publish.drafts();
    proto::Forward message{c_.epoch(), id, pending.publish.stream,
                           pending.publish.expected_last_seq, drafts};
    pending.sent_to = master;
    if (!c_.links.send(master, message)) {
        return pending.reply(core::Unexpected{
            error(errc::connection_lost, fmt::format("the link to {} closed", master.value()))});
    }
    in_flight_.emplace(id, std::move(pending));
}

void Forwarder::on_reply(const core::NodeId& from, std::uint64_t request_id,
                         core::Result<proto::PublishAck> ack) {
    auto it = in_flight_.find(request_id);
    if (it == in_flight_.end() || it->second.sent_to != from) return;
    Pending p = std::move(it->second);
    in_flight_.erase(it);
    if (!p.from_outbox) return p.reply(std::move(ack));
    outbox_entry_done(p, ack);
}

void Forwarder::outbox_entry_done(const Pending& p, const core::Result<proto::PublishAck>& ack) {
    outbox_busy_ = false;
    if (!ack && transient(ack.error())) {
        // The master cannot take it now: the entry stays; tick() tries again.
        spdlog::warn("forwarding outbox entry {} ({}): {}", p.outbox_id, p.publish.stream,
                     ack.error().message());
        return;
    }
    if (!ack) {
        spdlog::error("dropping outbox entry {} ({} events of {}): the master refused it: {}",
                      p.outbox_id, p.publish.events.size(), p.publish.stream,
                      ack.error().message());
    }
    std::weak_ptr<bool> alive = alive_;
    auto removed = c_.store.outbox_remove(p.outbox_id, [this, alive](core::Result<void> r) {
        if (alive.expired() || !*alive.lock()) return;
        if (!r) return spdlog::warn("removing an outbox entry: {}", r.error().message());
        drain_outbox();
    });
    if (!removed) spdlog::warn("removing an outbox entry: {}", removed.error().message());
}

void Forwarder::to_outbox(OwnedPublish publish, PublishReply reply) {
    outbox_pending_ = true;
    const auto drafts = publish.drafts();
    auto shared = std::make_shared<PublishReply>(std::move(reply));
    std::weak_ptr<bool> alive = alive_;
    auto queued = c_.store.outbox_add(publish.stream, drafts,
                                      [this, alive, shared, self = c_.self](core::Result<void> r) {
                                          if (!r) return (*shared)(core::Unexpected{r.error()});
                                          proto::PublishAck ack;
                                          ack.kind = proto::AckKind::accepted;
                                          ack.holders.push_back(self.value());
                                          (*shared)(std::move(ack));
                                          if (!alive.expired() && *alive.lock()) drain_outbox();
                                      });
    if (!queued) (*shared)(core::Unexpected{queued.error()});
}

void Forwarder::master_reachable() {
    drain_outbox();
}

void Forwarder::peer_lost(const core::NodeId& peer, std::string_view why) {
    std::vector<Pending> pending;
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
        if (it->second.sent_to != peer) {
            ++it;
            continue;
        }
        if (it->second.from_outbox) outbox_busy_ = false;
        pending.push_back(std::move(it->second));
        it = in_flight_.erase(it);
    }
    for (Pending& p : pending) {
        if (p.from_outbox) continue;  // still in the outbox
        if (p.redundancy == core::Redundancy::eventual) {
            // The master may or may not have it; the ids make a resend harmless.
            to_outbox(std::move(p.publish), std::move(p.reply));
        } else {
            p.reply(core::Unexpected{error(
                errc::connection_lost,
                fmt::format("the master {} went away before its reply ({}); the publish may or "
                            "may not have been applied",
                            p.sent_to.value(), why))});
        }
    }
}

void Forwarder::tick() {
    if (outbox_pending_ && !outbox_busy_) drain_outbox();
}

void Forwarder::drain_outbox() {
    auto master = c_.master();
    if (outbox_busy_ || !master) return;
    const bool here = *master == c_.self;
    if (!here && !master_linked()) return;
    auto entries = c_.store.outbox_read(1);
    if (!entries) return spdlog::warn("reading the outbox: {}", entries.error().message());
    if (entries->empty()) {
        outbox_pending_ = false;
        return;
    }
    storage::OutboxEntry& entry = entries->front();
    Pending p{OwnedPublish{entry.stream, std::nullopt, std::move(entry.events)},
              core::Redundancy::eventual,
              nullptr,
              true,
              entry.id,
              *master};
    outbox_busy_ = true;
    if (!here) return send(std::move(p));
    // This node is the master now: order the entry itself.
    auto owned = std::make_shared<Pending>(std::move(p));
    const auto drafts = owned->publish.drafts();
    std::weak_ptr<bool> alive = alive_;
    c_.order_here(PublishRequest{owned->publish.stream, std::nullopt, drafts},
                  [this, alive, owned](core::Result<proto::PublishAck> ack) {
                      if (alive.expired() || !*alive.lock()) return;
                      outbox_entry_done(*owned, ack);
                  });
}

}  // namespace spirit::daemon
