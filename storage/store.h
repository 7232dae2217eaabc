// storage/store.h: the stream store, the one storage API the daemon uses.
//
// One Store per data dir: an LMDB environment (the databases of
// docs/format.md "Storage layout"), a sequencer that orders and seals
// appends, and a writer thread that owns the only write transaction and
// commits appends in groups (one fsync for many appends).
//
// Threads. append/truncate/trim are thread-safe; they sequence on the
// calling thread (seq, timestamp, chain hash) under a short internal lock
// and queue the sealed batch for the writer thread, so hashing one batch
// overlaps the writer's puts and fsync of the previous one. Completions come
// back through drain_completed(), which runs callbacks on the thread that
// calls it; set_commit_notifier() says when to call it (the daemon binds it
// to uv_async_send). Reads are thread-safe and run in their own LMDB read
// transactions; they see committed (durable, in sync mode `always`) data.
//
// Durability. A completion reports success only after the commit holding the
// batch returned; in sync mode `always` that commit was fsynced. A failed
// commit fails every request in it and every request sequenced on top of
// it for the same streams; those streams' heads are then reset from LMDB, so
// nothing unpersisted is ever acknowledged.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/envelope.h"
#include "core/function_ref.h"
#include "core/ids.h"
#include "core/result.h"
#include "core/stream_policy.h"

namespace spirit::storage {

// When a commit reaches the disk.
enum class SyncMode {
    always,    // fsync on every group commit before acknowledging it (default)
    periodic,  // acknowledge after commit, fsync every sync_period_ms
    none,      // leave it to the OS: a power loss may lose recent acknowledged events
};

struct StoreOptions {
    std::filesystem::path data_dir;
    // LMDB map size: the largest the store may grow. Virtual address space,
    // not memory. Default: 16 GiB.
    std::uint64_t map_bytes = std::uint64_t{16} << 30;
    SyncMode sync_mode = SyncMode::always;
    std::uint32_t sync_period_ms = 100;  // SyncMode::periodic only
    // Idempotency window: a repeated producer event id within this time and
    // count returns the original seq and stores nothing.
    std::uint64_t dedup_window_ms = 120'000;
    std::uint64_t dedup_events_max = 500'000;
    // Upper bounds of one group commit.
    std::uint32_t group_events_max = 65'536;
    std::uint64_t group_bytes_max = std::uint64_t{64} << 20;
    // Bytes of sealed batches waiting for the writer; append() answers
    // errc::overloaded above it.
    std::uint64_t queue_bytes_max = std::uint64_t{256} << 20;
    // How far ahead of the pages LMDB uses the data file is kept written
    // with zeros, so that commits overwrite pages instead of extending the
    // file (whose fsync then also writes allocation metadata). 0: off.
    std::uint64_t preallocate_bytes = std::uint64_t{8} << 20;
    // LMDB read slots (concurrent read transactions).
    std::uint32_t readers_max = 256;
    // Wall clock for timestamps and the idempotency window; tests inject one.
    std::function<core::TimestampNs()> clock;
};

// Whether append may create the stream.
enum class CreateMode { if_missing, must_exist };

// One append. Views: they need only live until append() returns.
struct AppendRequest {
    std::string_view stream;
    std::span<const core::EventDraft> events;
    // Optimistic concurrency: the stream's last seq must equal this (Seq{0}
    // for an empty or missing stream) or the append fails with
    // expected_seq_mismatch. A batch whose events are all duplicates
    // succeeds regardless (it is a retry of an append that already happened).
    std::optional<core::Seq> expected_last_seq;
    core::Epoch epoch{1};
    CreateMode create = CreateMode::if_missing;
    core::StreamPolicy policy;  // used only if the append creates the stream
};

// One publish kept in the outbox.
struct OutboxEntry {
    struct Event {
        core::EventId id;
        std::string type;
        core::Bytes metadata;
        core::Bytes payload;
    };
    std::uint64_t id = 0;  // increasing: the order entries were accepted in
    std::string stream;
    std::vector<Event> events;
};

// Envelopes a stream's master sealed, for append_replicated.
struct ReplicatedAppend {
    std::string_view stream;
    core::StreamPolicy policy;  // used only if the stream is new here
    core::Seq prev_seq;
    core::Digest prev_hash;
    std::span<const core::ByteView> envelopes;
};

struct Duplicate {
    std::uint32_t index;  // position in AppendRequest::events
    core::Seq seq;        // where the original is stored
};

struct AppendResult {
    // New events get consecutive seqs in batch order, skipping duplicates.
    // stored == 0 (all duplicates): first_seq and last_seq are Seq{0}.
    core::Seq first_seq;
    core::Seq last_seq;
    std::uint32_t stored = 0;
    std::vector<Duplicate> duplicates;
    core::Epoch epoch;
    core::TimestampNs timestamp_ns;
    core::Digest last_hash;  // of last_seq
};

using AppendCallback = std::move_only_function<void(core::Result<AppendResult>)>;
using DoneCallback = std::move_only_function<void(core::Result<void>)>;

struct StreamInfo {
    std::string name;
    core::StreamId id;
    core::StreamPolicy policy;
    core::Seq first_seq;  // first retained seq; last_seq + 1 when empty
    core::Seq last_seq;   // Seq{0} when nothing was ever appended
    core::Epoch last_epoch;
    core::TimestampNs last_timestamp_ns;
    core::Digest last_hash;
    core::Digest base_hash;  // hash of first_seq - 1 (genesis until trimmed)
    std::uint64_t event_count = 0;
    std::uint64_t event_bytes = 0;  // encoded envelope bytes retained
    core::TimestampNs created_ns;
};

// Whether a read checks each envelope's chain hash. `none` is for readers
// whose receiver verifies every link itself (replication to a slave); the
// envelopes are still decoded and their seqs and stream checked.
enum class Verification { chain, none };

struct ReadOptions {
    core::Seq from_seq{1};
    std::size_t events_max = 1024;
    std::size_t bytes_max = std::size_t{4} << 20;  // at least one event is always returned
    Verification verification = Verification::chain;
};

enum class Visit { next, stop };

// Called once per event in seq order, inside the read transaction: the views
// and `encoded` (the canonical stored bytes) are valid only during the call.
using EventVisitor = core::FunctionRef<Visit(const core::EnvelopeView&, core::ByteView encoded)>;

struct ReadSummary {
    std::size_t events = 0;
    std::size_t bytes = 0;
    core::Seq next_seq;  // where a following read continues
};

// First place a stream's chain breaks, as found by verify().
struct ChainBreak {
    core::Seq seq;
    std::string problem;  // names the seq and both hashes, or the decode error
};

struct VerifyReport {
    std::string stream;
    std::uint64_t events_checked = 0;
    core::Seq first_seq;
    core::Seq last_seq;
    std::optional<ChainBreak> first_break;
};

// Counters for benchmarks and status; monotonic since open.
struct StoreStats {
    std::uint64_t commits = 0;  // write transactions committed
    std::uint64_t syncs = 0;    // fsyncs issued (commits in `always`, timer in `periodic`)
    std::uint64_t events_written = 0;
    std::uint64_t bytes_written = 0;  // envelope bytes
    std::uint64_t failed_commits = 0;
    std::uint64_t queued_bytes = 0;        // sealed bytes waiting for the writer now
    std::uint64_t preallocated_bytes = 0;  // written zeros past LMDB's last page
    // Transactions that grew past the bound announced to the preallocation
    // helper (which then turned off); always 0 unless that bound is wrong.
    std::uint64_t preallocate_bound_misses = 0;
};

class Store {
 public:
    // Opens (creating if needed) the store in options.data_dir and starts the
    // writer thread. Serves at once: nothing is replayed; only the
    // idempotency window (bounded by dedup_events_max) is loaded.
    // Fails if another process has the data dir open.
    [[nodiscard]] static core::Result<std::unique_ptr<Store>> open(StoreOptions options);

