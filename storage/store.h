// storage/store.h: the stream store, the one storage API the daemon uses.
//
// One Store per data dir: an LMDB environment (the databases of
// docs/format.md "Storage layout"), a sequencer that orders and seals
// appends, and a writer thread that owns the only write transaction and
// commits appends in groups (one fsync for many appends).
//
// Threads. Every write (append, append_replicated, confirm_epoch, truncate,
// trim, ...) is thread-safe; appends sequence on the calling thread (seq, timestamp, chain hash)
// under a short internal lock and queue the sealed batch for the writer thread, so hashing one
// batch overlaps the writer's puts and fsync of the previous one. Completions come back through
// drain_completed(), which runs callbacks on the thread that calls it; set_commit_notifier() says
// when to call it (the daemon binds it to uv_async_send). Reads are thread-safe and run in their
// own LMDB read transactions; they see committed (durable, in sync mode `always`) data.
//
// Durability. A completion reports success only after the commit holding the
// batch returned; in sync mode `always` that commit was fsynced. A failed
// commit fails every request in it and every request sequenced on top of
// it for the same streams; those streams' heads are then reset from LMDB, so
// nothing unpersisted is ever acknowledged.
//
// Epochs. Each stream copy has a position (confirmed epoch, last seq, last
// hash) (DESIGN.md "Topology"). The confirmed epoch is the epoch of the last
// master this copy has durably aligned with; it only grows, and no event in
// the copy has a higher epoch. append and append_replicated raise it to the
// request's epoch, confirm_epoch sets it at a given position, and every
// write that carries an epoch below it is refused with errc::stale_epoch.
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
#include "storage/histogram.h"

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

// A copy of what one append sealed, for a master that sends it to its
// replicas while its own commit runs. Envelope i (seq first_seq + i, hash
// hashes[i]) is data[ends[i - 1], ends[i]), the first from 0.
struct Sealed {
    core::Seq first_seq{0};
    core::Bytes data;
    std::vector<std::uint32_t> ends;
    std::vector<core::Digest> hashes;
};

// One append. Views: they need only live until append() returns.
struct AppendRequest {
    std::string_view stream;
    std::span<const core::EventDraft> events;
    // Optimistic concurrency: the stream's last seq must equal this (Seq{0}
    // for an empty or missing stream) or the append fails with
    // expected_seq_mismatch. A batch whose events are all duplicates
    // succeeds regardless (it is a retry of an append that already happened).
    std::optional<core::Seq> expected_last_seq;
    // The epoch of the master sequencing the events (>= 1; a cluster without
    // elections runs in Epoch{1}). errc::stale_epoch below the stream's
    // confirmed epoch; the stream's confirmed epoch becomes this one when
    // events are stored (a stream the append creates starts confirmed in it).
    core::Epoch epoch{1};
    CreateMode create = CreateMode::if_missing;
    core::StreamPolicy policy;  // used only if the append creates the stream
    // If set, append() fills it with a copy of the envelopes it sealed
    // before it returns (left empty when it sealed none: all duplicates).
    Sealed* sealed = nullptr;
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
    // The sending master's epoch (>= 1). No envelope may carry a higher one.
    core::Epoch epoch{1};
    core::Seq prev_seq;
    core::Digest prev_hash;
    std::span<const core::ByteView> envelopes;
    // Where the sending master's copy ended when it completed the stream in
    // `epoch`: its history. The copy records `epoch` as its confirmed epoch
    // only once it holds that seq (until then it keeps the one it had), so
    // that a copy confirmed in an epoch holds everything that epoch's master
    // started from, and ranking copies by (confirmed epoch, seq) never puts
    // a shorter copy first (DESIGN.md "Topology"). Seq{0}: at once.
    core::Seq history;
};

