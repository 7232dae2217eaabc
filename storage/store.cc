// Opening the store and the sequencer: validation, idempotency, expected
// seq, seq and timestamp stamping, sealing (the chain hash), and handing the
// sealed batch to the writer in sequencing order.
#include "storage/store.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/codec.h"
#include "core/hash_chain.h"
#include "core/limits.h"
#include "core/stream_name.h"
#include "storage/keys.h"
#include "storage/outbox_record.h"
#include "storage/store_impl.h"

namespace spirit::storage {

using core::errc;
using core::Result;
using detail::Txn;

namespace {

core::TimestampNs system_clock_now() {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    return core::TimestampNs{static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now).count())};
}

core::Error errno_error(int e, std::string what) {
    return core::Error{std::error_code(e, std::generic_category()),
                       fmt::format("{}: {}", what, std::strerror(e))};
}

constexpr unsigned dbs_max = 16;

Result<detail::Dbis> open_dbis(const detail::Env& env, std::uint64_t& next_stream_id) {
    auto txn = Txn::begin(env, Txn::Mode::write);
    if (!txn) return core::Unexpected{txn.error()};
    detail::Dbis d;
    struct Named {
        MDB_dbi* dbi;
        const char* name;
    };
    for (Named n :
         {Named{&d.streams, "streams"}, Named{&d.events, "events"}, Named{&d.ids, "ids"},
          Named{&d.cursors, "cursors"}, Named{&d.topology, "topology"},
          Named{&d.quarantine, "quarantine"}, Named{&d.node, "node"}, Named{&d.outbox, "outbox"}}) {
        auto dbi = detail::open_dbi(*txn, n.name);
        if (!dbi) return core::Unexpected{dbi.error()};
        *n.dbi = *dbi;
    }
    auto format = txn->get(d.node, core::as_bytes(detail::node_key_format));
    if (!format) return core::Unexpected{format.error()};
    if (!*format) {
        MDB_val k = detail::to_val(core::as_bytes(detail::node_key_format));
        MDB_val v = detail::to_val(core::as_bytes(detail::store_format));
        if (int rc = mdb_put(txn->get(), d.node, &k, &v, 0); rc != 0) {
            return core::Unexpected{detail::lmdb_error(rc, "recording the store format")};
        }
    } else if (core::as_chars(**format) != detail::store_format) {
        return core::make_error(errc::corrupt,
                                fmt::format("the data dir holds format \"{}\"; this spiritd reads "
                                            "\"{}\"",
                                            core::as_chars(**format), detail::store_format));
    }
    auto next = txn->get(d.node, core::as_bytes(detail::node_key_next_stream_id));
    if (!next) return core::Unexpected{next.error()};
    next_stream_id = 1;
    if (*next && (*next)->size() == 8) next_stream_id = core::load_be64((*next)->data());
    SPIRIT_TRY(txn->commit());
    return d;
}

}  // namespace

Store::Impl::Impl(StoreOptions options, int lock_fd, detail::Env env, detail::Dbis dbis)
    : options_(std::move(options)),
      lock_fd_(lock_fd),
      env_(std::move(env)),
      dbis_(dbis),
      dedup_(options_.dedup_events_max, options_.dedup_window_ms * 1'000'000) {
    writer_ = std::make_unique<detail::Writer>(
        env_, dbis_,
        detail::WriterOptions{.data_dir = options_.data_dir,
                              .sync_mode = options_.sync_mode,
                              .sync_period_ms = options_.sync_period_ms,
                              .group_events_max = options_.group_events_max,
                              .group_bytes_max = options_.group_bytes_max,
                              .queue_bytes_max = options_.queue_bytes_max,
                              .dedup_window_ms = options_.dedup_window_ms,
                              .preallocate_bytes = options_.preallocate_bytes,
                              .clock = options_.clock});
    randombytes_buf(id_prefix_.data(), id_prefix_.size());
}