    // Finishes queued commits, stops the writer, runs remaining callbacks.
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Sequences and seals the batch and queues it for the writer. Immediate
    // refusals are returned and `done` is then never called: invalid stream
    // name, a field over its limit, expected_seq_mismatch, not_found
    // (must_exist), overloaded, storage_failed, shutting_down. Otherwise
    // `done` runs exactly once from drain_completed().
    [[nodiscard]] core::Result<void> append(const AppendRequest& request, AppendCallback done);

    // Appends envelopes sealed by the stream's master, byte for byte, after
    // checking that they continue this copy: the first must chain on
    // (prev_seq, prev_hash), which must be this copy's last seq and hash (a
    // stream new here starts at prev_seq + 1 with base hash prev_hash); each
    // must decode, name the stream, carry the next seq and an epoch not below
    // the one before, and chain on it. Envelopes this copy already holds
    // (after a resend) are skipped if their hashes match. Refusals, returned
    // at once: hash_mismatch (naming stream, seq and both hashes),
    // invalid_argument (a gap, naming both positions), malformed, corrupt.
    [[nodiscard]] core::Result<void> append_replicated(const ReplicatedAppend& request,
                                                       AppendCallback done);

    // append(), then waits for its completion (draining completions itself).
    [[nodiscard]] core::Result<AppendResult> append_sync(const AppendRequest& request);

