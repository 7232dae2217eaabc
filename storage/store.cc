// Opening the store and the sequencer: validation, idempotency, expected
// seq, seq and timestamp stamping, sealing (the chain hash), and handing the
// sealed batch to the writer in sequencing order.
#include "storage/store.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
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

// A writer completion that answers an append with `result` once its commit
// succeeded, or with the commit's error.
DoneCallback answer(AppendResult result, AppendCallback done) {
    return [result = std::move(result), done = std::move(done)](Result<void> status) mutable {
        if (!status) return done(core::Unexpected{std::move(status).error()});
        done(std::move(result));
    };
}

core::Unexpected stale_epoch(std::string_view stream, core::Epoch epoch, core::Epoch confirmed) {
    return core::make_error(errc::stale_epoch,
                            fmt::format("stream {}: epoch {} is older than the copy's confirmed "
                                        "epoch {}",
                                        stream, epoch.value(), confirmed.value()));
}

// A copy that starts after (seq, hash): seq 0 is the start of every stream,
// whose hash is the genesis hash.
Result<void> check_start(std::string_view stream, core::Seq seq, const core::Digest& hash) {
    if (seq == core::Seq{0} && hash != core::genesis_hash) {
        return core::make_error(errc::invalid_argument,
                                fmt::format("stream {}: seq 0 has the genesis hash, not {}", stream,
                                            core::digest_hex(hash)));
    }
    return {};
}

// A created record (and its head) made to start after (seq, hash), confirmed
// in `epoch`.
void start_after(detail::StreamRecord& created, Store::Impl::Head& head, core::Seq seq,
                 const core::Digest& hash, core::Epoch epoch) {
    created.first_seq = seq.next();
    created.last_seq = seq;
    created.base_hash = hash;
    created.last_hash = hash;
    created.confirmed_epoch = epoch;
    head.last_seq = seq;
    head.last_hash = hash;
    head.confirmed_epoch = epoch;
}

// Opens the databases; `created` says whether the environment was new (it
// had no format yet).
Result<detail::Dbis> open_dbis(const detail::Env& env, std::uint64_t& next_stream_id,
                               bool& created) {
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
    created = !*format;
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
    bool created = false;
    auto dbis = open_dbis(*env, next_stream_id, created);
    if (!dbis) {
        ::close(fd);
        return core::Unexpected{dbis.error()};
    }
    auto impl = std::make_unique<Impl>(std::move(options), fd, std::move(*env), *dbis);
    impl->next_stream_id_ = next_stream_id;
    impl->created_ = created;
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

void Store::Impl::keep_newest(std::vector<detail::IdEntry>& ids) const {
    const std::size_t keep =
        static_cast<std::size_t>(std::min<std::uint64_t>(ids.size(), options_.dedup_events_max));
    const auto newer = [](const detail::IdEntry& a, const detail::IdEntry& b) {
        return a.ts > b.ts;
    };
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(keep), ids.end(),
                      newer);
    ids.resize(keep);
}

