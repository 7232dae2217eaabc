#include "storage/writer.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
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

std::uint64_t WriteOp::queued_bytes() const {
    if (const auto* a = std::get_if<AppendOp>(&body)) return a->data.size() + 64;
    if (const auto* o = std::get_if<OutboxAddOp>(&body)) return o->value.size() + 64;
    return 64;
}

Writer::Writer(Env& env, Dbis dbis, WriterOptions options)
    : env_(env),
      dbis_(dbis),
      options_(std::move(options)),
      page_bytes_(env_.page_bytes()),
      reserve_(options_.data_dir / "data.mdb", options_.preallocate_bytes, env_.map_bytes()) {
    SPIRIT_ASSERT(options_.clock != nullptr);
    next_sync_ = std::chrono::steady_clock::now();
    thread_ = std::thread([this] { run(); });
}

Writer::~Writer() {
    stop();
}

bool Writer::has_room(std::uint64_t bytes) const {
    std::lock_guard lock(mutex_);
    return queue_.empty() || queued_bytes_ + bytes <= options_.queue_bytes_max;
}

void Writer::submit(WriteOp op) {
    {
        std::lock_guard lock(mutex_);
        SPIRIT_ASSERT(!stopping_);
        queued_bytes_ += op.queued_bytes();
        queue_.push_back(std::move(op));
    }
    queue_cv_.notify_one();
}

void Writer::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    queue_cv_.notify_one();
    if (thread_.joinable()) thread_.join();
}

std::size_t Writer::drain_completed() {
    std::vector<Completion> batch;
    {
        std::lock_guard lock(completed_mutex_);
        batch.swap(completed_);
    }
    for (Completion& c : batch) c.done(std::move(c.status), c.poisoned);
    return batch.size();
}

void Writer::wait_for_completions(std::chrono::milliseconds timeout) {
    std::unique_lock lock(completed_mutex_);
    completed_cv_.wait_for(lock, timeout, [this] { return !completed_.empty(); });
}

void Writer::set_commit_notifier(std::function<void()> notifier) {
    std::lock_guard lock(completed_mutex_);
    notifier_ = std::move(notifier);
}

std::optional<Error> Writer::failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
}