Store::Impl::~Impl() {
    close();
    writer_.reset();
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

void Store::Impl::close() {
    {
        std::lock_guard lock(mutex_);
        if (closing_) return;
        closing_ = true;
    }
    writer_->stop();
    writer_->drain_completed();
}

Result<std::unique_ptr<Store>> Store::open(StoreOptions options) {
    if (!core::init_crypto())
        return core::make_error(errc::internal, "libsodium failed to initialise");
    if (!options.clock) options.clock = system_clock_now;
    if (options.data_dir.empty()) {
        return core::make_error(errc::invalid_argument, "the data dir is not set");
    }
    std::error_code ec;
    std::filesystem::create_directories(options.data_dir, ec);
    if (ec) {
        return core::make_error(
            ec, fmt::format("creating data dir {}: {}", options.data_dir.string(), ec.message()));
    }
    // One process per data dir: two sequencers would fork every chain.
    const std::string lock_path = (options.data_dir / "spirit.lock").string();
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return core::Unexpected{errno_error(errno, "opening " + lock_path)};
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        ::close(fd);
        if (e == EWOULDBLOCK) {
            return core::make_error(errc::busy, fmt::format("data dir {} is in use by another "
                                                            "process",
                                                            options.data_dir.string()));
        }
        return core::Unexpected{errno_error(e, "locking " + lock_path)};
    }
    auto env = detail::Env::open({.dir = options.data_dir,
                                  .map_bytes = options.map_bytes,
                                  .dbs_max = dbs_max,
                                  .readers_max = options.readers_max,
                                  .sync_on_commit = options.sync_mode == SyncMode::always});
    if (!env) {
        ::close(fd);
        return core::Unexpected{env.error()};
    }
    std::uint64_t next_stream_id = 1;
    auto dbis = open_dbis(*env, next_stream_id);
    if (!dbis) {
        ::close(fd);
        return core::Unexpected{dbis.error()};
    }
    auto impl = std::make_unique<Impl>(std::move(options), fd, std::move(*env), *dbis);
    impl->next_stream_id_ = next_stream_id;
    {
        // Outbox ids continue after the last entry left.
        auto txn = detail::Txn::begin(impl->env_, detail::Txn::Mode::read);
        if (!txn) return core::Unexpected{txn.error()};
        auto cursor = detail::Cursor::open(*txn, dbis->outbox);
        if (!cursor) return core::Unexpected{cursor.error()};
        auto last = cursor->step(MDB_LAST);
        if (!last) return core::Unexpected{last.error()};
        if (*last && (*last)->first.size() == 8) {
            impl->next_outbox_id_ = core::load_be64((*last)->first.data()) + 1;
        }
    }
    SPIRIT_TRY(impl->load_dedup_window());
    return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Result<void> Store::Impl::load_dedup_window() {
    // The newest entries inside the window, newest first, up to the bound:
    // start-up work is bounded by dedup_events_max, not by the log.
    const std::uint64_t now = options_.clock().value();
    const std::uint64_t window_ns = options_.dedup_window_ms * 1'000'000;
    const std::uint64_t cutoff = now > window_ns ? now - window_ns : 0;
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto cursor = detail::Cursor::open(*txn, dbis_.ids);
    if (!cursor) return core::Unexpected{cursor.error()};
    struct Loaded {
        core::TimestampNs ts;
        core::StreamId stream;
        core::EventId id;
        core::Seq seq;
    };
    std::vector<Loaded> newest_first;
    auto entry = cursor->step(MDB_LAST);
    while (newest_first.size() < options_.dedup_events_max) {
        if (!entry) return core::Unexpected{entry.error()};
        if (!*entry) break;
        auto [key, value] = **entry;
        if (key.size() != sizeof(detail::IdKey) || value.size() != 8) {
            return core::make_error(errc::corrupt,
                                    "an entry of the ids database has the wrong size");
        }
        Loaded l{core::TimestampNs{core::load_be64(key.data())},
                 core::StreamId{core::load_be64(key.data() + 8)},
                 {},
                 core::Seq{core::load_be64(value.data())}};
        if (l.ts.value() < cutoff) break;
        std::memcpy(l.id.bytes.data(), key.data() + 16, l.id.bytes.size());
        newest_first.push_back(l);
        entry = cursor->step(MDB_PREV);
    }
    // Oldest first, so the window evicts in time order.
    for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
        (void)dedup_.find_or_insert(it->stream, it->id, it->seq, 0, it->ts);
    }
    if (!newest_first.empty()) last_ts_ = newest_first.front().ts;
    return {};
}