// A copy's alignment with a master, for confirm_epoch. Views: they need only
// live until confirm_epoch() returns.
struct ConfirmEpoch {
    std::string_view stream;
    core::StreamPolicy policy;  // used only if the stream is created here
    core::Epoch epoch;          // >= 1
    // The position this copy must end at exactly: its last seq and the hash
    // of that seq (the base hash for an empty retained stream).
    core::Seq seq;
    core::Digest hash;
    // As in ReplicatedAppend: a position short of it is checked, and the
    // call answers once what is queued is durable, but `epoch` is not
    // recorded (the copy lacks part of that master's history).
    core::Seq history;
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
    core::Seq first_seq;          // first retained seq; last_seq + 1 when empty
    core::Seq last_seq;           // Seq{0} when nothing was ever appended
    core::Epoch last_epoch;       // of the last event; Epoch{0} when none was ever appended
    core::Epoch confirmed_epoch;  // see "Epochs" above; Epoch{0}: none yet
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

// One envelope in the quarantine database: removed from a stream's copy by
// truncate_after (a divergent suffix on rejoin). Owned.
struct QuarantinedEvent {
    core::Seq seq;
    core::Epoch epoch;        // the envelope's epoch
    core::Envelope envelope;  // decoded, exactly as it was stored in the stream
};

// Where a quarantine page ended; pass it back as QuarantineReadOptions::after.
struct QuarantinePosition {
    core::Seq seq;
    core::Epoch epoch;
    core::Digest hash;  // of the envelope (two envelopes may share a seq and an epoch)
};

struct QuarantineReadOptions {
    std::optional<QuarantinePosition> after;       // nullopt: from the first entry
    std::size_t events_max = 1000;                 // at most quarantine_read_events_max
    std::size_t bytes_max = std::size_t{4} << 20;  // at least one entry is always returned
};
inline constexpr std::size_t quarantine_read_events_max = 10'000;

struct QuarantinePage {
    // In (seq, epoch, hash) order.
    std::vector<QuarantinedEvent> events;
    // Set when the page was cut by a bound and more entries may follow.
    std::optional<QuarantinePosition> next;
};

// The epochs of a stream's quarantined events.
struct QuarantineEpochCount {
    core::Epoch epoch;
    std::uint64_t count = 0;
};

// What the quarantine holds for one stream name.
struct QuarantineSummary {
    std::string stream;
    std::uint64_t count = 0;
    core::Seq seq_min;                         // lowest quarantined seq
    core::Seq seq_max;                         // highest quarantined seq
    std::vector<QuarantineEpochCount> epochs;  // ascending by epoch
};

// Bounds of the node-value API (put_node_value).
inline constexpr std::size_t node_key_bytes_max = 64;
inline constexpr std::size_t node_value_bytes_max = std::size_t{64} << 10;

// At most this many seqs per hashes_at call.
inline constexpr std::size_t hashes_at_seqs_max = 4096;

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

// Latency and size histograms of the writer's commits, since open
// (storage/histogram.h). Durations are in microseconds.
struct CommitMetrics {
    // From a write transaction's begin to its commit returning (the puts,
    // and in SyncMode::always the flushes). Committed transactions only.
    HistogramSnapshot commit_us;
    // The call that makes commits durable: LMDB's commit in SyncMode::always
    // (its page writes and two device flushes), the periodic fsync in
    // SyncMode::periodic; nothing in SyncMode::none.
    HistogramSnapshot sync_us;
    // Events per committed transaction.
    HistogramSnapshot batch_events;
};

// How much room the store has (Store::space).
struct StoreSpace {
    std::uint64_t map_bytes = 0;   // the most the store may use (storage.map_size)
    std::uint64_t used_bytes = 0;  // of the data file, up to LMDB's last page in use
    std::uint64_t file_bytes = 0;  // data.mdb's size on disk (preallocated zeros included)
    // The file system holding the data dir: bytes free to an unprivileged
    // process, and its size.
    std::uint64_t disk_free_bytes = 0;
    std::uint64_t disk_bytes = 0;
};

// What restore_copy installed.
struct RestoredCopy {
    std::filesystem::path data_file;  // the data dir's data.mdb
    std::uint64_t bytes = 0;
};

// Installs a copy made by Store::copy_to (a backup) as the store of
// `data_dir`, which is created if missing: checks that `copy` is an LMDB
// data file holding a spirit store of this format, copies it to
// data_dir/data.mdb through a temporary file (fsynced, then renamed, then
// the directory fsynced), holding the data dir's lock meanwhile. Refusals:
// invalid_argument naming `copy` (missing, unreadable, not a spirit store),
// already_exists (the data dir holds a store: never overwritten), busy (a
// process has the data dir open), and I/O errors naming the file.
[[nodiscard]] core::Result<RestoredCopy> restore_copy(const std::filesystem::path& copy,
                                                      const std::filesystem::path& data_dir);

class Store {
 public:
    // Opens (creating if needed) the store in options.data_dir and starts the
    // writer thread. Serves at once: nothing is replayed; only the
    // idempotency window (bounded by dedup_events_max) is loaded.
    // Fails if another process has the data dir open.
    [[nodiscard]] static core::Result<std::unique_ptr<Store>> open(StoreOptions options);

