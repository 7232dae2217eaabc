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

std::uint64_t micros_between(std::chrono::steady_clock::time_point from,
                             std::chrono::steady_clock::time_point to) {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(to - from).count());
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
    // MDB_APPEND refuses a key below the last one in the database: start from
    // the keys a reopened store holds, not from none.
    last_keys_known_ = load_last_keys().has_value();
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

CommitMetrics Writer::commit_metrics() const {
    return CommitMetrics{commit_us_.snapshot(), sync_us_.snapshot(), batch_events_.snapshot()};
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
                                std::holds_alternative<CreateOp>(op.body) ||
                                std::holds_alternative<ConfirmOp>(op.body);
        if (moved_head) {
            reject_and_poison(op, error);
        } else {
            complete(op, core::Unexpected{error});
        }
    }
}

std::vector<WriteOp> Writer::take_live(std::vector<WriteOp>& group) {
    // Ops that fail without being written: after an unrecoverable error, or
    // sequenced on top of an op that failed.
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
    return live;
}

Writer::AppliedOps Writer::apply_ops(Txn& txn, std::vector<WriteOp>& live) {
    // Ops [0, applied) are in the transaction; rejected ones are completed
    // already and marked by a moved-from `done`.
    std::size_t applied = 0;
    for (; applied < live.size(); ++applied) {
        WriteOp& op = live[applied];
        auto outcome = apply(txn, op);
        if (!outcome) return AppliedOps{applied, outcome.error()};
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
    return AppliedOps{applied, std::nullopt};
}

void Writer::fail_txn(std::vector<WriteOp>& live, std::size_t applied, const Error& error,
                      std::uint64_t group_events) {
    Classified classified = classify(error, fmt::format("committing {} events", group_events));
    if (classified.failure) enter_failed_state(*classified.failure);
    failed_commits_.fetch_add(1, std::memory_order_relaxed);
    // Everything in the transaction failed, including carried-over ops of
    // the same streams (the poison catches them next round).
    std::size_t end = std::min(live.size(), applied + 1);
    std::vector<WriteOp> in_txn;
    for (std::size_t i = 0; i < end; ++i) {
        if (live[i].done) in_txn.push_back(std::move(live[i]));
    }
    fail_group(in_txn, 0, in_txn.size(), classified.error);
    // Ops after the failing one were not tried: they go first next time.
    for (std::size_t i = live.size(); i > end; --i) carry_.push_front(std::move(live[i - 1]));
}

void Writer::committed(std::vector<WriteOp>& live, std::uint64_t group_events,
                       std::uint64_t group_bytes) {
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
}

void Writer::process_group(std::vector<WriteOp>& group) {
    std::vector<WriteOp> live = take_live(group);
    if (live.empty()) {
        publish_completions();
        return;
    }
    // Declared before the transaction, so it ends after it (abort included).
    struct ReserveWindow {
        FileReserve& reserve;
        Env& env;
        ~ReserveWindow() { reserve.end_write(env.used_bytes()); }
    };
    std::optional<ReserveWindow> window;
    const auto began = std::chrono::steady_clock::now();
    auto txn = Txn::begin(env_, Txn::Mode::write);
    if (!txn) {
        Classified classified = classify(txn.error(), "beginning a write transaction");
        if (classified.failure) enter_failed_state(*classified.failure);
        fail_group(live, 0, live.size(), classified.error);
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

    auto [applied, txn_error] = apply_ops(*txn, live);
    if (!txn_error) {
        if (auto r = put_records(*txn); !r) txn_error = r.error();
    }
    if (!txn_error) {
        if (auto r = prune_ids(*txn); !r) txn_error = r.error();
    }
    const auto committing = std::chrono::steady_clock::now();
    if (!txn_error) {
        if (auto r = txn->commit(); !r) txn_error = r.error();
    }
    // What this transaction holds (ops carried to the next one excluded).
    std::uint64_t group_bytes = 0;
    std::uint64_t group_events = 0;
    for (const WriteOp& op : live) {
        if (const auto* a = std::get_if<AppendOp>(&op.body)) {
            group_bytes += a->data.size();
            group_events += a->ends.size();
        }
    }
    if (txn_error) {
        txn->abort();
        last_event_key_ = saved_event_key;
        last_id_key_ = saved_id_key;
        fail_txn(live, applied, *txn_error, group_events);
        publish_completions();
        return;
    }
    const auto done = std::chrono::steady_clock::now();
    commit_us_.observe(micros_between(began, done));
    if (options_.sync_mode == SyncMode::always) sync_us_.observe(micros_between(committing, done));
    batch_events_.observe(group_events);
    committed(live, group_events, group_bytes);
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
        } else if (const auto* n = std::get_if<NodeValueOp>(&op.body)) {
            bound += 2 * (n->key.size() + n->value.size()) + page + per_op;
        } else if (std::holds_alternative<CursorOp>(op.body) ||
                   std::holds_alternative<CreateOp>(op.body) ||
                   std::holds_alternative<ConfirmOp>(op.body) ||
                   std::holds_alternative<PolicyOp>(op.body) ||
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

void Writer::periodic_sync() {
    const auto began = std::chrono::steady_clock::now();
    auto r = env_.sync();
    unsynced_ = false;
    if (r) {
        sync_us_.observe(micros_between(began, std::chrono::steady_clock::now()));
        syncs_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    // A failed fsync may have dropped acknowledged pages: no more writes.
    enter_failed_state(Error{core::make_error_code(errc::storage_failed),
                             fmt::format("the store refuses writes after a failed sync ({}); "
                                         "restart spiritd to recover",
                                         r.error().detail)});
}

void Writer::enter_failed_state(const Error& failure) {
    std::lock_guard lock(mutex_);
    if (!failure_) failure_ = failure;
}

Writer::Classified Writer::classify(const Error& error, std::string_view context) const {
    if (error.code == std::error_code(MDB_MAP_FULL, lmdb_category())) {
        return {Error{core::make_error_code(errc::storage_full),
                      fmt::format("{}: the LMDB map of {} bytes is full; raise storage.map_size or "
                                  "trim streams",
                                  context, env_.map_bytes())},
                std::nullopt};
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
            return {Error{core::make_error_code(errc::storage_full),
                          fmt::format("{}: disk full ({} bytes free in {}); appends resume when "
                                      "space is freed",
                                      context, free_bytes, options_.data_dir.string())},
                    std::nullopt};
        }
    }
    Classified out{Error{core::make_error_code(errc::storage_io),
                         fmt::format("{}: {}", context, error.detail)},
                   std::nullopt};
    const bool panic = error.code == std::error_code(MDB_PANIC, lmdb_category());
    if (io || panic) {
        out.failure = Error{core::make_error_code(errc::storage_failed),
                            fmt::format("the store refuses writes after an I/O error ({}: {}); "
                                        "restart spiritd to recover",
                                        context, error.detail)};
    }
    return out;
}

}  // namespace spirit::storage::detail
