// storage/writer.h: the group-commit writer thread (internal to storage/).
//
// The writer owns the only LMDB write transaction. It takes every queued
// operation (up to the group bounds), applies them in queue order in one
// transaction, commits once (one fsync in SyncMode::always) and completes
// each operation with the commit's outcome. Operations are sealed before
// they are queued: the writer puts bytes, it never hashes.
//
// Failure rules (docs/failure-modes.md):
// - an LMDB error fails the whole group; every stream in it is poisoned at
//   the generation of its ops, and queued ops of that stream with that
//   generation or older fail without being written (they chain on a head
//   that never became durable). The sequencer resets the head from LMDB and
//   bumps the generation, which unpoisons the stream;
// - MDB_MAP_FULL and a full disk (told apart from other I/O errors with
//   statvfs) are errc::storage_full and recoverable;
// - any other I/O error on commit or sync puts the writer in the failed
//   state: after EIO the kernel may have dropped dirty pages, so carrying on
//   could acknowledge what is not on disk. Every later op fails with
//   errc::storage_failed until the store is reopened.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "storage/file_reserve.h"
#include "storage/histogram.h"
#include "storage/lmdb.h"
#include "storage/store.h"
#include "storage/stream_record.h"

namespace spirit::storage::detail {

struct Dbis {
    MDB_dbi streams = 0;
    MDB_dbi events = 0;
    MDB_dbi ids = 0;
    MDB_dbi cursors = 0;
    MDB_dbi topology = 0;
    MDB_dbi quarantine = 0;
    MDB_dbi node = 0;
    MDB_dbi outbox = 0;
};

// A producer event id to remember for the idempotency window.
struct DedupRecord {
    core::TimestampNs ts;
    core::EventId id;
    core::Seq seq;
};

// Sealed envelopes first_seq .. first_seq + ends.size() - 1, back to back in
// `data`; envelope i ends at ends[i].
struct AppendOp {
    core::Seq first_seq;
    core::Bytes data;
    std::vector<std::uint32_t> ends;
    core::Digest last_hash;
    core::Epoch last_epoch;
    core::TimestampNs last_ts;
    core::Epoch confirmed_epoch;         // the record's becomes at least this
    std::optional<StreamRecord> create;  // the stream's record, if this op creates it
    std::vector<DedupRecord> dedup;
};
// Moves the envelopes after `after` into quarantine, and their ids out of
// the ids database.
struct TruncateOp {
    core::Seq after;
};
// Sets the stream's confirmed epoch (the sequencer checked the position).
struct ConfirmOp {
    core::Epoch epoch;
};
// Puts a value into the `node` database.
struct NodeValueOp {
    std::string key;
    core::Bytes value;
};
struct TrimOp {
    core::Seq before;
};
// Nothing to write: completes when everything queued before it has.
struct BarrierOp {};
// Adds an encoded entry to the outbox, or removes one.
struct OutboxAddOp {
    std::uint64_t id;
    core::Bytes value;
};
struct OutboxRemoveOp {
    std::uint64_t id;
};
// Creates an empty stream.
struct CreateOp {
    StreamRecord record;
};
// A durable consumer's position. Positions only move forward.
struct CursorOp {
    std::string consumer;
    core::Seq seq;
};
// Gives a stream's record another policy.
struct PolicyOp {
    core::StreamPolicy policy;
};
// Removes a stream: its record and cursors in the first transaction (the
// stream is gone from then on), its events in bounded slices after.
struct DeleteOp {
    bool record_removed = false;
};

// Whether a failed op poisoned its stream: the sequencer must then reset the
// stream's head from LMDB and move to a new generation.
enum class Poisoned { no, yes };

using OpCallback = std::move_only_function<void(core::Result<void>, Poisoned)>;

struct WriteOp {
    core::StreamId stream_id;
    std::string stream_name;
    using Body = std::variant<AppendOp, TruncateOp, TrimOp, BarrierOp, CursorOp, DeleteOp, CreateOp,
                              OutboxAddOp, OutboxRemoveOp, ConfirmOp, NodeValueOp, PolicyOp>;