    // Whether this open created the LMDB environment: the data dir was new
    // or wiped, so it holds no streams, no node values and no quarantine.
    // A node that was a member before must then recover from its peers
    // (DESIGN.md "Topology") rather than trust its empty copies.
    bool was_created() const;

    // Finishes queued commits, stops the writer, runs remaining callbacks.
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Sequences and seals the batch and queues it for the writer. Immediate
    // refusals are returned and `done` is then never called: invalid stream
    // name, a field over its limit, expected_seq_mismatch, not_found
    // (must_exist), stale_epoch (request.epoch below the stream's confirmed
    // epoch, naming the stream and both epochs), overloaded, storage_failed,
    // shutting_down. Otherwise `done` runs exactly once from drain_completed().
    // Event ids given by the producer enter the idempotency window at the
    // seq they get; generated ones do not.
    [[nodiscard]] core::Result<void> append(const AppendRequest& request, AppendCallback done);

    // Appends envelopes sealed by the stream's master, byte for byte, after
    // checking that they continue this copy: the first must chain on
    // (prev_seq, prev_hash), which must be this copy's last seq and hash (a
    // stream new here starts at prev_seq + 1 with base hash prev_hash, and
    // is confirmed in request.epoch); each must decode, name the stream,
    // carry the next seq and an epoch not below the one before nor above
    // request.epoch, and chain on it. Envelopes this copy already holds
    // (after a resend) are skipped if their hashes match. When envelopes are
    // stored, the copy's confirmed epoch becomes max(confirmed, request.epoch)
    // (envelopes that chain on this copy from master e align it with e).
    // Their event ids are not recorded (that would cost every event on every
    // slave): rebuild_id_window() reads them from the events when this node
    // becomes master.
    // Refusals, returned at once: stale_epoch (request.epoch below the
    // confirmed epoch), hash_mismatch (naming stream, seq and both hashes),
    // invalid_argument (a gap, naming both positions; or an envelope whose
    // stream, seq or epoch field is wrong, naming the field), malformed,
    // corrupt, storage_failed, shutting_down.
    [[nodiscard]] core::Result<void> append_replicated(const ReplicatedAppend& request,
                                                       AppendCallback done);

    // Rebuilds the idempotency window from the events themselves: the ids of
    // every stream's events inside the window (dedup_window_ms), the newest
    // dedup_events_max of them. Call it when this copy becomes master, after
    // it holds every event it will answer for, before it orders anything: a
    // retry of an event the previous master stored then gets its original
    // seq. Reads at most dedup_events_max events per stream; appends wait
    // meanwhile. Errors of the reads (corrupt) are returned.
    [[nodiscard]] core::Result<void> rebuild_id_window();

    // append(), then waits for its completion (draining completions itself).
    [[nodiscard]] core::Result<AppendResult> append_sync(const AppendRequest& request);

    // Durably records that this copy is aligned with the master of
    // request.epoch: sets the stream's confirmed epoch to request.epoch if
    // the copy ends exactly at (request.seq, request.hash). A missing stream
    // is created empty at that position: first seq = seq + 1, last seq = seq,
    // base and last hash = hash, with request.policy. Ordered with the
    // stream's appends: checked against everything sequenced before it, and
    // completed after it is durable. Confirming the epoch the copy already
    // has, at its end, is a no-op that succeeds once what is queued before
    // is durable. Refusals, returned at once (`done` is then never called):
    // stale_epoch (below the confirmed epoch, naming both), invalid_argument
    // (the copy ends at another seq, naming stream, both positions and
    // hashes; epoch 0; seq 0 with a hash other than the genesis hash),
    // hash_mismatch (the same seq with another hash, naming both hashes),
    // invalid stream name, storage_failed, shutting_down.
    [[nodiscard]] core::Result<void> confirm_epoch(const ConfirmEpoch& request, DoneCallback done);