Result<void> Store::Impl::rebuild_id_window() {
    // The ids of the newest events inside the window, from the events
    // themselves: a copy that was a slave recorded no ids as it replicated
    // (that would cost every event on every slave), so this is done once,
    // when it becomes master. Bounded by dedup_events_max per stream read
    // and in all.
    std::lock_guard lock(mutex_);
    const std::uint64_t now = options_.clock().value();
    const std::uint64_t window_ns = options_.dedup_window_ms * 1'000'000;
    const core::TimestampNs cutoff{now > window_ns ? now - window_ns : 0};
    auto streams = list_streams("", std::numeric_limits<std::size_t>::max());
    if (!streams) return core::Unexpected{streams.error()};
    std::vector<detail::IdEntry> found;
    for (const StreamInfo& info : *streams) {
        if (info.event_count == 0) continue;
        auto at = seq_at_time(info.name, cutoff);
        if (!at) return core::Unexpected{at.error()};
        core::Seq from = std::max(*at, info.first_seq);
        if (info.last_seq.value() >= options_.dedup_events_max) {
            from = std::max(from, core::Seq{info.last_seq.value() - options_.dedup_events_max + 1});
        }
        while (from <= info.last_seq) {
            auto read = this->read(
                info.name,
                {.from_seq = from, .events_max = 4096, .verification = Verification::none},
                [&](const core::EnvelopeView& e, core::ByteView) {
                    found.push_back({e.timestamp_ns, info.id, e.id, e.seq});
                    return Visit::next;
                });
            if (!read) return core::Unexpected{read.error()};
            if (read->events == 0) break;
            from = read->next_seq;
        }
        if (found.size() > 2 * options_.dedup_events_max) keep_newest(found);
    }
    keep_newest(found);
    // Inserted oldest first, so that the window evicts in time order.
    dedup_.clear();
    for (auto it = found.rbegin(); it != found.rend(); ++it) {
        (void)dedup_.find_or_insert(it->stream, it->id, it->seq, 0, it->ts);
    }
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
    Head head;
    if (found) {
        head = head_of(*found, 1);
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
        head = head_of(r, 1);
    }
    return &heads_.emplace(std::string(stream), head).first->second;
}

Store::Impl::Head Store::Impl::head_of(const detail::StreamRecord& r, std::uint64_t generation) {
    return Head{r.id,         r.last_seq,          r.last_hash,
                r.last_epoch, r.last_timestamp_ns, r.confirmed_epoch,
                generation};
}

Result<void> Store::Impl::writable() const {
    if (closing_) return core::make_error(errc::shutting_down, "the store is closing");
    if (auto failure = writer_->failure()) return core::Unexpected{*failure};
    return {};
}

void Store::Impl::submit_on_head(std::string_view stream, const Head& head,
                                 detail::WriteOp::Body body,
                                 std::vector<detail::DedupRecord> remembered, DoneCallback done) {
    std::string name(stream);
    detail::OpCallback callback =
        wrap(name, head.generation, std::move(remembered), std::move(done));
    writer_->submit(detail::WriteOp{head.id, std::move(name), head.generation, std::move(body),
                                    std::move(callback)});
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
    head = head_of(*stored, generation + 1);
}

std::vector<detail::DedupRecord> Store::Impl::remember_ids(const AppendRequest& request,
                                                           const Head& head, core::TimestampNs ts,
                                                           std::vector<Duplicate>& duplicates) {
    std::vector<detail::DedupRecord> remembered;
    core::Seq next = head.last_seq.next();
    for (std::size_t i = 0; i < request.events.size(); ++i) {
        const auto& id = request.events[i].id;
        if (id) {
            if (auto original = dedup_.find_or_insert(head.id, *id, next, head.generation, ts)) {
                duplicates.push_back(Duplicate{static_cast<std::uint32_t>(i), original->seq});
                continue;
            }
            remembered.push_back(detail::DedupRecord{ts, *id, next});
        }
        next = next.next();
    }
    return remembered;
}

