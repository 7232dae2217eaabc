// The writer's transaction body: applying each kind of queued op (appends,
// confirmations, truncation into quarantine, trims, deletes, cursors, node
// values) to the open write transaction, and the records and keys they keep.
#include "storage/writer.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/codec.h"
#include "core/hash_chain.h"
#include "storage/keys.h"

namespace spirit::storage::detail {

using core::errc;
using core::Error;
using core::Result;

namespace {

// Bounds on the work one truncate/trim does per transaction, so that a huge
// range never overflows LMDB's dirty-page limit (MDB_TXN_FULL). The op
// carries over to the next transaction until it is done.
constexpr std::uint64_t range_events_per_txn_max = 50'000;
// Expired idempotency entries removed per commit.
constexpr std::size_t ids_pruned_per_commit_max = 4096;

bool key_greater(core::ByteView key, const std::vector<std::byte>& last) {
    return std::lexicographical_compare(last.begin(), last.end(), key.begin(), key.end());
}

// An op's error with the stream named.
Error op_error(const WriteOp& op, errc code, std::string detail) {
    return Error{core::make_error_code(code), fmt::format("stream {}: {}", op.stream_name, detail)};
}

}  // namespace

Result<Writer::Applied> Writer::apply(Txn& txn, WriteOp& op) {
    return std::visit(
        [&](auto& body) -> Result<Applied> {
            using T = std::decay_t<decltype(body)>;
            if constexpr (std::is_same_v<T, AppendOp>) {
                SPIRIT_TRY(apply_append(txn, op, body));
                return Applied::done;
            } else if constexpr (std::is_same_v<T, TruncateOp>) {
                return apply_truncate(txn, op, body);
            } else if constexpr (std::is_same_v<T, TrimOp>) {
                return apply_trim(txn, op, body);
            } else if constexpr (std::is_same_v<T, CursorOp>) {
                SPIRIT_TRY(apply_cursor(txn, op, body));
                return Applied::done;
            } else if constexpr (std::is_same_v<T, DeleteOp>) {
                return apply_delete(txn, op, body);
            } else if constexpr (std::is_same_v<T, OutboxAddOp>) {
                U64Value key = u64_value(body.id);
                MDB_val k = to_val(view_of(key));
                MDB_val v = to_val(body.value);
                if (int rc = mdb_put(txn.get(), dbis_.outbox, &k, &v, MDB_APPEND); rc != 0) {
                    return core::Unexpected{lmdb_error(rc, "adding to the outbox")};
                }
                return Applied::done;
            } else if constexpr (std::is_same_v<T, OutboxRemoveOp>) {
                U64Value key = u64_value(body.id);
                MDB_val k = to_val(view_of(key));
                int rc = mdb_del(txn.get(), dbis_.outbox, &k, nullptr);
                if (rc != 0 && rc != MDB_NOTFOUND) {
                    return core::Unexpected{lmdb_error(rc, "removing from the outbox")};
                }
                return Applied::done;
            } else if constexpr (std::is_same_v<T, CreateOp>) {
                dirty_records_.insert_or_assign(op.stream_name, body.record);
                SPIRIT_TRY(put_next_stream_id(txn, op.stream_id));
                return Applied::done;
            } else if constexpr (std::is_same_v<T, ConfirmOp>) {
                SPIRIT_TRY(apply_confirm(txn, op, body));
                return Applied::done;
            } else if constexpr (std::is_same_v<T, PolicyOp>) {
                auto found = record_for(txn, op);
                if (!found) return core::Unexpected{found.error()};
                SPIRIT_ASSERT_MSG(*found != nullptr,
                                  "policy of a stream the sequencer does not hold");
                (*found)->policy = body.policy;
                return Applied::done;
            } else if constexpr (std::is_same_v<T, NodeValueOp>) {
                SPIRIT_TRY(apply_node_value(txn, body));
                return Applied::done;
            } else {
                return Applied::done;
            }
        },
        op.body);
}

Result<StreamRecord*> Writer::record_for(Txn& txn, const WriteOp& op) {
    auto it = dirty_records_.find(op.stream_name);
    if (it != dirty_records_.end()) return &it->second;
    const auto* append = std::get_if<AppendOp>(&op.body);
    if (append != nullptr && append->create) {
        return &dirty_records_.emplace(op.stream_name, *append->create).first->second;
    }
    auto stored = txn.get(dbis_.streams, core::as_bytes(op.stream_name));
    if (!stored) return core::Unexpected{stored.error()};
    if (!*stored) return nullptr;
    auto record = decode_stream_record(**stored, op.stream_name);
    if (!record) return core::Unexpected{record.error()};
    SPIRIT_ASSERT_MSG(record->id == op.stream_id, "stream id of a queued op differs from LMDB");
    return &dirty_records_.emplace(op.stream_name, *record).first->second;
}

Result<void> Writer::apply_append(Txn& txn, WriteOp& op, AppendOp& body) {
    auto found = record_for(txn, op);
    if (!found) return core::Unexpected{found.error()};
    StreamRecord* record = *found;
    SPIRIT_ASSERT_MSG(record != nullptr, "append to a stream the sequencer did not create");
    SPIRIT_ASSERT_MSG(body.first_seq == record->last_seq.next(),
                      fmt::format("stream {}: append at seq {} but the stored last seq is {}",
                                  op.stream_name, body.first_seq.value(), record->last_seq.value())
                          .c_str());
    if (body.create) SPIRIT_TRY(put_next_stream_id(txn, op.stream_id));
    auto cursor = Cursor::open(txn, dbis_.events);
    if (!cursor) return core::Unexpected{cursor.error()};
    std::uint32_t begin = 0;
    core::Seq seq = body.first_seq;
    for (std::uint32_t end : body.ends) {
        EventKey key = event_key(op.stream_id, seq);
        const bool append = at_end(view_of(key), last_event_key_);
        int rc = cursor->put(view_of(key), core::ByteView(body.data).subspan(begin, end - begin),
                             append ? MDB_APPEND : MDB_NOOVERWRITE);
        SPIRIT_ASSERT_MSG(
            rc != MDB_KEYEXIST,
            fmt::format("stream {} seq {} is already stored", op.stream_name, seq.value()).c_str());
        if (rc != 0) {
            return core::Unexpected{lmdb_error(
                rc, fmt::format("stream {} seq {}: writing", op.stream_name, seq.value()))};
        }
        if (append) last_event_key_.assign(key.begin(), key.end());
        seq = seq.next();
        begin = end;
    }
    SPIRIT_TRY(put_ids(txn, op, body.dedup));
    record->last_seq = seq.prev();
    record->last_hash = body.last_hash;
    record->last_epoch = body.last_epoch;
    record->last_timestamp_ns = body.last_ts;
    record->confirmed_epoch = std::max(record->confirmed_epoch, body.confirmed_epoch);
    record->event_bytes += body.data.size();
    return {};
}

Result<void> Writer::put_ids(Txn& txn, const WriteOp& op, const std::vector<DedupRecord>& ids) {
    if (ids.empty()) return {};
    auto cursor = Cursor::open(txn, dbis_.ids);
    if (!cursor) return core::Unexpected{cursor.error()};
    for (const DedupRecord& d : ids) {
        IdKey key = id_key(d.ts, op.stream_id, d.id);
        U64Value value = u64_value(d.seq.value());
        // Replicated ids carry the master's timestamps, which may be older
        // than the last key: those go in place rather than at the end.
        const bool append = at_end(view_of(key), last_id_key_);
        int rc = cursor->put(view_of(key), view_of(value), append ? MDB_APPEND : MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) continue;  // the same id at the same instant: one entry is enough
        if (rc != 0) {
            return core::Unexpected{
                lmdb_error(rc, fmt::format("stream {}: recording event ids", op.stream_name))};
        }
        if (append) last_id_key_.assign(key.begin(), key.end());
    }
    return {};
}

Result<void> Writer::apply_confirm(Txn& txn, WriteOp& op, const ConfirmOp& body) {
    auto found = record_for(txn, op);
    if (!found) return core::Unexpected{found.error()};
    StreamRecord* record = *found;
    SPIRIT_ASSERT_MSG(record != nullptr, "confirm of a stream the sequencer did not create");
    SPIRIT_ASSERT_MSG(
        body.epoch >= record->confirmed_epoch,
        fmt::format("stream {}: confirm of epoch {} below the stored {}", op.stream_name,
                    body.epoch.value(), record->confirmed_epoch.value())
            .c_str());
    record->confirmed_epoch = body.epoch;
    return {};
}

Result<void> Writer::apply_node_value(Txn& txn, const NodeValueOp& body) {
    MDB_val k = to_val(core::as_bytes(body.key));
    MDB_val v = to_val(body.value);
    if (int rc = mdb_put(txn.get(), dbis_.node, &k, &v, 0); rc != 0) {
        return core::Unexpected{lmdb_error(rc, fmt::format("storing node value {}", body.key))};
    }
    return {};
}

namespace {

struct StoredHead {
    core::Digest hash;
    core::Epoch epoch;
    core::TimestampNs ts;
};

// The hash, epoch and timestamp of a stored envelope, for moving a head.
Result<StoredHead> stored_head(Txn& txn, MDB_dbi events, const WriteOp& op, core::Seq seq) {
    EventKey key = event_key(op.stream_id, seq);
    auto value = txn.get(events, view_of(key));
    if (!value) return core::Unexpected{value.error()};
    if (!*value) {
        return core::Unexpected{op_error(
            op, errc::corrupt, fmt::format("seq {} is missing from the events", seq.value()))};
    }
    auto view = core::decode_envelope(**value);
    if (!view) {
        return core::Unexpected{op_error(
            op, errc::corrupt, fmt::format("seq {}: {}", seq.value(), view.error().detail))};
    }
    return StoredHead{view->hash, view->epoch, view->timestamp_ns};
}

}  // namespace

namespace {

// Every envelope of [low, high] is stored, decodes and names its stream and
// seq: checked before a truncation moves any of them, since an envelope
// that does not decode cannot be quarantined under its epoch and hash.
Result<void> check_slice(Txn& txn, MDB_dbi events, const WriteOp& op, std::uint64_t low,
                         std::uint64_t high) {
    auto cursor = Cursor::open(txn, events);
    if (!cursor) return core::Unexpected{cursor.error()};
    EventKey first = event_key(op.stream_id, core::Seq{low});
    auto entry = cursor->seek(view_of(first));
    for (std::uint64_t s = low; s <= high; ++s, entry = cursor->step(MDB_NEXT)) {
        if (!entry) return core::Unexpected{entry.error()};
        EventKey key = event_key(op.stream_id, core::Seq{s});
        if (!*entry || !std::ranges::equal(key, (*entry)->first)) {
            return core::Unexpected{
                op_error(op, errc::corrupt, fmt::format("seq {} is missing from the events", s))};
        }
        auto view = core::decode_envelope((*entry)->second);
        if (!view) {
            return core::Unexpected{op_error(
                op, errc::corrupt,
                fmt::format("seq {}: the envelope does not decode ({}); nothing was quarantined", s,
                            view.error().detail))};
        }
        if (view->seq.value() != s || view->stream != op.stream_name) {
            return core::Unexpected{op_error(
                op, errc::corrupt,
                fmt::format("seq {}: the envelope stored there names stream {} seq {}; nothing "
                            "was quarantined",
                            s, view->stream, view->seq.value()))};
        }
    }
    return {};
}

}  // namespace

Result<Writer::Applied> Writer::apply_truncate(Txn& txn, WriteOp& op, const TruncateOp& body) {
    auto found = record_for(txn, op);
    if (!found) return core::Unexpected{found.error()};
    StreamRecord* record = *found;
    // The sequencer moved the head when it queued the truncate: a rejection
    // here must reset it, so it poisons the stream.
    if (record == nullptr) {
        reject_and_poison(op, op_error(op, errc::not_found, "no such stream"));
        return Applied::done;
    }
    if (body.after >= record->last_seq) return Applied::done;
    if (body.after.value() + 1 < record->first_seq.value()) {
        reject_and_poison(op, op_error(op, errc::invalid_argument,
                                       fmt::format("cannot truncate after seq {}: the stream "
                                                   "starts at seq {}",
                                                   body.after.value(), record->first_seq.value())));
        return Applied::done;
    }
    // Move the tail into quarantine, newest first, a bounded slice per
    // transaction; the record's head follows so every intermediate state is
    // a consistent, verifiable stream.
    const std::uint64_t last = record->last_seq.value();
    const std::uint64_t low = std::max(
        body.after.value() + 1,
        last >= range_events_per_txn_max ? last - range_events_per_txn_max + 1 : std::uint64_t{1});
    // The sequencer checked what was committed when it queued the truncate;
    // this also covers what was committed since. A slice half moved would be
    // committed with the other ops of the transaction: check it all first.
    if (auto checked = check_slice(txn, dbis_.events, op, low, last); !checked) {
        reject_and_poison(op, checked.error());
        return Applied::done;
    }
    auto events = Cursor::open(txn, dbis_.events);
    if (!events) return core::Unexpected{events.error()};
    auto quarantine = Cursor::open(txn, dbis_.quarantine);
    if (!quarantine) return core::Unexpected{quarantine.error()};
    for (std::uint64_t s = last; s >= low; --s) {
        EventKey key = event_key(op.stream_id, core::Seq{s});
        auto entry = events->seek(view_of(key));
        if (!entry) return core::Unexpected{entry.error()};
        SPIRIT_ASSERT(*entry && std::ranges::equal(key, (*entry)->first));  // check_slice
        const std::uint64_t size = (*entry)->second.size();
        SPIRIT_TRY(quarantine_one(txn, op, core::Seq{s}, (*entry)->second, *quarantine));
        record->event_bytes -= std::min<std::uint64_t>(record->event_bytes, size);
        SPIRIT_TRY(events->del());
    }
    core::Seq new_last{low - 1};
    if (new_last >= record->first_seq) {
        auto head = stored_head(txn, dbis_.events, op, new_last);
        if (!head) return core::Unexpected{head.error()};
        record->last_hash = head->hash;
        record->last_epoch = head->epoch;
        record->last_timestamp_ns = head->ts;
    } else {
        record->last_hash = record->base_hash;
    }
    record->last_seq = new_last;
    SPIRIT_TRY(refresh_last_event_key(txn));
    return new_last > body.after ? Applied::partial : Applied::done;
}

Result<void> Writer::quarantine_one(Txn& txn, const WriteOp& op, core::Seq seq,
                                    core::ByteView value, Cursor& quarantine) {
    // Every key first: the views into `value` may not survive a put.
    auto view = core::decode_envelope(value);
    SPIRIT_ASSERT(view.has_value());  // check_slice
    const QuarantineKey qkey = quarantine_key(op.stream_id, seq, view->epoch, view->hash);
    const IdKey ikey = id_key(view->timestamp_ns, op.stream_id, view->id);
    int rc = quarantine.put(view_of(qkey), value, MDB_NOOVERWRITE);
    if (rc != 0 && rc != MDB_KEYEXIST) {
        return core::Unexpected{lmdb_error(
            rc, fmt::format("stream {} seq {}: quarantining", op.stream_name, seq.value()))};
    }
    // The event's id leaves the ids database (if it is recorded, at this
    // seq), so that the event re-published later with its id is stored anew
    // instead of answered with a seq that now holds another event. Ids are
    // keyed by the envelope's own timestamp (append and append_replicated).
    auto stored = txn.get(dbis_.ids, view_of(ikey));
    if (!stored) return core::Unexpected{stored.error()};
    if (*stored && (*stored)->size() == 8 && core::load_be64((*stored)->data()) == seq.value()) {
        MDB_val k = to_val(view_of(ikey));
        if (int drc = mdb_del(txn.get(), dbis_.ids, &k, nullptr); drc != 0) {
            return core::Unexpected{
                lmdb_error(drc, fmt::format("stream {} seq {}: removing its event id",
                                            op.stream_name, seq.value()))};
        }
    }
    return {};
}

Result<Writer::Applied> Writer::apply_trim(Txn& txn, WriteOp& op, const TrimOp& body) {
    auto found = record_for(txn, op);
    if (!found) return core::Unexpected{found.error()};
    StreamRecord* record = *found;
    if (record == nullptr) {
        complete(op, core::Unexpected{op_error(op, errc::not_found, "no such stream")});
        return Applied::done;
    }
    if (body.before <= record->first_seq) return Applied::done;
    if (body.before > record->last_seq.next()) {
        complete(op, core::Unexpected{
                         op_error(op, errc::invalid_argument,
                                  fmt::format("cannot trim before seq {}: the last seq is {}",
                                              body.before.value(), record->last_seq.value()))});
        return Applied::done;
    }
    const std::uint64_t end =
        std::min(body.before.value(), record->first_seq.value() + range_events_per_txn_max);
    auto base = stored_head(txn, dbis_.events, op, core::Seq{end - 1});
    if (!base) return core::Unexpected{base.error()};
    auto events = Cursor::open(txn, dbis_.events);
    if (!events) return core::Unexpected{events.error()};
    EventKey first = event_key(op.stream_id, record->first_seq);
    EventKey stop = event_key(op.stream_id, core::Seq{end});
    // Seek again after each delete rather than trust where a delete leaves
    // the cursor at a page boundary.
    while (true) {
        auto entry = events->seek(view_of(first));
        if (!entry) return core::Unexpected{entry.error()};
        if (!*entry || !std::lexicographical_compare((*entry)->first.begin(), (*entry)->first.end(),
                                                     stop.begin(), stop.end())) {
            break;
        }
        record->event_bytes -=
            std::min<std::uint64_t>(record->event_bytes, (*entry)->second.size());
        SPIRIT_TRY(events->del());
    }
    record->first_seq = core::Seq{end};
    record->base_hash = base->hash;
    SPIRIT_TRY(refresh_last_event_key(txn));
    return end < body.before.value() ? Applied::partial : Applied::done;
}

Result<void> Writer::put_next_stream_id(Txn& txn, core::StreamId created) {
    // Stream ids are never reused: remember the next one with the stream.
    U64Value next = u64_value(created.value() + 1);
    MDB_val k = to_val(core::as_bytes(node_key_next_stream_id));
    MDB_val v = to_val(view_of(next));
    if (int rc = mdb_put(txn.get(), dbis_.node, &k, &v, 0); rc != 0) {
        return core::Unexpected{lmdb_error(rc, "recording the next stream id")};
    }
    return {};
}

Result<void> Writer::apply_cursor(Txn& txn, WriteOp& op, const CursorOp& body) {
    core::Bytes key = cursor_key(body.consumer, op.stream_id);
    auto stored = txn.get(dbis_.cursors, key);
    if (!stored) return core::Unexpected{stored.error()};
    if (*stored && (*stored)->size() == 8 &&
        core::load_be64((*stored)->data()) >= body.seq.value()) {
        return {};  // positions only move forward
    }
    U64Value value = u64_value(body.seq.value());
    MDB_val k = to_val(key);
    MDB_val v = to_val(view_of(value));
    if (int rc = mdb_put(txn.get(), dbis_.cursors, &k, &v, 0); rc != 0) {
        return core::Unexpected{lmdb_error(
            rc, fmt::format("stream {}: storing the cursor of {}", op.stream_name, body.consumer))};
    }
    return {};
}

Result<Writer::Applied> Writer::apply_delete(Txn& txn, WriteOp& op, DeleteOp& body) {
    if (!body.record_removed) {
        // The record and every consumer's cursor go in the first transaction.
        MDB_val k = to_val(core::as_bytes(op.stream_name));
        int rc = mdb_del(txn.get(), dbis_.streams, &k, nullptr);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return core::Unexpected{
                lmdb_error(rc, fmt::format("stream {}: deleting", op.stream_name))};
        }
        dirty_records_.erase(op.stream_name);
        // Cursors are few: collect the keys, then delete them.
        std::vector<core::Bytes> doomed;
        {
            auto cursors = Cursor::open(txn, dbis_.cursors);
            if (!cursors) return core::Unexpected{cursors.error()};
            for (auto entry = cursors->step(MDB_FIRST);; entry = cursors->step(MDB_NEXT)) {
                if (!entry) return core::Unexpected{entry.error()};
                if (!*entry) break;
                core::ByteView key = (*entry)->first;
                if (key.size() > 8 &&
                    core::load_be64(key.data() + key.size() - 8) == op.stream_id.value()) {
                    doomed.emplace_back(key.begin(), key.end());
                }
            }
        }
        for (const core::Bytes& key : doomed) {
            MDB_val dk = to_val(key);
            if (int drc = mdb_del(txn.get(), dbis_.cursors, &dk, nullptr); drc != 0) {
                return core::Unexpected{lmdb_error(drc, "deleting a cursor")};
            }
        }
        body.record_removed = true;
    }
    // Then the events, a bounded slice per transaction.
    auto events = Cursor::open(txn, dbis_.events);
    if (!events) return core::Unexpected{events.error()};
    EventKey first = event_key(op.stream_id, core::Seq{0});
    for (std::uint64_t n = 0; n < range_events_per_txn_max; ++n) {
        auto entry = events->seek(view_of(first));
        if (!entry) return core::Unexpected{entry.error()};
        if (!*entry || event_key_stream((*entry)->first) != op.stream_id) {
            SPIRIT_TRY(refresh_last_event_key(txn));
            return Applied::done;
        }
        SPIRIT_TRY(events->del());
    }
    SPIRIT_TRY(refresh_last_event_key(txn));
    return Applied::partial;
}

