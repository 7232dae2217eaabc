// Store, the public API: each call forwards to Store::Impl (store.cc,
// store_admin.cc, store_read.cc); the blocking forms wait on the writer.
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

// --- Store: forwards to Impl ---

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<void> Store::append(const AppendRequest& request, AppendCallback done) {
    return impl_->append(request, std::move(done));
}

Result<void> Store::append_replicated(const ReplicatedAppend& request, AppendCallback done) {
    return impl_->append_replicated(request, std::move(done));
}

Result<void> Store::confirm_epoch(const ConfirmEpoch& request, DoneCallback done) {
    return impl_->confirm_epoch(request, std::move(done));
}

Result<AppendResult> Store::append_sync(const AppendRequest& request) {
    std::atomic<bool> finished{false};
    std::optional<Result<AppendResult>> out;
    SPIRIT_TRY(impl_->append(request, [&](Result<AppendResult> r) {
        out = std::move(r);
        finished.store(true, std::memory_order_release);
    }));
    impl_->wait_until(finished);
    return std::move(*out);
}

Result<void> Store::truncate_after(std::string_view stream, core::Seq seq, DoneCallback done) {
    return impl_->truncate_after(stream, seq, std::move(done));
}

Result<void> Store::trim_before(std::string_view stream, core::Seq seq, DoneCallback done) {
    return impl_->trim_before(stream, seq, std::move(done));
}

namespace {

template <class Start>
Result<void> run_sync(Store::Impl& impl, Start start) {
    std::atomic<bool> finished{false};
    Result<void> out;
    SPIRIT_TRY(start([&](Result<void> r) {
        out = std::move(r);
        finished.store(true, std::memory_order_release);
    }));
    impl.wait_until(finished);
    return out;
}

}  // namespace

Result<void> Store::truncate_after_sync(std::string_view stream, core::Seq seq) {
    return run_sync(*impl_, [&](DoneCallback done) {
        return impl_->truncate_after(stream, seq, std::move(done));
    });
}

Result<void> Store::trim_before_sync(std::string_view stream, core::Seq seq) {
    return run_sync(*impl_, [&](DoneCallback done) {
        return impl_->trim_before(stream, seq, std::move(done));
    });
}

Result<void> Store::rebuild_id_window() {
    return impl_->rebuild_id_window();
}

Result<void> Store::create_stream(std::string_view stream, const core::StreamPolicy& policy,
                                  DoneCallback done) {
    return impl_->create_stream(stream, policy, std::move(done));
}

Result<void> Store::delete_stream(std::string_view stream, DoneCallback done) {
    return impl_->delete_stream(stream, std::move(done));
}

Result<void> Store::set_policy(std::string_view stream, const core::StreamPolicy& policy,
                               DoneCallback done) {
    return impl_->set_policy(stream, policy, std::move(done));
}

Result<std::optional<core::Bytes>> Store::node_value(std::string_view key) const {
    return impl_->node_value(key);
}

Result<void> Store::put_node_value(std::string_view key, core::ByteView value, DoneCallback done) {
    return impl_->put_node_value(key, value, std::move(done));
}

bool Store::was_created() const {
    return impl_->created_;
}

Result<void> Store::set_cursor(std::string_view consumer, std::string_view stream, core::Seq seq,
                               DoneCallback done) {
    return impl_->set_cursor(consumer, stream, seq, std::move(done));
}

Result<void> Store::outbox_add(std::string_view stream, std::span<const core::EventDraft> events,
                               DoneCallback done) {
    return impl_->outbox_add(stream, events, std::move(done));
}

Result<std::vector<OutboxEntry>> Store::outbox_read(std::size_t entries_max) const {
    return impl_->outbox_read(entries_max);
}

Result<void> Store::outbox_remove(std::uint64_t id, DoneCallback done) {
    return impl_->outbox_remove(id, std::move(done));
}

Result<std::uint64_t> Store::outbox_events() const {
    return impl_->outbox_events();
}

Result<std::optional<core::Seq>> Store::cursor(std::string_view consumer,
                                               std::string_view stream) const {
    return impl_->cursor(consumer, stream);
}

std::size_t Store::drain_completed() {
    return impl_->writer().drain_completed();
}

void Store::set_commit_notifier(std::function<void()> notifier) {
    impl_->writer().set_commit_notifier(std::move(notifier));
}

Result<ReadSummary> Store::read(std::string_view stream, const ReadOptions& options,
                                EventVisitor visitor) const {
    return impl_->read(stream, options, visitor);
}

Result<core::Seq> Store::seq_at_time(std::string_view stream, core::TimestampNs ts) const {
    return impl_->seq_at_time(stream, ts);
}

Result<std::optional<core::Envelope>> Store::read_last(std::string_view stream) const {
    return impl_->read_last(stream);
}

Result<core::Seq> Store::seq_keeping_bytes(std::string_view stream, std::uint64_t bytes_max,
                                           std::uint64_t events_max_walked) const {
    return impl_->seq_keeping_bytes(stream, bytes_max, events_max_walked);
}

Result<std::optional<StreamInfo>> Store::stream_info(std::string_view stream) const {
    return impl_->stream_info(stream);
}

Result<std::vector<StreamInfo>> Store::list_streams() const {
    return impl_->list_streams({}, SIZE_MAX);
}

Result<std::vector<StreamInfo>> Store::list_streams(std::string_view after,
                                                    std::size_t limit) const {
    return impl_->list_streams(after, limit);
}

Result<VerifyReport> Store::verify(std::string_view stream) const {
    return impl_->verify(stream);
}

Result<std::vector<std::optional<core::Digest>>> Store::hashes_at(
    std::string_view stream, std::span<const core::Seq> seqs) const {
    return impl_->hashes_at(stream, seqs);
}

Result<std::vector<QuarantineSummary>> Store::quarantine_streams() const {
    return impl_->quarantine_streams();
}

Result<QuarantinePage> Store::quarantine_read(std::string_view stream,
                                              const QuarantineReadOptions& options) const {
    return impl_->quarantine_read(stream, options);
}

StoreStats Store::stats() const {
    return impl_->writer().stats();
}

std::optional<core::Error> Store::failure() const {
    return impl_->writer().failure();
}

const StoreOptions& Store::options() const {
    return impl_->options_;
}

}  // namespace spirit::storage