detail::AppendOp Store::Impl::seal(const AppendRequest& request, Head& head, core::TimestampNs ts,
                                   const std::vector<Duplicate>& duplicates,
                                   std::uint64_t sealed_bytes_estimate) {
    detail::AppendOp op;
    op.data.reserve(sealed_bytes_estimate);
    op.ends.reserve(request.events.size() - duplicates.size());
    op.first_seq = head.last_seq.next();
    if (request.sealed != nullptr) request.sealed->hashes.reserve(op.ends.capacity());
    std::size_t next_duplicate = 0;
    for (std::size_t i = 0; i < request.events.size(); ++i) {
        if (next_duplicate < duplicates.size() && duplicates[next_duplicate].index == i) {
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
        if (request.sealed != nullptr) request.sealed->hashes.push_back(head.last_hash);
    }
    SPIRIT_ASSERT(!op.ends.empty());
    head.last_epoch = request.epoch;
    head.last_ts = ts;
    head.confirmed_epoch = request.epoch;  // checked: never below the confirmed epoch
    op.last_hash = head.last_hash;
    op.last_epoch = request.epoch;
    op.last_ts = ts;
    op.confirmed_epoch = request.epoch;
    return op;
}

Result<void> Store::Impl::append(const AppendRequest& request, AppendCallback done) {
    if (request.sealed != nullptr) *request.sealed = Sealed{};
    SPIRIT_TRY(validate(request));
    std::uint64_t sealed_bytes_estimate = 0;
    for (const core::EventDraft& e : request.events) {
        sealed_bytes_estimate +=
            e.type.size() + e.metadata.size() + e.payload.size() + request.stream.size() + 96;
    }
    std::lock_guard lock(mutex_);
    SPIRIT_TRY(writable());
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
    if (created) {
        created->confirmed_epoch = request.epoch;
        head.confirmed_epoch = request.epoch;
    }
    if (request.epoch < head.confirmed_epoch) {
        return stale_epoch(request.stream, request.epoch, head.confirmed_epoch);
    }
    if (request.epoch < head.last_epoch) {  // only a store written before confirmed epochs
        return core::make_error(
            errc::stale_epoch,
            fmt::format("stream {}: epoch {} is older than the stream's last epoch {}",
                        request.stream, request.epoch.value(), head.last_epoch.value()));
    }
    dedup_.evict_expired(now);

    // One pass over the ids: a repeated one (in the window, or earlier in this
    // batch) is a duplicate; a new one is remembered at the seq it will get.
    // One timestamp per append, never behind an earlier one.
    const core::TimestampNs ts = std::max({now, last_ts_, head.last_ts});
    AppendResult result;
    result.epoch = request.epoch;
    std::vector<detail::DedupRecord> remembered =
        remember_ids(request, head, ts, result.duplicates);
    if (result.duplicates.size() == request.events.size()) {
        // A retry of something already sequenced: answer once everything
        // queued before (the originals included) is durable.
        if (created) heads_.erase(std::string(request.stream));
        submit_on_head(request.stream, head, detail::BarrierOp{}, {},
                       answer(std::move(result), std::move(done)));
        return {};
    }
    if (request.expected_last_seq && *request.expected_last_seq != head.last_seq) {
        for (const detail::DedupRecord& d : remembered) {
            dedup_.erase(head.id, d.id, head.generation);
        }
        const core::Seq last = head.last_seq;
        if (created) heads_.erase(std::string(request.stream));
        return core::make_error(
            errc::expected_seq_mismatch,
            fmt::format("stream {}: expected last seq {}, but it is {}", request.stream,
                        request.expected_last_seq->value(), last.value()));
    }

    last_ts_ = ts;
    detail::AppendOp op = seal(request, head, ts, result.duplicates, sealed_bytes_estimate);
    op.create = created;
    op.dedup = remembered;
    result.first_seq = op.first_seq;
    result.last_seq = head.last_seq;
    result.stored = static_cast<std::uint32_t>(op.ends.size());
    result.timestamp_ns = ts;
    result.last_hash = head.last_hash;
    if (request.sealed != nullptr) {
        request.sealed->first_seq = op.first_seq;
        request.sealed->data = op.data;
        request.sealed->ends = op.ends;
    }
    submit_on_head(request.stream, head, std::move(op), std::move(remembered),
                   answer(std::move(result), std::move(done)));
    return {};
}

Result<detail::AppendOp> Store::Impl::copy_replicated(const ReplicatedAppend& request,
                                                      const Head& head) const {
    // Skip what this copy already has; the hash at its last seq must agree.
    core::Digest prev = request.prev_hash;
    core::Seq seq = request.prev_seq;
    core::Epoch last_epoch = head.last_epoch;
    detail::AppendOp op;
    for (core::ByteView encoded : request.envelopes) {
        auto view = core::verify_envelope(encoded, prev);
        if (!view) return core::Unexpected{view.error()};
        if (view->stream != request.stream) {
            return core::make_error(
                errc::invalid_argument,
                fmt::format("stream {} seq {}: the envelope's stream field is {}", request.stream,
                            seq.next().value(), view->stream));
        }
        if (view->seq != seq.next()) {
            return core::make_error(
                errc::invalid_argument,
                fmt::format("stream {}: expected seq {}, the envelope's seq "
                            "field is {}",
                            request.stream, seq.next().value(), view->seq.value()));
        }
        if (view->epoch > request.epoch) {
            return core::make_error(
                errc::invalid_argument,
                fmt::format("stream {} seq {}: the envelope's epoch field {} is "
                            "newer than the sending master's epoch {}",
                            request.stream, view->seq.value(), view->epoch.value(),
                            request.epoch.value()));
        }
        seq = view->seq;
        prev = view->hash;
        if (seq <= head.last_seq) {
            if (seq == head.last_seq && prev != head.last_hash) {
                return core::make_error(
                    errc::hash_mismatch,
                    fmt::format("stream {} seq {}: hash mismatch, this copy has {}, the master "
                                "sent {}",
                                request.stream, seq.value(), core::digest_hex(head.last_hash),
                                core::digest_hex(prev)));
            }
            continue;
        }
        if (view->epoch < last_epoch) {
            return core::make_error(
                errc::invalid_argument,
                fmt::format("stream {} seq {}: the envelope's epoch field {} is "
                            "older than the epoch {} before it",
                            request.stream, seq.value(), view->epoch.value(), last_epoch.value()));
        }
        if (op.ends.empty()) op.first_seq = seq;
        core::append(op.data, encoded);
        op.ends.push_back(static_cast<std::uint32_t>(op.data.size()));
        last_epoch = view->epoch;
        op.last_ts = view->timestamp_ns;
    }
    op.last_hash = prev;
    op.last_epoch = last_epoch;
    // Confirmed in the master's epoch only once the copy holds its history.
    const core::Seq end = std::max(head.last_seq, seq);
    op.confirmed_epoch = end >= request.history ? std::max(head.confirmed_epoch, request.epoch)
                                                : head.confirmed_epoch;
    return op;
}

Result<void> Store::Impl::append_replicated(const ReplicatedAppend& request, AppendCallback done) {
    SPIRIT_TRY(core::validate_stream_name(request.stream, core::NameScope::system));
    if (request.envelopes.empty() || request.epoch == core::Epoch{0}) {
        return core::make_error(
            errc::invalid_argument,
            fmt::format("stream {}: nothing to replicate, or epoch 0", request.stream));
    }
    std::lock_guard lock(mutex_);
    SPIRIT_TRY(writable());
    const core::TimestampNs now = options_.clock();
    std::optional<detail::StreamRecord> created;
    auto found = head_for(request.stream, CreateMode::if_missing, created, request.policy, now);
    if (!found) return core::Unexpected{found.error()};
    Head& head = **found;
    // A copy new here starts where the master's retained stream starts.
    if (created) {
        start_after(*created, head, request.prev_seq, request.prev_hash,
                    request.prev_seq >= request.history ? request.epoch : core::Epoch{0});
    }
    auto refuse = [&](core::Unexpected e) {
        if (created) heads_.erase(std::string(request.stream));
        return e;
    };
    if (created) {
        if (auto ok = check_start(request.stream, request.prev_seq, request.prev_hash); !ok) {
            return refuse(core::Unexpected{ok.error()});
        }
    }
    if (request.epoch < head.confirmed_epoch) {
        return refuse(stale_epoch(request.stream, request.epoch, head.confirmed_epoch));
    }
    if (request.prev_seq > head.last_seq) {
        return refuse(core::make_error(
            errc::invalid_argument,
            fmt::format("stream {}: this copy ends at seq {}, the master sent events after seq {}",
                        request.stream, head.last_seq.value(), request.prev_seq.value())));
    }
    if (!created && request.prev_seq < head.last_seq) {
        // The sender thinks this copy shorter than what is sequenced here.
        // If commits are still in flight (a former master's), the position
        // it was told is out of date: nothing can be checked against it.
        auto txn = Txn::begin(env_, Txn::Mode::read);
        if (!txn) return core::Unexpected{txn.error()};
        auto stored = record(*txn, request.stream);
        if (!stored) return core::Unexpected{stored.error()};
        if (*stored && (*stored)->last_seq < head.last_seq) {
            return core::make_error(
                errc::busy,
                fmt::format("stream {}: seqs {} to {} are not committed yet", request.stream,
                            (*stored)->last_seq.next().value(), head.last_seq.value()));
        }
    }
    auto op = copy_replicated(request, head);
    if (!op) return refuse(core::Unexpected{op.error()});
    AppendResult result;
    if (op->ends.empty()) {
        // All of it was here already: answer once what is queued is durable.
        result.epoch = head.last_epoch;
        result.last_seq = head.last_seq;
        result.last_hash = head.last_hash;
        submit_on_head(request.stream, head, detail::BarrierOp{}, {},
                       answer(std::move(result), std::move(done)));
        return {};
    }
    op->create = created;
    head.last_seq = core::Seq{op->first_seq.value() + op->ends.size() - 1};
    head.last_hash = op->last_hash;
    head.last_epoch = op->last_epoch;
    head.last_ts = op->last_ts;
    head.confirmed_epoch = op->confirmed_epoch;
    last_ts_ = std::max(last_ts_, head.last_ts);
    result.epoch = head.last_epoch;
    result.first_seq = op->first_seq;
    result.last_seq = head.last_seq;
    result.stored = static_cast<std::uint32_t>(op->ends.size());
    result.timestamp_ns = head.last_ts;
    result.last_hash = head.last_hash;
    std::vector<detail::DedupRecord> remembered = op->dedup;
    submit_on_head(request.stream, head, std::move(*op), std::move(remembered),
                   answer(std::move(result), std::move(done)));
    return {};
}

Result<void> Store::Impl::confirm_epoch(const ConfirmEpoch& request, DoneCallback done) {
    SPIRIT_TRY(core::validate_stream_name(request.stream, core::NameScope::system));
    if (request.epoch == core::Epoch{0}) {
        return core::make_error(errc::invalid_argument,
                                fmt::format("stream {}: epoch 0", request.stream));
    }
    std::lock_guard lock(mutex_);
    SPIRIT_TRY(writable());
    std::optional<detail::StreamRecord> created;
    auto found =
        head_for(request.stream, CreateMode::if_missing, created, request.policy, options_.clock());
    if (!found) return core::Unexpected{found.error()};
    Head& head = **found;
    if (created) {
        if (auto ok = check_start(request.stream, request.seq, request.hash); !ok) {
            heads_.erase(std::string(request.stream));
            return ok;
        }
        start_after(*created, head, request.seq, request.hash,
                    request.seq >= request.history ? request.epoch : core::Epoch{0});
        submit_on_head(request.stream, head, detail::CreateOp{*created}, {}, std::move(done));
        return {};
    }
    if (request.epoch < head.confirmed_epoch) {
        return stale_epoch(request.stream, request.epoch, head.confirmed_epoch);
    }
    if (request.seq != head.last_seq) {
        return core::make_error(
            errc::invalid_argument,
            fmt::format("stream {}: this copy ends at seq {} (hash {}), not at seq {} (hash {})",
                        request.stream, head.last_seq.value(), core::digest_hex(head.last_hash),
                        request.seq.value(), core::digest_hex(request.hash)));
    }
    if (request.hash != head.last_hash) {
        return core::make_error(
            errc::hash_mismatch,
            fmt::format("stream {} seq {}: hash mismatch, this copy has {}, "
                        "the confirmation names {}",
                        request.stream, request.seq.value(), core::digest_hex(head.last_hash),
                        core::digest_hex(request.hash)));
    }
    if (request.epoch == head.confirmed_epoch || request.seq < request.history) {
        submit_on_head(request.stream, head, detail::BarrierOp{}, {}, std::move(done));
        return {};
    }
    head.confirmed_epoch = request.epoch;
    submit_on_head(request.stream, head, detail::ConfirmOp{request.epoch}, {}, std::move(done));
    return {};
}

}  // namespace spirit::storage