Result<void> Store::Impl::validate(const AppendRequest& r) const {
    SPIRIT_TRY(core::validate_stream_name(r.stream, core::NameScope::system));
    if (r.events.empty()) {
        return core::make_error(
            errc::invalid_argument,
            fmt::format("stream {}: an append needs at least one event", r.stream));
    }
    if (r.events.size() > core::limits::batch_events_max) {
        return core::make_error(
            errc::limit_exceeded,
            fmt::format("stream {}: {} events in one append, limit {}", r.stream, r.events.size(),
                        core::limits::batch_events_max));
    }
    if (r.epoch.value() == 0) {
        return core::make_error(errc::invalid_argument,
                                fmt::format("stream {}: epoch 0", r.stream));
    }
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < r.events.size(); ++i) {
        const core::EventDraft& e = r.events[i];
        auto over = [&](const char* field, std::size_t size, std::size_t max) {
            return core::make_error(errc::limit_exceeded,
                                    fmt::format("stream {} event {}: {} of {} bytes, limit {}",
                                                r.stream, i, field, size, max));
        };
        if (e.type.size() > core::limits::type_bytes_max) {
            return over("type", e.type.size(), core::limits::type_bytes_max);
        }
        if (e.metadata.size() > core::limits::metadata_bytes_max) {
            return over("metadata", e.metadata.size(), core::limits::metadata_bytes_max);
        }
        if (e.payload.size() > core::limits::payload_bytes_max) {
            return over("payload", e.payload.size(), core::limits::payload_bytes_max);
        }
        if (!core::is_valid_utf8(e.type)) {
            return core::make_error(
                errc::invalid_argument,
                fmt::format("stream {} event {}: type is not valid UTF-8", r.stream, i));
        }
        bytes += e.type.size() + e.metadata.size() + e.payload.size() + 128;
    }
    if (bytes > core::limits::batch_bytes_max) {
        return core::make_error(errc::limit_exceeded,
                                fmt::format("stream {}: an append of {} bytes, limit {}", r.stream,
                                            bytes, core::limits::batch_bytes_max));
    }
    return {};
}

Result<Store::Impl::Head*> Store::Impl::head_for(std::string_view stream, CreateMode create,
                                                 std::optional<detail::StreamRecord>& created,
                                                 const core::StreamPolicy& policy,
                                                 core::TimestampNs now) {
    if (auto it = heads_.find(stream); it != heads_.end()) return &it->second;
    std::optional<detail::StreamRecord> found;
    if (!deleting_.contains(stream)) {
        auto txn = Txn::begin(env_, Txn::Mode::read);
        if (!txn) return core::Unexpected{txn.error()};
        auto r = record(*txn, stream);
        if (!r) return core::Unexpected{r.error()};
        found = *r;
    }
    const auto* stored = &found;
    Head head;
    if (*stored) {
        const detail::StreamRecord& r = **stored;
        head = Head{r.id, r.last_seq, r.last_hash, r.last_epoch, r.last_timestamp_ns, 1};
    } else {
        if (create == CreateMode::must_exist) {
            return core::make_error(errc::not_found,
                                    fmt::format("stream {} does not exist", stream));
        }
        detail::StreamRecord r;
        r.id = core::StreamId{next_stream_id_++};
        r.policy = policy;
        r.last_hash = core::genesis_hash;
        r.base_hash = core::genesis_hash;
        r.created_ns = now;
        created = r;
        head = Head{r.id, r.last_seq, r.last_hash, r.last_epoch, r.last_timestamp_ns, 1};
    }
    return &heads_.emplace(std::string(stream), head).first->second;
}

core::EventId Store::Impl::generate_id() {
    // A random per-open prefix and a counter: unique without a syscall or a
    // CSPRNG call per event.
    core::EventId id;
    std::memcpy(id.bytes.data(), id_prefix_.data(), 8);
    core::store_be64(id.bytes.data() + 8, ++id_counter_);
    return id;
}

detail::OpCallback Store::Impl::unpoisoned(DoneCallback done) {
    return [done = std::move(done)](Result<void> status, detail::Poisoned) mutable {
        done(std::move(status));
    };
}

Result<Store::Impl::Head*> Store::Impl::existing_head(std::string_view stream) {
    if (closing_) return core::make_error(errc::shutting_down, "the store is closing");
    std::optional<detail::StreamRecord> created;
    return head_for(stream, CreateMode::must_exist, created, {}, options_.clock());
}

