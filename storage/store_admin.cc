// The store's other writes, sequenced like appends: truncation into
// quarantine, trimming, creating and deleting streams, the outbox, node
// values and durable consumer positions.
#include "storage/store.h"

#include <algorithm>
#include <atomic>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/codec.h"
#include "core/stream_name.h"
#include "storage/keys.h"
#include "storage/outbox_record.h"
#include "storage/store_impl.h"

namespace spirit::storage {

using core::errc;
using core::Result;
using detail::Txn;

namespace {

// Keys of the node database the store itself uses.
bool is_store_node_key(std::string_view key) {
    return key == detail::node_key_format || key == detail::node_key_next_stream_id;
}

}  // namespace

Result<void> Store::Impl::truncate_after(std::string_view stream, core::Seq seq,
                                         DoneCallback done) {
    std::lock_guard lock(mutex_);
    auto found = existing_head(stream);
    if (!found) return core::Unexpected{found.error()};
    Head& head = **found;
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto stored = record(*txn, stream);
    if (!stored) return core::Unexpected{stored.error()};
    if (!*stored) {
        return core::make_error(
            errc::busy, fmt::format("stream {}: its creation is not committed yet", stream));
    }
    const detail::StreamRecord& r = **stored;
    if (seq < head.last_seq && seq > r.last_seq) {
        return core::make_error(errc::busy,
                                fmt::format("stream {}: seq {} is not committed yet (committed up "
                                            "to {})",
                                            stream, seq.value(), r.last_seq.value()));
    }
    if (seq.value() + 1 < r.first_seq.value()) {
        return core::make_error(errc::invalid_argument,
                                fmt::format("stream {}: cannot truncate after seq {}: the stream "
                                            "starts at seq {}",
                                            stream, seq.value(), r.first_seq.value()));
    }
    SPIRIT_TRY(check_removable(*txn, stream, r, seq));
    if (seq < head.last_seq) {
        Head moved = head;
        moved.last_seq = seq;
        if (seq >= r.first_seq) {
            auto key = detail::event_key(r.id, seq);
            auto value = txn->get(dbis_.events, detail::view_of(key));
            if (!value) return core::Unexpected{value.error()};
            if (!*value) {
                return core::make_error(errc::corrupt, fmt::format("stream {}: seq {} is missing",
                                                                   stream, seq.value()));
            }
            auto view = core::decode_envelope(**value);
            if (!view) {
                return core::make_error(
                    errc::corrupt,
                    fmt::format("stream {} seq {}: {}", stream, seq.value(), view.error().detail));
            }
            moved.last_hash = view->hash;
            moved.last_epoch = view->epoch;
            moved.last_ts = view->timestamp_ns;
        } else {
            moved.last_hash = r.base_hash;
        }
        head = moved;
        dedup_.erase_after(head.id, seq);
    }
    submit_on_head(stream, head, detail::TruncateOp{seq}, {}, std::move(done));
    return {};
}

Result<void> Store::Impl::trim_before(std::string_view stream, core::Seq seq, DoneCallback done) {
    std::lock_guard lock(mutex_);
    auto found = existing_head(stream);
    if (!found) return core::Unexpected{found.error()};
    Head& head = **found;
    writer_->submit(detail::WriteOp{head.id, std::string(stream), head.generation,
                                    detail::TrimOp{seq}, unpoisoned(std::move(done))});
    return {};
}

Result<void> Store::Impl::set_policy(std::string_view stream, const core::StreamPolicy& policy,
                                     DoneCallback done) {
    std::lock_guard lock(mutex_);
    SPIRIT_TRY(writable());
    auto found = existing_head(stream);
    if (!found) return core::Unexpected{found.error()};
    Head& head = **found;
    writer_->submit(detail::WriteOp{head.id, std::string(stream), head.generation,
                                    detail::PolicyOp{policy}, unpoisoned(std::move(done))});
    return {};
}

Result<void> Store::Impl::create_stream(std::string_view stream, const core::StreamPolicy& policy,
                                        DoneCallback done) {
    SPIRIT_TRY(core::validate_stream_name(stream, core::NameScope::system));
    std::lock_guard lock(mutex_);
    if (closing_) return core::make_error(errc::shutting_down, "the store is closing");
    std::optional<detail::StreamRecord> created;
    auto found = head_for(stream, CreateMode::if_missing, created, policy, options_.clock());
    if (!found) return core::Unexpected{found.error()};
    if (!created) {
        return core::make_error(errc::already_exists, fmt::format("stream {} exists", stream));
    }
    submit_on_head(stream, **found, detail::CreateOp{*created}, {}, std::move(done));
    return {};
}

Result<void> Store::Impl::delete_stream(std::string_view stream, DoneCallback done) {
    std::lock_guard lock(mutex_);
    auto found = existing_head(stream);
    if (!found) return core::Unexpected{found.error()};
    const core::StreamId id = (*found)->id;
    const std::uint64_t generation = (*found)->generation;
    heads_.erase(heads_.find(stream));
    dedup_.erase_after(id, core::Seq{0});
    const std::string name(stream);
    ++deleting_[name];
    writer_->submit(detail::WriteOp{
        id, name, generation, detail::DeleteOp{},
        [this, name, done = std::move(done)](Result<void> status, detail::Poisoned) mutable {
            {
                std::lock_guard relock(mutex_);
                auto it = deleting_.find(name);
                if (it != deleting_.end() && --it->second == 0) deleting_.erase(it);
            }
            done(std::move(status));
        }});
    return {};
}

Result<void> Store::Impl::outbox_add(std::string_view stream,
                                     std::span<const core::EventDraft> events, DoneCallback done) {
    for (const core::EventDraft& e : events) {
        if (!e.id) {
            return core::make_error(errc::invalid_argument,
                                    "outbox events need ids, so forwarding them twice is harmless");
        }
    }
    std::lock_guard lock(mutex_);
    SPIRIT_TRY(writable());
    detail::OutboxAddOp op{next_outbox_id_++, detail::encode_outbox_entry(stream, events)};
    writer_->submit(detail::WriteOp{core::StreamId{0}, std::string(stream), 0, std::move(op),
                                    unpoisoned(std::move(done))});
    return {};
}

Result<void> Store::Impl::outbox_remove(std::uint64_t id, DoneCallback done) {
    std::lock_guard lock(mutex_);
    if (closing_) return core::make_error(errc::shutting_down, "the store is closing");
    writer_->submit(detail::WriteOp{core::StreamId{0}, "outbox", 0, detail::OutboxRemoveOp{id},
                                    unpoisoned(std::move(done))});
    return {};
}

Result<void> Store::Impl::put_node_value(std::string_view key, core::ByteView value,
                                         DoneCallback done) {
    const bool valid_key =
        !key.empty() && key.size() <= node_key_bytes_max && std::ranges::all_of(key, [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '.' || c == ':' || c == '-';
        });
    if (!valid_key) {
        return core::make_error(errc::invalid_argument,
                                fmt::format("node key \"{}\": 1 to {} bytes of A-Z a-z 0-9 _ . : -",
                                            key, node_key_bytes_max));
    }
    if (is_store_node_key(key)) {
        return core::make_error(errc::invalid_argument,
                                fmt::format("node key \"{}\" is the store's own", key));
    }
    if (value.size() > node_value_bytes_max) {
        return core::make_error(errc::limit_exceeded,
                                fmt::format("node key {}: a value of {} bytes, limit {}", key,
                                            value.size(), node_value_bytes_max));
    }
    std::lock_guard lock(mutex_);
    SPIRIT_TRY(writable());
    writer_->submit(detail::WriteOp{
        core::StreamId{0}, "node", 0,
        detail::NodeValueOp{std::string(key), core::Bytes(value.begin(), value.end())},
        unpoisoned(std::move(done))});
    return {};
}

Result<void> Store::Impl::set_cursor(std::string_view consumer, std::string_view stream,
                                     core::Seq seq, DoneCallback done) {
    SPIRIT_TRY(core::validate_stream_name(consumer));
    std::lock_guard lock(mutex_);
    auto found = existing_head(stream);
    if (!found) return core::Unexpected{found.error()};
    Head& head = **found;
    writer_->submit(detail::WriteOp{head.id, std::string(stream), head.generation,
                                    detail::CursorOp{std::string(consumer), seq},
                                    unpoisoned(std::move(done))});
    return {};
}

void Store::Impl::wait_until(const std::atomic<bool>& finished) {
    while (!finished.load(std::memory_order_acquire)) {
        writer_->drain_completed();
        if (finished.load(std::memory_order_acquire)) break;
        writer_->wait_for_completions(std::chrono::milliseconds(5));
    }
}

}  // namespace spirit::storage