    std::uint64_t generation = 0;  // of the stream's head when the op was sequenced
    Body body;
    OpCallback done;

    std::uint64_t queued_bytes() const;
};

struct WriterOptions {
    std::filesystem::path data_dir;  // for statvfs when classifying errors
    SyncMode sync_mode = SyncMode::always;
    std::uint32_t sync_period_ms = 100;
    std::uint32_t group_events_max = 65'536;
    std::uint64_t group_bytes_max = std::uint64_t{64} << 20;
    std::uint64_t queue_bytes_max = std::uint64_t{256} << 20;
    std::uint64_t dedup_window_ms = 120'000;
    std::uint64_t preallocate_bytes = 0;  // see FileReserve
    std::function<core::TimestampNs()> clock;
};

class Writer {
 public:
    // REQUIRES: `env` outlives the writer. Starts the thread.
    Writer(Env& env, Dbis dbis, WriterOptions options);
    ~Writer();  // stop()
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Whether an op of `bytes` fits in the queue now. Submitters hold the
    // sequencer lock, so only the writer runs between this check and
    // submit(), and it only shrinks the queue.
    bool has_room(std::uint64_t bytes) const;
    // Queues an op; its `done` runs exactly once. REQUIRES: stop() was not called.
    void submit(WriteOp op);

    // Completes everything queued, then stops and joins the thread. Idempotent.
    void stop();

    // Runs the callbacks of finished ops on this thread; returns how many.
    std::size_t drain_completed();
    // Blocks until some completion is waiting or `timeout` passes.
    void wait_for_completions(std::chrono::milliseconds timeout);
    void set_commit_notifier(std::function<void()> notifier);

    // Set once an unrecoverable I/O error happened.
    std::optional<core::Error> failure() const;
    StoreStats stats() const;
    // Commit latency, sync latency and batch size histograms (thread-safe).
    CommitMetrics commit_metrics() const;

 private:
    enum class Applied { done, partial };

    // An error as the writer reports it, and whether it puts the store in
    // the failed state (see the failure rules above).
    struct Classified {
        core::Error error;
        std::optional<core::Error> failure;  // set: enter the failed state with it
    };

    void run();
    std::vector<WriteOp> take_group(std::unique_lock<std::mutex>& lock);
    void process_group(std::vector<WriteOp>& group);
    // The ops of `group` that may be written; the others (after the failed
    // state, or poisoned) are completed with their error.
    std::vector<WriteOp> take_live(std::vector<WriteOp>& group);
    // Applies `live` in order until an op fails, is partial (it and the ops
    // after it move to carry_ and leave `live`), or all are applied.
    struct AppliedOps {
        std::size_t applied;  // index of the failing op, or live.size()
        std::optional<core::Error> error;
    };
    AppliedOps apply_ops(Txn& txn, std::vector<WriteOp>& live);
    // After a failed transaction: fails the ops in it and carries the
    // untried ones to the next.
    void fail_txn(std::vector<WriteOp>& live, std::size_t applied, const core::Error& error,
                  std::uint64_t group_events);
    // After a commit: counters, sync scheduling, completions.
    void committed(std::vector<WriteOp>& live, std::uint64_t group_events,
                   std::uint64_t group_bytes);
    core::Result<Applied> apply(Txn& txn, WriteOp& op);
    core::Result<void> apply_append(Txn& txn, WriteOp& op, AppendOp& body);
    core::Result<void> put_ids(Txn& txn, const WriteOp& op, const std::vector<DedupRecord>& ids);
    core::Result<Applied> apply_truncate(Txn& txn, WriteOp& op, const TruncateOp& body);
    // Moves one envelope of the truncated range into quarantine and its id
    // out of the ids database. REQUIRES: `value` decoded (check_slice).
    core::Result<void> quarantine_one(Txn& txn, const WriteOp& op, core::Seq seq,
                                      core::ByteView value, Cursor& quarantine);
    core::Result<void> apply_confirm(Txn& txn, WriteOp& op, const ConfirmOp& body);
    core::Result<void> apply_node_value(Txn& txn, const NodeValueOp& body);
    core::Result<Applied> apply_trim(Txn& txn, WriteOp& op, const TrimOp& body);
    core::Result<void> apply_cursor(Txn& txn, WriteOp& op, const CursorOp& body);
    core::Result<void> put_next_stream_id(Txn& txn, core::StreamId created);
    core::Result<Applied> apply_delete(Txn& txn, WriteOp& op, DeleteOp& body);
    core::Result<StreamRecord*> record_for(Txn& txn, const WriteOp& op);
    core::Result<void> put_records(Txn& txn);
    core::Result<void> refresh_last_event_key(Txn& txn);
    // The last keys of the events and ids databases as LMDB holds them, read
    // when the writer starts.
    core::Result<void> load_last_keys();
    // Whether `key` may be put with MDB_APPEND after `last`.
    bool at_end(core::ByteView key, const std::vector<std::byte>& last) const;
    core::Result<void> prune_ids(Txn& txn);
    // An upper bound on how far past the pages in use a transaction of
    // `ops` writes (FileReserve's rule); FileReserve::unbounded if unknown.
    static std::uint64_t growth_bound(const std::vector<WriteOp>& ops,
                                      std::optional<std::uint64_t> free_list_pages,
                                      std::uint64_t page);
    void periodic_sync();
    // Pure: says what `error` means; enter_failed_state applies it.
    Classified classify(const core::Error& error, std::string_view context) const;
    void enter_failed_state(const core::Error& failure);
    void fail_group(std::vector<WriteOp>& ops, std::size_t first, std::size_t end,
                    const core::Error& error);
    void complete(WriteOp& op, core::Result<void> status, Poisoned poisoned = Poisoned::no);
    void reject_and_poison(WriteOp& op, const core::Error& error);
    void publish_completions();