detail::OpCallback Store::Impl::wrap(std::string stream, std::uint64_t generation,
                                     std::vector<detail::DedupRecord> remembered,
                                     DoneCallback done) {
    return [this, stream = std::move(stream), generation, remembered = std::move(remembered),
            done = std::move(done)](Result<void> status, detail::Poisoned poisoned) mutable {
        if (!status && poisoned == detail::Poisoned::yes) {
            reset_after_failure(stream, generation, remembered);
        }
        done(std::move(status));
    };
}

void Store::Impl::reset_after_failure(const std::string& stream, std::uint64_t generation,
                                      const std::vector<detail::DedupRecord>& forget) {
    std::lock_guard lock(mutex_);
    auto it = heads_.find(stream);
    if (it == heads_.end()) return;
    Head& head = it->second;
    for (const detail::DedupRecord& d : forget) dedup_.erase(head.id, d.id, generation);
    if (head.generation != generation) return;  // reset already, by an earlier failure
    auto txn = Txn::begin(env_, Txn::Mode::read);
    std::optional<detail::StreamRecord> stored;
    if (txn) {
        if (auto r = record(*txn, stream)) stored = *r;
    }
    if (!stored) {
        // Never committed (its creation failed), or unreadable: forget the
        // head; the next append reloads or recreates it.
        heads_.erase(it);
        return;
    }
    head = Head{stored->id,         stored->last_seq,          stored->last_hash,
                stored->last_epoch, stored->last_timestamp_ns, generation + 1};
}

Result<void> Store::Impl::append(const AppendRequest& request, AppendCallback done) {
    SPIRIT_TRY(validate(request));
    std::lock_guard lock(mutex_);
    if (closing_) return core::make_error(errc::shutting_down, "the store is closing");
    if (auto failure = writer_->failure()) return core::Unexpected{*failure};

    std::uint64_t sealed_bytes_estimate = 0;
    for (const core::EventDraft& e : request.events) {
        sealed_bytes_estimate +=
            e.type.size() + e.metadata.size() + e.payload.size() + request.stream.size() + 96;
    }
    if (!writer_->has_room(sealed_bytes_estimate)) {
        return core::make_error(
            errc::overloaded,
            fmt::format("stream {}: the storage queue is full; retry later", request.stream));
    }
    const core::TimestampNs now = options_.clock();
    std::optional<detail::StreamRecord> created;
    auto found = head_for(request.stream, request.create, created, request.policy, now);
    if (!found) return core::Unexpected{found.error()};
    Head& head = **found;
    if (request.epoch < head.last_epoch) {
        return core::make_error(
            errc::invalid_argument,
            fmt::format("stream {}: epoch {} is older than the stream's epoch {}", request.stream,
                        request.epoch.value(), head.last_epoch.value()));
    }
    dedup_.evict_expired(now);

    // One pass over the ids: a repeated one (in the window, or earlier in this
    // batch) is a duplicate; a new one is remembered at the seq it will get.
    const core::TimestampNs ts = std::max({now, last_ts_, head.last_ts});
    AppendResult result;
    result.epoch = request.epoch;
    std::vector<detail::DedupRecord> remembered;
    core::Seq next = head.last_seq.next();
    for (std::size_t i = 0; i < request.events.size(); ++i) {
        const auto& id = request.events[i].id;
        if (id) {
            if (auto original = dedup_.find_or_insert(head.id, *id, next, head.generation, ts)) {
                result.duplicates.push_back(
                    Duplicate{static_cast<std::uint32_t>(i), original->seq});
                continue;
            }
            remembered.push_back(detail::DedupRecord{ts, *id, next});
        }
        next = next.next();
    }
    auto make_callback = [&](std::vector<detail::DedupRecord> forget_on_failure) {
        return wrap(std::string(request.stream), head.generation, std::move(forget_on_failure),
                    [result, done = std::move(done)](Result<void> status) mutable {
                        if (!status) {
                            done(core::Unexpected{std::move(status).error()});
                        } else {
                            done(std::move(result));
                        }
                    });
    };
    if (result.duplicates.size() == request.events.size()) {
        // A retry of something already sequenced: answer once everything
        // queued before (the originals included) is durable.
        if (created) heads_.erase(std::string(request.stream));
        writer_->submit(detail::WriteOp{head.id, std::string(request.stream), head.generation,
                                        detail::BarrierOp{}, make_callback({})});
        return {};
    }
    if (request.expected_last_seq && *request.expected_last_seq != head.last_seq) {
        for (const detail::DedupRecord& d : remembered)
            dedup_.erase(head.id, d.id, head.generation);
        const core::Seq last = head.last_seq;
        if (created) heads_.erase(std::string(request.stream));
        return core::make_error(
            errc::expected_seq_mismatch,
            fmt::format("stream {}: expected last seq {}, but it is {}", request.stream,
                        request.expected_last_seq->value(), last.value()));
    }

    // Seal. One timestamp per append, never behind an earlier one.
    last_ts_ = ts;
    detail::AppendOp op;
    op.data.reserve(sealed_bytes_estimate);
    op.ends.reserve(request.events.size() - result.duplicates.size());
    op.first_seq = head.last_seq.next();
    op.create = created;
    op.dedup = remembered;
    std::size_t next_duplicate = 0;
    for (std::size_t i = 0; i < request.events.size(); ++i) {
        if (next_duplicate < result.duplicates.size() &&
            result.duplicates[next_duplicate].index == i) {
            ++next_duplicate;
            continue;
        }
        const core::EventDraft& e = request.events[i];
        const core::Seq seq = head.last_seq.next();
        const core::EventId id = e.id ? *e.id : generate_id();
        core::EnvelopeView fields{request.stream, seq,       request.epoch, ts, id, e.type,
                                  e.metadata,     e.payload, core::Digest{}};
        head.last_hash = core::seal_envelope(op.data, fields, head.last_hash);
        head.last_seq = seq;
        op.ends.push_back(static_cast<std::uint32_t>(op.data.size()));
    }
    SPIRIT_ASSERT(head.last_seq.next() == next);
    head.last_epoch = request.epoch;
    head.last_ts = ts;
    result.first_seq = op.first_seq;
    result.last_seq = head.last_seq;
    result.stored = static_cast<std::uint32_t>(op.ends.size());
    result.timestamp_ns = ts;
    result.last_hash = head.last_hash;
    op.last_hash = head.last_hash;
    op.last_epoch = request.epoch;
    op.last_ts = ts;
    SPIRIT_ASSERT(result.stored > 0);
    writer_->submit(detail::WriteOp{head.id, std::string(request.stream), head.generation,
                                    std::move(op), make_callback(std::move(remembered))});
    return {};
}