StoreStats Writer::stats() const {
    StoreStats s;
    s.commits = commits_.load(std::memory_order_relaxed);
    s.syncs = syncs_.load(std::memory_order_relaxed);
    s.events_written = events_written_.load(std::memory_order_relaxed);
    s.bytes_written = bytes_written_.load(std::memory_order_relaxed);
    s.failed_commits = failed_commits_.load(std::memory_order_relaxed);
    s.preallocated_bytes = preallocated_.load(std::memory_order_relaxed);
    s.preallocate_bound_misses = preallocate_bound_misses_.load(std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    s.queued_bytes = queued_bytes_;
    return s;
}

void Writer::run() {
    for (;;) {
        std::vector<WriteOp> group;
        {
            std::unique_lock lock(mutex_);
            auto ready = [this] { return !queue_.empty() || !carry_.empty() || stopping_; };
            if (options_.sync_mode == SyncMode::periodic && unsynced_) {
                queue_cv_.wait_until(lock, next_sync_, ready);
            } else {
                queue_cv_.wait(lock, ready);
            }
            if (queue_.empty() && carry_.empty()) {
                if (stopping_) break;
            } else {
                group = take_group(lock);
            }
        }
        if (!group.empty()) process_group(group);
        if (options_.sync_mode == SyncMode::periodic && unsynced_ &&
            std::chrono::steady_clock::now() >= next_sync_) {
            periodic_sync();
        }
    }
    if (options_.sync_mode == SyncMode::periodic && unsynced_) periodic_sync();
}

std::vector<WriteOp> Writer::take_group(std::unique_lock<std::mutex>&) {
    std::vector<WriteOp> group;
    std::uint64_t events = 0;
    std::uint64_t bytes = 0;
    auto take = [&](std::deque<WriteOp>& from, bool counted) {
        while (!from.empty() && (group.empty() || (events < options_.group_events_max &&
                                                   bytes < options_.group_bytes_max))) {
            WriteOp& op = from.front();
            std::uint64_t op_bytes = op.queued_bytes();
            if (const auto* a = std::get_if<AppendOp>(&op.body)) events += a->ends.size();
            bytes += op_bytes;
            if (counted) queued_bytes_ -= op_bytes;
            group.push_back(std::move(op));
            from.pop_front();
        }
    };
    take(carry_, false);
    take(queue_, true);
    return group;
}

void Writer::complete(WriteOp& op, Result<void> status, Poisoned poisoned) {
    finished_.push_back(Completion{std::move(op.done), std::move(status), poisoned});
}

void Writer::reject_and_poison(WriteOp& op, const Error& error) {
    auto& poison = poisoned_[op.stream_id];
    poison = {std::max(poison.first, op.generation), error};
    complete(op, core::Unexpected{error}, Poisoned::yes);
}

void Writer::publish_completions() {
    if (finished_.empty()) return;
    std::function<void()> notifier;
    {
        std::lock_guard lock(completed_mutex_);
        if (completed_.empty()) {
            completed_.swap(finished_);
        } else {
            for (Completion& c : finished_) completed_.push_back(std::move(c));
            finished_.clear();
        }
        notifier = notifier_;
    }
    completed_cv_.notify_all();
    if (notifier) notifier();
}

void Writer::fail_group(std::vector<WriteOp>& ops, std::size_t first, std::size_t end,
                        const Error& error) {
    for (std::size_t i = first; i < end; ++i) {
        WriteOp& op = ops[i];
        // Only ops that moved the stream's head when they were sequenced
        // leave later ops chained on something that never became durable.
        const bool moved_head = std::holds_alternative<AppendOp>(op.body) ||
                                std::holds_alternative<TruncateOp>(op.body) ||
                                std::holds_alternative<CreateOp>(op.body);
        if (moved_head) {
            reject_and_poison(op, error);
        } else {
            complete(op, core::Unexpected{error});
        }
    }
}

void Writer::process_group(std::vector<WriteOp>& group) {
    // Ops that fail without being written: after an unrecoverable error, or
    // sequenced on top of an append that failed.
    std::optional<Error> failure;
    {
        std::lock_guard lock(mutex_);
        failure = failure_;
    }
    std::vector<WriteOp> live;
    live.reserve(group.size());
    for (WriteOp& op : group) {
        if (failure) {
            complete(op, core::Unexpected{*failure});
            continue;
        }
        auto poison = poisoned_.find(op.stream_id);
        if (poison != poisoned_.end() && op.generation <= poison->second.first) {
            const Error& cause = poison->second.second;
            complete(op,
                     core::Unexpected{
                         Error{cause.code, fmt::format("stream {}: sequenced on top of a write "
                                                       "that failed: {}",
                                                       op.stream_name, cause.detail)}},
                     Poisoned::yes);
            continue;
        }
        live.push_back(std::move(op));
    }
    if (live.empty()) {
        publish_completions();
        return;
    }

    std::uint64_t group_bytes = 0;
    std::uint64_t group_events = 0;
    for (const WriteOp& op : live) {
        if (const auto* a = std::get_if<AppendOp>(&op.body)) {
            group_bytes += a->data.size();
            group_events += a->ends.size();
        }
    }

    // Declared before the transaction, so it ends after it (abort included).
    struct ReserveWindow {
        FileReserve& reserve;
        Env& env;
        ~ReserveWindow() { reserve.end_write(env.used_bytes()); }
    };
    std::optional<ReserveWindow> window;
    auto txn = Txn::begin(env_, Txn::Mode::write);
    if (!txn) {
        Error error = classify(txn.error(), "beginning a write transaction");
        fail_group(live, 0, live.size(), error);
        failed_commits_.fetch_add(1, std::memory_order_relaxed);
        publish_completions();
        return;
    }
    // LMDB writes nothing to the file before the first put may spill or the
    // commit writes: from here the reserve's helper keeps its zeros out of
    // what this transaction may write, and writes them meanwhile.
    const std::uint64_t used_before = env_.used_bytes();
    const std::uint64_t bound = reserve_.enabled()
                                    ? growth_bound(live, txn->free_list_pages(), page_bytes_)
                                    : FileReserve::unbounded;
    reserve_.begin_write(used_before, bound);
    window.emplace(reserve_, env_);
    const std::vector<std::byte> saved_event_key = last_event_key_;
    const std::vector<std::byte> saved_id_key = last_id_key_;
    dirty_records_.clear();

    // Ops [0, applied) are in the transaction; rejected ones are completed
    // already and marked by a moved-from `done`.
    std::size_t applied = 0;
    std::optional<Error> txn_error;
    for (; applied < live.size(); ++applied) {
        WriteOp& op = live[applied];
        auto outcome = apply(*txn, op);
        if (!outcome) {
            txn_error = outcome.error();
            break;
        }
        if (*outcome == Applied::partial) {
            // Done for this transaction: the op and everything after it wait
            // for the next one, in order.
            for (std::size_t i = live.size(); i > applied; --i) {
                carry_.push_front(std::move(live[i - 1]));
            }
            live.resize(applied);
            break;
        }
    }
    if (!txn_error) {
        if (auto r = put_records(*txn); !r) txn_error = r.error();
    }
    if (!txn_error) {
        if (auto r = prune_ids(*txn); !r) txn_error = r.error();
    }
    if (!txn_error) {
        if (auto r = txn->commit(); !r) txn_error = r.error();
    }
    if (txn_error) {
        txn->abort();
        last_event_key_ = saved_event_key;
        last_id_key_ = saved_id_key;
        Error error = classify(*txn_error, fmt::format("committing {} events", group_events));
        failed_commits_.fetch_add(1, std::memory_order_relaxed);
        // Everything in the transaction failed, including carried-over ops
        // of the same streams (the poison catches them next round).
        std::size_t end = std::min(live.size(), applied + 1);
        std::vector<WriteOp> in_txn;
        for (std::size_t i = 0; i < end; ++i) {
            if (live[i].done) in_txn.push_back(std::move(live[i]));
        }
        fail_group(in_txn, 0, in_txn.size(), error);
        // Ops after the failing one were not tried: they go first next time.
        for (std::size_t i = live.size(); i > end; --i) carry_.push_front(std::move(live[i - 1]));
        publish_completions();
        return;
    }

    commits_.fetch_add(1, std::memory_order_relaxed);
    if (options_.sync_mode == SyncMode::always) syncs_.fetch_add(1, std::memory_order_relaxed);
    if (options_.sync_mode == SyncMode::periodic && !unsynced_) {
        unsynced_ = true;
        next_sync_ =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.sync_period_ms);
    }
    events_written_.fetch_add(group_events, std::memory_order_relaxed);
    bytes_written_.fetch_add(group_bytes, std::memory_order_relaxed);
    for (WriteOp& op : live) {
        if (op.done) complete(op, {});
    }
    publish_completions();
    const std::uint64_t used_after = env_.used_bytes();
    if (used_after > used_before + bound) {
        // The bound was wrong: never let the helper write near LMDB again.
        reserve_.disable();
        preallocate_bound_misses_.fetch_add(1, std::memory_order_relaxed);
    }
    preallocated_.store(reserve_.ahead_of(used_after), std::memory_order_relaxed);
}

