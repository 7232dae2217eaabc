// Replication, the slave's side: applying what the master sends after
// checking every chain link, acking durable positions, forwarding client
// publishes, and the outbox for when the master is unreachable.
#include <sodium.h>

#include <fmt/format.h>

#include "core/assert.h"
#include "daemon/log.h"
#include "daemon/replication.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

core::Error error(errc code, std::string detail) {
    return core::Error{core::make_error_code(code), std::move(detail)};
}

bool transient(const core::Error& e) {
    return e.is(errc::overloaded) || e.is(errc::shutting_down) || e.is(errc::timeout) ||
           e.is(errc::not_master) || e.is(errc::storage_full) || e.is(errc::storage_io) ||
           e.is(errc::storage_failed) || e.is(errc::connection_lost);
}

}  // namespace

void Replication::send_positions(Peer& peer) {
    auto streams = store_.list_streams();
    if (!streams) {
        spdlog::error("replication from {}: {}", peer.id, streams.error().message());
        return;
    }
    proto::Positions positions;
    for (const storage::StreamInfo& info : *streams) {
        positions.streams.push_back({info.name, info.last_seq, info.last_hash});
    }
    send(*peer.link, positions);
}

void Replication::on_replicate(Peer& peer, const proto::Replicate& replicate) {
    const core::Seq first = replicate.prev_seq.next();
    if (is_master() || peer.id != config_.master()) {
        spdlog::warn("node {} sent stream {}, but {} is the master", peer.id, replicate.stream,
                     config_.master());
        return send(*peer.link,
                    proto::ReplicaRefused{
                        replicate.stream, first, static_cast<std::uint32_t>(errc::not_master),
                        fmt::format("{} is the master, not {}", config_.master(), peer.id)});
    }
    if (refused_.contains(replicate.stream)) return;  // stopped; already reported
    const std::string stream = replicate.stream;
    const std::uint64_t generation = link_generation_;
    auto refuse = [this, stream](core::Seq seq, const core::Error& why) {
        if (refused_.contains(stream)) return;
        refused_[stream] = why.message();
        spdlog::error("replication of stream {} stopped: {}", stream, why.message());
        Peer* master = master_peer();
        if (master != nullptr && master->link != nullptr) {
            const auto code = why.code.category() == core::spirit_category()
                                  ? static_cast<std::uint32_t>(why.code.value())
                                  : static_cast<std::uint32_t>(errc::internal);
            send(*master->link, proto::ReplicaRefused{stream, seq, code, why.detail});
        }
    };
    auto queued = store_.append_replicated(
        {.stream = replicate.stream,
         .policy = replicate.policy,
         .prev_seq = replicate.prev_seq,
         .prev_hash = replicate.prev_hash,
         .envelopes = replicate.envelopes},
        [this, stream, first, generation, refuse](core::Result<storage::AppendResult> r) {
            if (!r) {
                // A commit that failed (disk full, say) is not a bad chain:
                // the next link sends it again from the positions.
                if (r.error().is(errc::hash_mismatch) || r.error().is(errc::invalid_argument)) {
                    refuse(first, r.error());
                } else {
                    spdlog::warn("replication of stream {}: {}", stream, r.error().message());
                    Peer* master = master_peer();
                    if (master != nullptr && master->link != nullptr &&
                        generation == link_generation_) {
                        master->link->close(r.error(), net::Connection::Flush::no);
                    }
                }
                return;
            }
            hooks_.visible(stream, r->last_seq);
            Peer* master = master_peer();
            if (master != nullptr && master->link != nullptr && generation == link_generation_) {
                send(*master->link, proto::ReplicaAck{stream, r->last_seq});
            }
        });
    if (!queued) {
        if (queued.error().is(errc::hash_mismatch) || queued.error().is(errc::invalid_argument) ||
            queued.error().is(errc::malformed)) {
            refuse(first, queued.error());
        } else {
            spdlog::warn("replication of stream {}: {}", stream, queued.error().message());
            peer.link->close(queued.error(), net::Connection::Flush::no);
        }
    }
}