Result<void> Writer::put_records(Txn& txn) {
    for (const auto& [name, record] : dirty_records_) {
        core::Bytes value = encode_stream_record(record);
        MDB_val k = to_val(core::as_bytes(name));
        MDB_val v = to_val(value);
        if (int rc = mdb_put(txn.get(), dbis_.streams, &k, &v, 0); rc != 0) {
            return core::Unexpected{
                lmdb_error(rc, fmt::format("stream {}: writing its record", name))};
        }
    }
    return {};
}

bool Writer::at_end(core::ByteView key, const std::vector<std::byte>& last) const {
    return last_keys_known_ && key_greater(key, last);
}

Result<void> Writer::load_last_keys() {
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    for (auto [dbi, last] :
         {std::pair{dbis_.events, &last_event_key_}, std::pair{dbis_.ids, &last_id_key_}}) {
        auto cursor = Cursor::open(*txn, dbi);
        if (!cursor) return core::Unexpected{cursor.error()};
        auto entry = cursor->step(MDB_LAST);
        if (!entry) return core::Unexpected{entry.error()};
        if (*entry) last->assign((*entry)->first.begin(), (*entry)->first.end());
    }
    return {};
}

Result<void> Writer::refresh_last_event_key(Txn& txn) {
    auto cursor = Cursor::open(txn, dbis_.events);
    if (!cursor) return core::Unexpected{cursor.error()};
    auto last = cursor->step(MDB_LAST);
    if (!last) return core::Unexpected{last.error()};
    if (*last) {
        last_event_key_.assign((*last)->first.begin(), (*last)->first.end());
    } else {
        last_event_key_.clear();
    }
    return {};
}

Result<void> Writer::prune_ids(Txn& txn) {
    const std::uint64_t now = options_.clock().value();
    const std::uint64_t window_ns = options_.dedup_window_ms * 1'000'000;
    if (now <= window_ns) return {};
    const std::uint64_t cutoff = now - window_ns;
    auto cursor = Cursor::open(txn, dbis_.ids);
    if (!cursor) return core::Unexpected{cursor.error()};
    for (std::size_t n = 0; n < ids_pruned_per_commit_max; ++n) {
        auto entry = cursor->step(MDB_FIRST);
        if (!entry) return core::Unexpected{entry.error()};
        if (!*entry || core::load_be64((*entry)->first.data()) >= cutoff) break;
        SPIRIT_TRY(cursor->del());
    }
    return {};
}

}  // namespace spirit::storage::detail