    // Moves the envelopes after `seq` into the quarantine database and makes
    // `seq` the stream's last. Their event ids leave the idempotency window
    // and the ids database, so re-publishing a quarantined event with its
    // id later stores it anew. The confirmed epoch is unchanged. REQUIRES
    // the stream not be appended to concurrently by another thread (rejoin
    // quiesces it first). Before queueing, every committed envelope to be
    // removed is decoded under the sequencer lock (appends to every stream
    // wait meanwhile; the divergent suffixes of rejoin are short); one that
    // does not decode fails the truncation with errc::corrupt naming the
    // stream and seq, and nothing is moved. errc::busy if `seq` is not yet
    // committed; not_found for a missing stream; invalid_argument below the
    // trimmed start.
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
    // creates a new stream of that name. Its quarantined events are kept
    // (the quarantine is the operators'); they stay listed under the
    // stream's name, with those of any later stream of that name.
    // errc::not_found if there is none.
    [[nodiscard]] core::Result<void> delete_stream(std::string_view stream, DoneCallback done);
    // Gives a stream's record `policy` (spirit stream alter: its retention).
    // errc::not_found if there is none.
    [[nodiscard]] core::Result<void> set_policy(std::string_view stream,
                                                const core::StreamPolicy& policy,
                                                DoneCallback done);

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

    // Node state the daemon persists (its id, epoch, votes ...): values
    // under short names in the `node` database. `key`: 1..node_key_bytes_max
    // bytes of A-Z a-z 0-9 _ . : - (not the store's own "format" and
    // "next_stream_id": invalid_argument). `value`: opaque, at most
    // node_value_bytes_max bytes (limit_exceeded). put_node_value is written
    // through the writer like appends: `done` reports success after the
    // commit holding it (fsynced in SyncMode::always); refusals are returned
    // at once (also storage_failed, shutting_down). node_value reads the
    // committed value; nullopt if none was ever put.
    [[nodiscard]] core::Result<std::optional<core::Bytes>> node_value(std::string_view key) const;
    [[nodiscard]] core::Result<void> put_node_value(std::string_view key, core::ByteView value,
                                                    DoneCallback done);

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

    // The committed chain hash at each of `seqs`, in one read transaction,
    // for finding where two copies part (a binary search on (seq, hash)):
    // Seq{0}: the genesis hash; first_seq - 1: the base hash; a retained
    // seq: its envelope's hash as stored (not re-verified: verify() does
    // that); below first_seq - 1 or above last_seq: nullopt. errc::not_found
    // for a missing stream, limit_exceeded over hashes_at_seqs_max seqs,
    // corrupt for a retained seq whose envelope is missing or undecodable.
    [[nodiscard]] core::Result<std::vector<std::optional<core::Digest>>> hashes_at(
        std::string_view stream, std::span<const core::Seq> seqs) const;

    // Every stream name with quarantined events, by name. One read
    // transaction over the quarantine's keys (and one envelope per stream,
    // for its name): its cost grows with the quarantine, which is for
    // operators. errc::corrupt if a stream's entries have no decodable
    // envelope and no live stream names them.
    [[nodiscard]] core::Result<std::vector<QuarantineSummary>> quarantine_streams() const;
    // A page of `stream`'s quarantined events after options.after, in
    // (seq, epoch, hash) order, at most options.events_max (capped at
    // quarantine_read_events_max) and options.bytes_max of envelopes. An
    // unknown name or an empty quarantine gives an empty page. errc::corrupt
    // naming the stream and seq for an entry that does not decode (only a
    // store written before truncation checked envelopes can hold one).
    [[nodiscard]] core::Result<QuarantinePage> quarantine_read(
        std::string_view stream, const QuarantineReadOptions& options) const;

    StoreStats stats() const;
    CommitMetrics commit_metrics() const;
    // The map, the data file and the disk. Thread-safe; errors of statvfs
    // and stat name the path.
    [[nodiscard]] core::Result<StoreSpace> space() const;

    // Hot backup. Writes a consistent copy of the whole store to `fd` with
    // LMDB's compacting copy (mdb_env_copyfd2, MDB_CP_COMPACT): the store as
    // one read transaction sees it, free pages left out, while appends go
    // on. Blocks the calling thread until the copy is written; `fd` may be a
    // pipe (a reader that stops reading stalls the copy). Thread-safe. While
    // it runs, its read transaction keeps LMDB from reusing the pages it
    // sees, so the data file may grow under a steady load. The copy is a
    // data file: restore_copy installs it. Errors: the copy's (an I/O error
    // writing to `fd`, EPIPE when the reader went away), naming `fd`.
    [[nodiscard]] core::Result<void> copy_to(int fd) const;
    // About the bytes copy_to would write now: the pages every database
    // uses, plus the two meta pages.
    [[nodiscard]] core::Result<std::uint64_t> copy_bytes_estimate() const;

    // Set once an I/O error made the store refuse writes (until reopened).
    std::optional<core::Error> failure() const;
    const StoreOptions& options() const;

    class Impl;

 private:
    explicit Store(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace spirit::storage