void Replication::forward(std::string_view stream, std::optional<core::Seq> expected,
                          std::span<const core::EventDraft> events, core::Redundancy redundancy,
                          PublishDone done) {
    PendingForward f;
    f.stream = std::string(stream);
    f.redundancy = redundancy;
    f.done = std::move(done);
    f.events.reserve(events.size());
    for (const core::EventDraft& e : events) {
        storage::OutboxEntry::Event owned;
        if (e.id) {
            owned.id = *e.id;
        } else {
            // An id of its own, so that sending it again cannot store it twice.
            randombytes_buf(owned.id.bytes.data(), owned.id.bytes.size());
        }
        owned.type = std::string(e.type);
        owned.metadata.assign(e.metadata.begin(), e.metadata.end());
        owned.payload.assign(e.payload.begin(), e.payload.end());
        f.events.push_back(std::move(owned));
    }
    Peer* master = master_peer();
    const bool reachable = master != nullptr && master->link != nullptr;
    if (expected && (!reachable || outbox_pending_)) {
        // Only the master can check an expected seq, and only in order.
        return f.done(core::Unexpected{
            error(errc::not_master,
                  fmt::format("an expected seq needs the master {}, which is unreachable from {} "
                              "now (or its outbox is still draining)",
                              config_.master(), config_.node.id))});
    }
    if (redundancy == core::Redundancy::eventual && (!reachable || outbox_pending_)) {
        // Store and forward; behind what the outbox holds already, in order.
        return to_outbox(std::move(f));
    }
    if (!reachable) {
        return f.done(core::Unexpected{
            error(errc::not_master,
                  fmt::format("the master {} is unreachable from {}; an immediate stream needs it",
                              config_.master(), config_.node.id))});
    }
    const std::uint64_t id = next_forward_id_++;
    proto::Forward message{id, f.stream, expected, {}};
    for (const auto& e : f.events) {
        message.events.push_back(core::EventDraft{e.id, e.type, e.metadata, e.payload});
    }
    send(*master->link, message);
    forwards_.emplace(id, std::move(f));
}

void Replication::on_forward_reply(std::uint64_t request_id, core::Result<proto::PublishAck> ack) {
    auto it = forwards_.find(request_id);
    if (it == forwards_.end()) return;
    PendingForward f = std::move(it->second);
    forwards_.erase(it);
    if (!f.from_outbox) return f.done(std::move(ack));
    outbox_busy_ = false;
    if (!ack && transient(ack.error())) {
        // The master cannot take it now: the entry stays; tick() tries again.
        spdlog::warn("forwarding outbox entry {} ({}): {}", f.outbox_id, f.stream,
                     ack.error().message());
        return;
    }
    if (!ack) {
        spdlog::error("dropping outbox entry {} ({} events of {}): the master refused it: {}",
                      f.outbox_id, f.events.size(), f.stream, ack.error().message());
    }
    auto removed = store_.outbox_remove(f.outbox_id, [this](core::Result<void> r) {
        if (!r) {
            spdlog::warn("removing an outbox entry: {}", r.error().message());
            return;
        }
        drain_outbox();
    });
    if (!removed) spdlog::warn("removing an outbox entry: {}", removed.error().message());
}

void Replication::to_outbox(PendingForward f) {
    std::vector<core::EventDraft> drafts;
    drafts.reserve(f.events.size());
    for (const auto& e : f.events) {
        drafts.push_back(core::EventDraft{e.id, e.type, e.metadata, e.payload});
    }
    outbox_pending_ = true;
    auto done = std::make_shared<PublishDone>(std::move(f.done));
    const std::size_t count = f.events.size();
    auto queued = store_.outbox_add(f.stream, drafts, [this, done, count](core::Result<void> r) {
        if (!r) return (*done)(core::Unexpected{r.error()});
        proto::PublishAck ack;
        ack.kind = proto::AckKind::accepted;
        ack.holders.push_back(config_.node.id);
        (void)count;
        (*done)(std::move(ack));
        drain_outbox();
    });
    if (!queued) (*done)(core::Unexpected{queued.error()});
}

void Replication::drain_outbox() {
    Peer* master = master_peer();
    if (is_master() || master == nullptr || master->link == nullptr || outbox_busy_) return;
    auto entries = store_.outbox_read(1);
    if (!entries) {
        spdlog::warn("reading the outbox: {}", entries.error().message());
        return;
    }
    if (entries->empty()) {
        outbox_pending_ = false;
        return;
    }
    storage::OutboxEntry& entry = entries->front();
    PendingForward f;
    f.stream = entry.stream;
    f.redundancy = core::Redundancy::eventual;
    f.events = std::move(entry.events);
    f.from_outbox = true;
    f.outbox_id = entry.id;
    const std::uint64_t id = next_forward_id_++;
    proto::Forward message{id, f.stream, std::nullopt, {}};
    for (const auto& e : f.events) {
        message.events.push_back(core::EventDraft{e.id, e.type, e.metadata, e.payload});
    }
    send(*master->link, message);
    forwards_.emplace(id, std::move(f));
    outbox_busy_ = true;
}

}  // namespace spirit::daemon