    Env& env_;
    const Dbis dbis_;
    const WriterOptions options_;

    // Shared with submitters, under mutex_.
    mutable std::mutex mutex_;
    std::condition_variable queue_cv_;
    std::deque<WriteOp> queue_;
    std::uint64_t queued_bytes_ = 0;
    bool stopping_ = false;
    std::optional<core::Error> failure_;

    // Finished ops waiting for drain_completed(), under completed_mutex_.
    struct Completion {
        OpCallback done;
        core::Result<void> status;
        Poisoned poisoned;
    };
    mutable std::mutex completed_mutex_;
    std::condition_variable completed_cv_;
    std::vector<Completion> completed_;
    std::function<void()> notifier_;

    // Writer-thread only.
    std::deque<WriteOp> carry_;  // ops a partial op pushed back, ahead of queue_
    std::vector<Completion> finished_;
    std::map<core::StreamId, std::pair<std::uint64_t, core::Error>> poisoned_;
    std::map<std::string, StreamRecord, std::less<>> dirty_records_;
    // The largest keys of the events and ids databases: a put past them uses
    // MDB_APPEND. Unknown (every put in place) if they could not be read.
    std::vector<std::byte> last_event_key_;
    std::vector<std::byte> last_id_key_;
    bool last_keys_known_ = false;
    bool unsynced_ = false;
    std::chrono::steady_clock::time_point next_sync_;

    std::atomic<std::uint64_t> commits_{0};
    std::atomic<std::uint64_t> syncs_{0};
    std::atomic<std::uint64_t> events_written_{0};
    std::atomic<std::uint64_t> bytes_written_{0};
    std::atomic<std::uint64_t> failed_commits_{0};
    std::atomic<std::uint64_t> preallocated_{0};
    std::atomic<std::uint64_t> preallocate_bound_misses_{0};
    // Recorded by the writer thread, read by any: microseconds from a write
    // transaction's begin to its commit; of the call that makes a commit
    // durable (the commit in SyncMode::always, the sync in periodic); events
    // per committed transaction.
    Histogram commit_us_{duration_us_bounds()};
    Histogram sync_us_{duration_us_bounds()};
    Histogram batch_events_{batch_events_bounds()};

    const std::uint64_t page_bytes_;  // LMDB's page size
    FileReserve reserve_;

    std::thread thread_;  // last: starts after every member above exists
};

}  // namespace spirit::storage::detail