Result<void> Store::Impl::append_replicated(const ReplicatedAppend& request, AppendCallback done) {
    SPIRIT_TRY(core::validate_stream_name(request.stream, core::NameScope::system));
    if (request.envelopes.empty()) {
        return core::make_error(errc::invalid_argument,
                                fmt::format("stream {}: nothing to replicate", request.stream));
    }
    std::lock_guard lock(mutex_);
    if (closing_) return core::make_error(errc::shutting_down, "the store is closing");
    if (auto failure = writer_->failure()) return core::Unexpected{*failure};
    const core::TimestampNs now = options_.clock();
    std::optional<detail::StreamRecord> created;
    auto found = head_for(request.stream, CreateMode::if_missing, created, request.policy, now);
    if (!found) return core::Unexpected{found.error()};
    Head& head = **found;
    if (created) {
        // A copy that starts where the master's retained stream starts.
        created->first_seq = request.prev_seq.next();
        created->last_seq = request.prev_seq;
        created->base_hash = request.prev_hash;
        created->last_hash = request.prev_hash;
        head.last_seq = request.prev_seq;
        head.last_hash = request.prev_hash;
    }
    auto refuse = [&](core::Unexpected e) {
        if (created) heads_.erase(std::string(request.stream));
        return e;
    };
    if (request.prev_seq > head.last_seq) {
        return refuse(core::make_error(
            errc::invalid_argument,
            fmt::format("stream {}: this copy ends at seq {}, the master sent events after seq {}",
                        request.stream, head.last_seq.value(), request.prev_seq.value())));
    }
    // Skip what this copy already has; the hash at its last seq must agree.
    core::Digest prev = request.prev_hash;
    core::Seq seq = request.prev_seq;
    std::size_t skip = 0;
    detail::AppendOp op;
    op.create = created;
    for (core::ByteView encoded : request.envelopes) {
        auto view = core::verify_envelope(encoded, prev);
        if (!view) return refuse(core::Unexpected{view.error()});
        if (view->stream != request.stream || view->seq != seq.next()) {
            return refuse(core::make_error(
                errc::invalid_argument,
                fmt::format("stream {}: expected seq {}, the master sent stream {} seq {}",
                            request.stream, seq.next().value(), view->stream, view->seq.value())));
        }
        seq = view->seq;
        prev = view->hash;
        if (seq <= head.last_seq) {
            ++skip;
            if (seq == head.last_seq && prev != head.last_hash) {
                return refuse(core::make_error(
                    errc::hash_mismatch,
                    fmt::format("stream {} seq {}: hash mismatch, this copy has {}, the master "
                                "sent {}",
                                request.stream, seq.value(), core::digest_hex(head.last_hash),
                                core::digest_hex(prev))));
            }
            continue;
        }
        if (view->epoch < head.last_epoch) {
            return refuse(core::make_error(
                errc::invalid_argument,
                fmt::format("stream {} seq {}: epoch {} is older than the copy's epoch {}",
                            request.stream, seq.value(), view->epoch.value(),
                            head.last_epoch.value())));
        }
        if (op.ends.empty()) op.first_seq = seq;
        core::append(op.data, encoded);
        op.ends.push_back(static_cast<std::uint32_t>(op.data.size()));
        head.last_epoch = view->epoch;
        head.last_ts = view->timestamp_ns;
    }
    (void)skip;
    AppendResult result;
    result.epoch = head.last_epoch;
    if (op.ends.empty()) {
        // All of it was here already: answer once what is queued is durable.
        result.last_seq = head.last_seq;
        result.last_hash = head.last_hash;
        writer_->submit(detail::WriteOp{
            head.id, std::string(request.stream), head.generation, detail::BarrierOp{},
            wrap(std::string(request.stream), head.generation, {},
                 [result, done = std::move(done)](Result<void> status) mutable {
                     if (!status) return done(core::Unexpected{std::move(status).error()});
                     done(std::move(result));
                 })});
        return {};
    }
    head.last_seq = seq;
    head.last_hash = prev;
    op.last_hash = prev;
    op.last_epoch = head.last_epoch;
    op.last_ts = head.last_ts;
    last_ts_ = std::max(last_ts_, head.last_ts);
    result.first_seq = op.first_seq;
    result.last_seq = seq;
    result.stored = static_cast<std::uint32_t>(op.ends.size());
    result.timestamp_ns = head.last_ts;
    result.last_hash = prev;
    writer_->submit(
        detail::WriteOp{head.id, std::string(request.stream), head.generation, std::move(op),
                        wrap(std::string(request.stream), head.generation, {},
                             [result, done = std::move(done)](Result<void> status) mutable {
                                 if (!status)
                                     return done(core::Unexpected{std::move(status).error()});
                                 done(std::move(result));
                             })});
    return {};
}

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
    writer_->submit(
        detail::WriteOp{head.id, std::string(stream), head.generation, detail::TruncateOp{seq},
                        wrap(std::string(stream), head.generation, {}, std::move(done))});
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
    Head& head = **found;
    writer_->submit(
        detail::WriteOp{head.id, std::string(stream), head.generation, detail::CreateOp{*created},
                        wrap(std::string(stream), head.generation, {}, std::move(done))});
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
    if (closing_) return core::make_error(errc::shutting_down, "the store is closing");
    if (auto failure = writer_->failure()) return core::Unexpected{*failure};
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

// --- Store: forwards to Impl ---

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Result<void> Store::append(const AppendRequest& request, AppendCallback done) {
    return impl_->append(request, std::move(done));
}

Result<void> Store::append_replicated(const ReplicatedAppend& request, AppendCallback done) {
    return impl_->append_replicated(request, std::move(done));
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

Result<void> Store::create_stream(std::string_view stream, const core::StreamPolicy& policy,
                                  DoneCallback done) {
    return impl_->create_stream(stream, policy, std::move(done));
}

Result<void> Store::delete_stream(std::string_view stream, DoneCallback done) {
    return impl_->delete_stream(stream, std::move(done));
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

Result<std::vector<core::Envelope>> Store::quarantined(std::string_view stream) const {
    return impl_->quarantined(stream);
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
