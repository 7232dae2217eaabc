// storage/store_impl.h: Store's private state, shared by store.cc (open and
// the sequencer) and store_read.cc (the read side). Internal to storage/.
#pragma once

#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/hash_chain.h"
#include "storage/dedup_window.h"
#include "storage/lmdb.h"
#include "storage/store.h"
#include "storage/stream_record.h"
#include "storage/writer.h"

namespace spirit::storage {

struct TransparentStringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

class Store::Impl {
 public:
    Impl(StoreOptions options, int lock_fd, detail::Env env, detail::Dbis dbis);
    ~Impl();

    // --- sequencer (store.cc) ---

    // What the sequencer knows of a stream: the head of everything sequenced,
    // durable or not. Guarded by mutex_.
    struct Head {
        core::StreamId id;
        core::Seq last_seq;
        core::Digest last_hash;
        core::Epoch last_epoch;
        core::TimestampNs last_ts;
        core::Epoch confirmed_epoch;
        std::uint64_t generation = 1;  // bumped when the head is reset after a failure
    };
    static Head head_of(const detail::StreamRecord& record, std::uint64_t generation);

    core::Result<void> append(const AppendRequest& request, AppendCallback done);
    core::Result<void> append_replicated(const ReplicatedAppend& request, AppendCallback done);
    core::Result<void> confirm_epoch(const ConfirmEpoch& request, DoneCallback done);
    core::Result<void> truncate_after(std::string_view stream, core::Seq seq, DoneCallback done);
    core::Result<void> trim_before(std::string_view stream, core::Seq seq, DoneCallback done);
    core::Result<void> create_stream(std::string_view stream, const core::StreamPolicy& policy,
                                     DoneCallback done);
    core::Result<void> delete_stream(std::string_view stream, DoneCallback done);
    core::Result<void> set_policy(std::string_view stream, const core::StreamPolicy& policy,
                                  DoneCallback done);
    core::Result<void> set_cursor(std::string_view consumer, std::string_view stream, core::Seq seq,
                                  DoneCallback done);
    core::Result<std::optional<core::Seq>> cursor(std::string_view consumer,
                                                  std::string_view stream) const;
    core::Result<void> outbox_add(std::string_view stream, std::span<const core::EventDraft> events,
                                  DoneCallback done);
    core::Result<std::vector<OutboxEntry>> outbox_read(std::size_t entries_max) const;
    core::Result<void> outbox_remove(std::uint64_t id, DoneCallback done);
    core::Result<std::uint64_t> outbox_events() const;
    core::Result<void> put_node_value(std::string_view key, core::ByteView value,
                                      DoneCallback done);
    // Blocks until `*finished` is set, draining completions meanwhile.
    void wait_until(const std::atomic<bool>& finished);

    core::Result<void> load_dedup_window();
    core::Result<void> rebuild_id_window();
    // Sorts `ids` newest first and keeps at most dedup_events_max of them.
    void keep_newest(std::vector<detail::IdEntry>& ids) const;

    // --- reads (store_read.cc) ---

    core::Result<std::optional<detail::StreamRecord>> record(const detail::Txn& txn,
                                                             std::string_view stream) const;
    core::Result<ReadSummary> read(std::string_view stream, const ReadOptions& options,
                                   EventVisitor visitor) const;
    core::Result<core::Seq> seq_at_time(std::string_view stream, core::TimestampNs ts) const;
    core::Result<std::optional<core::Envelope>> read_last(std::string_view stream) const;
    core::Result<core::Seq> seq_keeping_bytes(std::string_view stream, std::uint64_t bytes_max,
                                              std::uint64_t events_max_walked) const;
    core::Result<std::optional<StreamInfo>> stream_info(std::string_view stream) const;
    core::Result<std::vector<StreamInfo>> list_streams(std::string_view after,
                                                       std::size_t limit) const;
    core::Result<VerifyReport> verify(std::string_view stream) const;
    core::Result<std::vector<std::optional<core::Digest>>> hashes_at(
        std::string_view stream, std::span<const core::Seq> seqs) const;
    core::Result<std::vector<QuarantineSummary>> quarantine_streams() const;
    core::Result<QuarantinePage> quarantine_read(std::string_view stream,
                                                 const QuarantineReadOptions& options) const;
    core::Result<std::optional<core::Bytes>> node_value(std::string_view key) const;