std::uint64_t Writer::growth_bound(const std::vector<WriteOp>& ops,
                                   std::optional<std::uint64_t> free_list_pages,
                                   std::uint64_t page) {
    // How far past the pages in use a transaction of these ops can write.
    // Every page LMDB writes is one the transaction allocated (a copy or a
    // new page) from the free list or from the end, so the pages it
    // allocates bound it. Generous on purpose:
    // - an op's events are consecutive keys of one stream, and their ids
    //   entries consecutive keys too (timestamp first): their leaves take at
    //   most four times the bytes put (nodes at least half full, plus the
    //   node headers), values over a quarter page twice their size plus a
    //   page (overflow pages round up);
    // - 16 pages per op for the copied paths of the events, ids and streams
    //   trees;
    // - the free list written back: at most twice its present size, plus 8
    //   bytes for every page this transaction frees (one per page copied);
    // - 256 pages for pruning the idempotency window (at most 4,096 entries
    //   from its oldest end) and the roots.
    if (!free_list_pages) return FileReserve::unbounded;
    const std::uint64_t per_op = 16 * page;
    std::uint64_t bound = (2 * *free_list_pages + 256) * page;
    for (const WriteOp& op : ops) {
        if (const auto* a = std::get_if<AppendOp>(&op.body)) {
            std::uint32_t begin = 0;
            for (std::uint32_t end : a->ends) {
                const std::uint64_t size = end - begin;
                bound += size > page / 4 ? 2 * size + page : 4 * (size + 128);
                begin = end;
            }
            bound += per_op;
        } else if (const auto* o = std::get_if<OutboxAddOp>(&op.body)) {
            bound += 2 * o->value.size() + page + per_op;
        } else if (std::holds_alternative<CursorOp>(op.body) ||
                   std::holds_alternative<CreateOp>(op.body) ||
                   std::holds_alternative<BarrierOp>(op.body)) {
            bound += per_op;
        } else {
            // Truncate, trim, delete and outbox removal move or free data of
            // sizes not known here (up to tens of thousands of events).
            return FileReserve::unbounded;
        }
    }
    return bound + bound / 256 + page;
}

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
        bool at_end = key_greater(view_of(key), last_event_key_);
        int rc = cursor->put(view_of(key), core::ByteView(body.data).subspan(begin, end - begin),
                             at_end ? MDB_APPEND : MDB_NOOVERWRITE);
        SPIRIT_ASSERT_MSG(
            rc != MDB_KEYEXIST,
            fmt::format("stream {} seq {} is already stored", op.stream_name, seq.value()).c_str());
        if (rc != 0) {
            return core::Unexpected{lmdb_error(
                rc, fmt::format("stream {} seq {}: writing", op.stream_name, seq.value()))};
        }
        if (at_end) last_event_key_.assign(key.begin(), key.end());
        seq = seq.next();
        begin = end;
    }
    if (!body.dedup.empty()) {
        auto ids = Cursor::open(txn, dbis_.ids);
        if (!ids) return core::Unexpected{ids.error()};
        for (const DedupRecord& d : body.dedup) {
            IdKey key = id_key(d.ts, op.stream_id, d.id);
            U64Value value = u64_value(d.seq.value());
            bool at_end = key_greater(view_of(key), last_id_key_);
            int rc = ids->put(view_of(key), view_of(value), at_end ? MDB_APPEND : MDB_NOOVERWRITE);
            if (rc == MDB_KEYEXIST)
                continue;  // the same id at the same instant: one entry is enough
            if (rc != 0) {
                return core::Unexpected{
                    lmdb_error(rc, fmt::format("stream {}: recording event ids", op.stream_name))};
            }
            if (at_end) last_id_key_.assign(key.begin(), key.end());
        }
    }
    record->last_seq = seq.prev();
    record->last_hash = body.last_hash;
    record->last_epoch = body.last_epoch;
    record->last_timestamp_ns = body.last_ts;
    record->event_bytes += body.data.size();
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
    auto events = Cursor::open(txn, dbis_.events);
    if (!events) return core::Unexpected{events.error()};
    auto quarantine = Cursor::open(txn, dbis_.quarantine);
    if (!quarantine) return core::Unexpected{quarantine.error()};
    for (std::uint64_t s = last; s >= low; --s) {
        EventKey key = event_key(op.stream_id, core::Seq{s});
        auto entry = events->seek(view_of(key));
        if (!entry) return core::Unexpected{entry.error()};
        if (!*entry || !std::equal(key.begin(), key.end(), (*entry)->first.begin())) {
            return core::Unexpected{
                op_error(op, errc::corrupt, fmt::format("seq {} is missing from the events", s))};
        }
        core::ByteView value = (*entry)->second;
        core::Epoch epoch{0};
        core::Digest hash;
        if (auto view = core::decode_envelope(value)) {
            epoch = view->epoch;
            hash = view->hash;
        }
        QuarantineKey qkey = quarantine_key(op.stream_id, core::Seq{s}, epoch, hash);
        int rc = quarantine->put(view_of(qkey), value, MDB_NOOVERWRITE);
        if (rc != 0 && rc != MDB_KEYEXIST) {
            return core::Unexpected{
                lmdb_error(rc, fmt::format("stream {} seq {}: quarantining", op.stream_name, s))};
        }
        record->event_bytes -= std::min<std::uint64_t>(record->event_bytes, value.size());
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

void Writer::periodic_sync() {
    auto r = env_.sync();
    unsynced_ = false;
    if (r) {
        syncs_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    // A failed fsync may have dropped acknowledged pages: no more writes.
    Error error = classify(r.error(), "periodic sync");
    std::lock_guard lock(mutex_);
    if (!failure_) {
        failure_ = Error{core::make_error_code(errc::storage_failed),
                         fmt::format("the store refuses writes after a failed sync ({}); restart "
                                     "spiritd to recover",
                                     r.error().detail)};
    }
}

Error Writer::classify(const Error& error, std::string_view context) {
    if (error.code == std::error_code(MDB_MAP_FULL, lmdb_category())) {
        return Error{core::make_error_code(errc::storage_full),
                     fmt::format("{}: the LMDB map of {} bytes is full; raise storage.map_size or "
                                 "trim streams",
                                 context, env_.map_bytes())};
    }
    const bool io = error.code.category() == std::generic_category();
    if (io) {
        struct statvfs fs {};
        std::uint64_t free_bytes = UINT64_MAX;
        if (::statvfs(options_.data_dir.c_str(), &fs) == 0) {
            free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
        }
        const int e = error.code.value();
        // A short write on a full disk reaches us as EIO: statvfs tells it
        // apart from a failing device.
        if (e == ENOSPC || e == EDQUOT || (e == EIO && free_bytes < (std::uint64_t{4} << 20))) {
            return Error{core::make_error_code(errc::storage_full),
                         fmt::format("{}: disk full ({} bytes free in {}); appends resume when "
                                     "space is freed",
                                     context, free_bytes, options_.data_dir.string())};
        }
    }
    const bool panic = error.code == std::error_code(MDB_PANIC, lmdb_category());
    if (io || panic) {
        std::lock_guard lock(mutex_);
        if (!failure_) {
            failure_ = Error{core::make_error_code(errc::storage_failed),
                             fmt::format("the store refuses writes after an I/O error ({}: {}); "
                                         "restart spiritd to recover",
                                         context, error.detail)};
        }
    }
    return Error{core::make_error_code(errc::storage_io),
                 fmt::format("{}: {}", context, error.detail)};
}

}  // namespace spirit::storage::detail