    // Moves the envelopes after `seq` into the quarantine database and makes
    // `seq` the stream's last. REQUIRES the stream not be appended to
    // concurrently by another thread (rejoin quiesces it first). errc::busy if
    // `seq` is not yet committed; not_found for a missing stream; invalid_argument
    // below the trimmed start.
    [[nodiscard]] core::Result<void> truncate_after(std::string_view stream, core::Seq seq,
                                                    DoneCallback done);
    // Removes the events before `seq` (retention). The base hash becomes the
    // hash of seq - 1, so the retained suffix still verifies.
    [[nodiscard]] core::Result<void> trim_before(std::string_view stream, core::Seq seq,
                                                 DoneCallback done);
    // Blocking forms of the two above.
    [[nodiscard]] core::Result<void> truncate_after_sync(std::string_view stream, core::Seq seq);
    [[nodiscard]] core::Result<void> trim_before_sync(std::string_view stream, core::Seq seq);

    // Creates an empty stream with `policy`. errc::already_exists if it
    // exists (or is being created by an append in flight).
    [[nodiscard]] core::Result<void> create_stream(std::string_view stream,
                                                   const core::StreamPolicy& policy,
                                                   DoneCallback done);
    // Deletes a stream: from the completion on, it does not exist; its
    // events are removed in bounded slices. An append after the request
    // creates a new stream of that name. errc::not_found if there is none.
    [[nodiscard]] core::Result<void> delete_stream(std::string_view stream, DoneCallback done);

    // Stores a durable consumer's position in a stream (positions only move
    // forward). errc::not_found for a missing stream.
    [[nodiscard]] core::Result<void> set_cursor(std::string_view consumer, std::string_view stream,
                                                core::Seq seq, DoneCallback done);
    // A durable consumer's stored position; nullopt if it never acked.
    [[nodiscard]] core::Result<std::optional<core::Seq>> cursor(std::string_view consumer,
                                                                std::string_view stream) const;

    // The outbox: publishes a slave accepted while the master was
    // unreachable, kept durably, in order, until the master has them.
    // REQUIRES: every event has an id (so forwarding twice is harmless).
    [[nodiscard]] core::Result<void> outbox_add(std::string_view stream,
                                                std::span<const core::EventDraft> events,
                                                DoneCallback done);
    // The oldest `entries_max` entries, oldest first.
    [[nodiscard]] core::Result<std::vector<OutboxEntry>> outbox_read(std::size_t entries_max) const;
    [[nodiscard]] core::Result<void> outbox_remove(std::uint64_t id, DoneCallback done);
    // Events in the outbox now (committed entries).
    [[nodiscard]] core::Result<std::uint64_t> outbox_events() const;

    // Runs the callbacks of everything the writer finished; returns how many.
    std::size_t drain_completed();
    // Called from the writer thread after each group commit (success or
    // failure). Set it before the first append; it must be cheap and
    // thread-safe (uv_async_send is).
    void set_commit_notifier(std::function<void()> notifier);

    // Reads committed events of `stream` from options.from_seq, verifying
    // each envelope's chain hash. A chain break is errc::hash_mismatch;
    // undecodable bytes errc::corrupt. A seq below the first retained one
    // starts at the first retained one.
    [[nodiscard]] core::Result<ReadSummary> read(std::string_view stream,
                                                 const ReadOptions& options,
                                                 EventVisitor visitor) const;
    // The first seq whose timestamp is >= `ts` (binary search); last_seq + 1
    // if there is none.
    [[nodiscard]] core::Result<core::Seq> seq_at_time(std::string_view stream,
                                                      core::TimestampNs ts) const;
    // For retention by size: the first seq from which the retained events
    // take at most `bytes_max` bytes, walking forward from the first retained
    // event at most `events_max_walked` events (so one call is bounded; call
    // again to go further). Not verified: only sizes are read.
    [[nodiscard]] core::Result<core::Seq> seq_keeping_bytes(std::string_view stream,
                                                            std::uint64_t bytes_max,
                                                            std::uint64_t events_max_walked) const;
    // The last committed event, verified; nullopt for an empty stream.
    [[nodiscard]] core::Result<std::optional<core::Envelope>> read_last(
        std::string_view stream) const;

    [[nodiscard]] core::Result<std::optional<StreamInfo>> stream_info(
        std::string_view stream) const;
    [[nodiscard]] core::Result<std::vector<StreamInfo>> list_streams() const;
    // The streams named after `after` (by byte order; "" from the first), at
    // most `limit` of them.
    [[nodiscard]] core::Result<std::vector<StreamInfo>> list_streams(std::string_view after,
                                                                     std::size_t limit) const;

    // Walks the whole stream and checks every hash link and seq.
    [[nodiscard]] core::Result<VerifyReport> verify(std::string_view stream) const;

    // Envelopes moved to quarantine for `stream`, in (seq, epoch) order.
    [[nodiscard]] core::Result<std::vector<core::Envelope>> quarantined(
        std::string_view stream) const;

    StoreStats stats() const;
    // Set once an I/O error made the store refuse writes (until reopened).
    std::optional<core::Error> failure() const;
    const StoreOptions& options() const;

    class Impl;

 private:
    explicit Store(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace spirit::storage