    const StoreOptions options_;
    detail::Writer& writer() { return *writer_; }
    const detail::Writer& writer() const { return *writer_; }
    void close();

 private:
    core::Result<Head*> head_for(std::string_view stream, CreateMode create,
                                 std::optional<detail::StreamRecord>& created,
                                 const core::StreamPolicy& policy, core::TimestampNs now);
    // The head of a stream that must exist, for an op on it. REQUIRES: mutex_ held.
    core::Result<Head*> existing_head(std::string_view stream);
    core::Result<void> validate(const AppendRequest& request) const;
    // Whether writes are accepted now. REQUIRES: mutex_ held.
    core::Result<void> writable() const;
    // The ids of `request`'s events: a repeated one (in the window, or
    // earlier in the batch) goes to `duplicates`, a new producer id into the
    // window at the seq it will get and to the returned list. REQUIRES: mutex_.
    std::vector<detail::DedupRecord> remember_ids(const AppendRequest& request, const Head& head,
                                                  core::TimestampNs ts,
                                                  std::vector<Duplicate>& duplicates);
    // Seals the events of `request` that are not duplicates onto `head`,
    // moving it. REQUIRES: mutex_ held; at least one event is not a duplicate.
    detail::AppendOp seal(const AppendRequest& request, Head& head, core::TimestampNs ts,
                          const std::vector<Duplicate>& duplicates,
                          std::uint64_t sealed_bytes_estimate);
    // Checks `request`'s envelopes against `head` and copies the new ones
    // into an op; `head` is not moved. The op's dedup holds every new
    // envelope's id, unfiltered. REQUIRES: mutex_ held.
    core::Result<detail::AppendOp> copy_replicated(const ReplicatedAppend& request,
                                                   const Head& head) const;
    // Keeps in op.dedup only the replicated ids that are inside the window
    // at `now` and new to it, and inserts those. REQUIRES: mutex_ held.
    // Sends `body` to the writer for `head`'s stream; the op poisons the
    // stream if it fails. REQUIRES: mutex_ held.
    void submit_on_head(std::string_view stream, const Head& head, detail::WriteOp::Body body,
                        std::vector<detail::DedupRecord> remembered, DoneCallback done);
    // Every committed envelope of (after, r.last_seq] decodes and sits at its
    // seq; else errc::corrupt naming the stream and seq.
    core::Result<void> check_removable(const detail::Txn& txn, std::string_view stream,
                                       const detail::StreamRecord& r, core::Seq after) const;
    core::EventId generate_id();
    // After a poisoned failure: reload the head from LMDB and forget the ids
    // the failed op had remembered.
    void reset_after_failure(const std::string& stream, std::uint64_t generation,
                             const std::vector<detail::DedupRecord>& forget);
    detail::OpCallback wrap(std::string stream, std::uint64_t generation,
                            std::vector<detail::DedupRecord> remembered, DoneCallback done);
    // For ops whose failure leaves no head to reset.
    static detail::OpCallback unpoisoned(DoneCallback done);

    friend class Store;

    int lock_fd_;
    detail::Env env_;
    const detail::Dbis dbis_;
    std::unique_ptr<detail::Writer> writer_;
    bool created_ = false;  // this open created the environment

    std::mutex mutex_;  // the sequencer lock
    bool closing_ = false;
    std::unordered_map<std::string, Head, TransparentStringHash, std::equal_to<>> heads_;
    std::uint64_t next_stream_id_ = 1;
    std::uint64_t next_outbox_id_ = 1;
    // Names with a delete in flight: LMDB still has their record, but they
    // no longer exist for new appends (which create a new stream).
    std::unordered_map<std::string, int, TransparentStringHash, std::equal_to<>> deleting_;
    core::TimestampNs last_ts_{0};
    detail::DedupWindow dedup_;
    std::array<std::byte, 8> id_prefix_{};
    std::uint64_t id_counter_ = 0;
};

}  // namespace spirit::storage
