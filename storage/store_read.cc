// The read side of the store: every read runs in its own LMDB read
// transaction and verifies each envelope's chain hash before handing it out,
// because LMDB has no page checksums and the chain is what detects rot.
// Also the quarantine's and the node database's readers.
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/codec.h"
#include "core/hash_chain.h"
#include "storage/keys.h"
#include "storage/outbox_record.h"
#include "storage/store_impl.h"

namespace spirit::storage {

using core::errc;
using core::Result;
using detail::Cursor;
using detail::StreamRecord;
using detail::Txn;

namespace {

// Long read transactions pin pages and grow the file: verify() renews its
// transaction every this many events.
constexpr std::uint64_t verify_events_per_txn = 10'000;

core::Unexpected corrupt(std::string_view stream, core::Seq seq, std::string_view what) {
    return core::make_error(errc::corrupt,
                            fmt::format("stream {} seq {}: {}", stream, seq.value(), what));
}

StreamInfo info_of(std::string_view name, const StreamRecord& r) {
    return StreamInfo{.name = std::string(name),
                      .id = r.id,
                      .policy = r.policy,
                      .first_seq = r.first_seq,
                      .last_seq = r.last_seq,
                      .last_epoch = r.last_epoch,
                      .confirmed_epoch = r.confirmed_epoch,
                      .last_timestamp_ns = r.last_timestamp_ns,
                      .last_hash = r.last_hash,
                      .base_hash = r.base_hash,
                      .event_count = r.event_count(),
                      .event_bytes = r.event_bytes,
                      .created_ns = r.created_ns};
}

}  // namespace

Result<std::optional<StreamRecord>> Store::Impl::record(const Txn& txn,
                                                        std::string_view stream) const {
    auto stored = txn.get(dbis_.streams, core::as_bytes(stream));
    if (!stored) return core::Unexpected{stored.error()};
    if (!*stored) return std::optional<StreamRecord>{};
    auto r = detail::decode_stream_record(**stored, stream);
    if (!r) return core::Unexpected{r.error()};
    return std::optional<StreamRecord>{*r};
}

namespace {

// The hash the envelope at `seq` must chain on: the base hash at the start
// of the retained stream, else the stored hash of seq - 1.
Result<core::Digest> prev_hash_of(const Txn& txn, MDB_dbi events, std::string_view stream,
                                  const StreamRecord& r, core::Seq seq) {
    if (seq <= r.first_seq) return r.base_hash;
    auto key = detail::event_key(r.id, seq.prev());
    auto value = txn.get(events, detail::view_of(key));
    if (!value) return core::Unexpected{value.error()};
    if (!*value) return corrupt(stream, seq.prev(), "missing");
    auto view = core::decode_envelope(**value);
    if (!view) return corrupt(stream, seq.prev(), view.error().detail);
    return view->hash;
}

// Iterates events [from, to] of a stream in one transaction, verifying each
// against `prev`, which is advanced. `visit` returns false to stop early.
template <class Visit>
Result<void> walk(const Txn& txn, MDB_dbi events, std::string_view stream, const StreamRecord& r,
                  core::Seq from, core::Seq to, core::Digest& prev, Visit visit,
                  Verification verification = Verification::chain) {
    auto cursor = Cursor::open(txn, events);
    if (!cursor) return core::Unexpected{cursor.error()};
    auto start = detail::event_key(r.id, from);
    auto entry = cursor->seek(detail::view_of(start));
    for (core::Seq seq = from; seq <= to; seq = seq.next()) {
        if (!entry) return core::Unexpected{entry.error()};
        if (!*entry) return corrupt(stream, seq, "missing");
        auto [key, value] = **entry;
        if (key.size() != sizeof(detail::EventKey) || detail::event_key_stream(key) != r.id ||
            detail::event_key_seq(key) != seq) {
            return corrupt(stream, seq, "missing");
        }
        auto view = verification == Verification::chain ? core::verify_envelope(value, prev)
                                                        : core::decode_envelope(value);
        if (!view) {
            if (view.error().is(errc::hash_mismatch)) return core::Unexpected{view.error()};
            return corrupt(stream, seq, view.error().detail);
        }
        if (view->seq != seq || view->stream != stream) {
            return corrupt(stream, seq,
                           fmt::format("stored under this key but names stream {} seq {}",
                                       view->stream, view->seq.value()));
        }
        prev = view->hash;
        if (!visit(*view, value)) break;
        entry = cursor->step(MDB_NEXT);
    }
    return {};
}

}  // namespace

Result<ReadSummary> Store::Impl::read(std::string_view stream, const ReadOptions& options,
                                      EventVisitor visitor) const {
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto stored = record(*txn, stream);
    if (!stored) return core::Unexpected{stored.error()};
    if (!*stored)
        return core::make_error(errc::not_found, fmt::format("stream {} does not exist", stream));
    const StreamRecord& r = **stored;
    ReadSummary summary;
    const core::Seq from = std::max(options.from_seq, r.first_seq);
    summary.next_seq = from;
    if (from > r.last_seq || options.events_max == 0) return summary;
    auto prev = options.verification == Verification::chain
                    ? prev_hash_of(*txn, dbis_.events, stream, r, from)
                    : Result<core::Digest>(core::Digest{});
    if (!prev) return core::Unexpected{prev.error()};
    const std::uint64_t span =
        std::min<std::uint64_t>(options.events_max - 1, r.last_seq.value() - from.value());
    const core::Seq to{from.value() + span};
    SPIRIT_TRY(walk(
        *txn, dbis_.events, stream, r, from, to, *prev,
        [&](const core::EnvelopeView& view, core::ByteView encoded) {
            if (summary.events > 0 && summary.bytes + encoded.size() > options.bytes_max) {
                return false;
            }
            ++summary.events;
            summary.bytes += encoded.size();
            summary.next_seq = view.seq.next();
            return visitor(view, encoded) == Visit::next;
        },
        options.verification));
    return summary;
}

Result<core::Seq> Store::Impl::seq_at_time(std::string_view stream, core::TimestampNs ts) const {
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto stored = record(*txn, stream);
    if (!stored) return core::Unexpected{stored.error()};
    if (!*stored)
        return core::make_error(errc::not_found, fmt::format("stream {} does not exist", stream));
    const StreamRecord& r = **stored;
    // Timestamps never decrease along a stream (the sequencer stamps the max
    // of the clock and the last one), so the first seq at or after `ts` is a
    // binary search.
    std::uint64_t low = r.first_seq.value();
    std::uint64_t high = r.last_seq.value() + 1;
    while (low < high) {
        const std::uint64_t mid = low + (high - low) / 2;
        auto key = detail::event_key(r.id, core::Seq{mid});
        auto value = txn->get(dbis_.events, detail::view_of(key));
        if (!value) return core::Unexpected{value.error()};
        if (!*value) return corrupt(stream, core::Seq{mid}, "missing");
        auto view = core::decode_envelope(**value);
        if (!view) return corrupt(stream, core::Seq{mid}, view.error().detail);
        if (view->timestamp_ns < ts) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    return core::Seq{low};
}

Result<std::optional<core::Envelope>> Store::Impl::read_last(std::string_view stream) const {
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto stored = record(*txn, stream);
    if (!stored) return core::Unexpected{stored.error()};
    if (!*stored)
        return core::make_error(errc::not_found, fmt::format("stream {} does not exist", stream));
    const StreamRecord& r = **stored;
    if (r.event_count() == 0) return std::optional<core::Envelope>{};
    auto prev = prev_hash_of(*txn, dbis_.events, stream, r, r.last_seq);
    if (!prev) return core::Unexpected{prev.error()};
    std::optional<core::Envelope> last;
    SPIRIT_TRY(walk(*txn, dbis_.events, stream, r, r.last_seq, r.last_seq, *prev,
                    [&](const core::EnvelopeView& view, core::ByteView) {
                        last = core::Envelope::from_view(view);
                        return true;
                    }));
    return last;
}

Result<core::Seq> Store::Impl::seq_keeping_bytes(std::string_view stream, std::uint64_t bytes_max,
                                                 std::uint64_t events_max_walked) const {
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto stored = record(*txn, stream);
    if (!stored) return core::Unexpected{stored.error()};
    if (!*stored) {
        return core::make_error(errc::not_found, fmt::format("stream {} does not exist", stream));
    }
    const StreamRecord& r = **stored;
    std::uint64_t remaining = r.event_bytes;
    core::Seq seq = r.first_seq;
    auto cursor = Cursor::open(*txn, dbis_.events);
    if (!cursor) return core::Unexpected{cursor.error()};
    auto start = detail::event_key(r.id, seq);
    auto entry = cursor->seek(detail::view_of(start));
    for (std::uint64_t n = 0; n < events_max_walked && remaining > bytes_max && seq <= r.last_seq;
         ++n) {
        if (!entry) return core::Unexpected{entry.error()};
        if (!*entry || detail::event_key_stream((*entry)->first) != r.id) break;
        remaining -= std::min<std::uint64_t>(remaining, (*entry)->second.size());
        seq = seq.next();
        entry = cursor->step(MDB_NEXT);
    }
    return seq;
}

Result<std::optional<StreamInfo>> Store::Impl::stream_info(std::string_view stream) const {
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto stored = record(*txn, stream);
    if (!stored) return core::Unexpected{stored.error()};
    if (!*stored) return std::optional<StreamInfo>{};
    return std::optional<StreamInfo>{info_of(stream, **stored)};
}

Result<std::vector<StreamInfo>> Store::Impl::list_streams(std::string_view after,
                                                          std::size_t limit) const {
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto cursor = Cursor::open(*txn, dbis_.streams);
    if (!cursor) return core::Unexpected{cursor.error()};
    std::vector<StreamInfo> out;
    auto entry = after.empty() ? cursor->step(MDB_FIRST) : cursor->seek(core::as_bytes(after));
    for (; out.size() < limit; entry = cursor->step(MDB_NEXT)) {
        if (!entry) return core::Unexpected{entry.error()};
        if (!*entry) break;
        std::string_view name = core::as_chars((*entry)->first);
        if (name == after) continue;
        auto r = detail::decode_stream_record((*entry)->second, name);
        if (!r) return core::Unexpected{r.error()};
        out.push_back(info_of(name, *r));
    }
    return out;
}

Result<VerifyReport> Store::Impl::verify(std::string_view stream) const {
    VerifyReport report;
    report.stream = std::string(stream);
    std::optional<StreamRecord> snapshot;
    {
        auto txn = Txn::begin(env_, Txn::Mode::read);
        if (!txn) return core::Unexpected{txn.error()};
        auto stored = record(*txn, stream);
        if (!stored) return core::Unexpected{stored.error()};
        if (!*stored) {
            return core::make_error(errc::not_found,
                                    fmt::format("stream {} does not exist", stream));
        }
        snapshot = **stored;
    }
    const StreamRecord& r = *snapshot;
    report.first_seq = r.first_seq;
    report.last_seq = r.last_seq;
    core::Digest prev = r.base_hash;
    core::Seq next = r.first_seq;
    // Walk in bounded transactions. Appends only add after r.last_seq, so the
    // snapshot range stays valid; a concurrent trim or truncate shows up as a
    // missing seq, which the report names.
    while (next <= r.last_seq) {
        auto txn = Txn::begin(env_, Txn::Mode::read);
        if (!txn) return core::Unexpected{txn.error()};
        const core::Seq to{std::min(r.last_seq.value(), next.value() + verify_events_per_txn - 1)};
        core::Seq at = next;
        auto walked = walk(*txn, dbis_.events, stream, r, next, to, prev,
                           [&](const core::EnvelopeView& view, core::ByteView) {
                               ++report.events_checked;
                               at = view.seq.next();
                               return true;
                           });
        if (!walked) {
            report.first_break = ChainBreak{at, walked.error().message()};
            return report;
        }
        next = to.next();
    }
    if (r.event_count() > 0 && prev != r.last_hash) {
        report.first_break = ChainBreak{
            r.last_seq, fmt::format("stream {}: the chain ends in {} but the stream record says {}",
                                    stream, core::digest_hex(prev), core::digest_hex(r.last_hash))};
    }
    return report;
}

Result<std::optional<core::Seq>> Store::Impl::cursor(std::string_view consumer,
                                                     std::string_view stream) const {
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto stored = record(*txn, stream);
    if (!stored) return core::Unexpected{stored.error()};
    if (!*stored) return std::optional<core::Seq>{};
    core::Bytes key = detail::cursor_key(consumer, (*stored)->id);
    auto value = txn->get(dbis_.cursors, key);
    if (!value) return core::Unexpected{value.error()};
    if (!*value || (*value)->size() != 8) return std::optional<core::Seq>{};
    return std::optional<core::Seq>{core::Seq{core::load_be64((*value)->data())}};
}

Result<std::vector<OutboxEntry>> Store::Impl::outbox_read(std::size_t entries_max) const {
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto cursor = Cursor::open(*txn, dbis_.outbox);
    if (!cursor) return core::Unexpected{cursor.error()};
    std::vector<OutboxEntry> out;
    for (auto entry = cursor->step(MDB_FIRST); out.size() < entries_max;
         entry = cursor->step(MDB_NEXT)) {
        if (!entry) return core::Unexpected{entry.error()};
        if (!*entry) break;
        if ((*entry)->first.size() != 8) return core::make_error(errc::corrupt, "outbox key size");
        auto decoded =
            detail::decode_outbox_entry(core::load_be64((*entry)->first.data()), (*entry)->second);
        if (!decoded) return core::Unexpected{decoded.error()};
        out.push_back(std::move(*decoded));
    }
    return out;
}

Result<std::uint64_t> Store::Impl::outbox_events() const {
    auto entries = outbox_read(SIZE_MAX);
    if (!entries) return core::Unexpected{entries.error()};
    std::uint64_t n = 0;
    for (const OutboxEntry& e : *entries) n += e.events.size();
    return n;
}

Result<void> Store::Impl::check_removable(const Txn& txn, std::string_view stream,
                                          const StreamRecord& r, core::Seq after) const {
    if (after >= r.last_seq) return {};
    auto cursor = Cursor::open(txn, dbis_.events);
    if (!cursor) return core::Unexpected{cursor.error()};
    auto start = detail::event_key(r.id, after.next());
    auto entry = cursor->seek(detail::view_of(start));
    for (core::Seq seq = after.next(); seq <= r.last_seq;
         seq = seq.next(), entry = cursor->step(MDB_NEXT)) {
        if (!entry) return core::Unexpected{entry.error()};
        if (!*entry || detail::event_key_stream((*entry)->first) != r.id ||
            detail::event_key_seq((*entry)->first) != seq) {
            return corrupt(stream, seq, "missing; nothing was quarantined");
        }
        auto view = core::decode_envelope((*entry)->second);
        if (!view) {
            return corrupt(stream, seq,
                           fmt::format("the envelope does not decode ({}); nothing was "
                                       "quarantined",
                                       view.error().detail));
        }
        if (view->seq != seq || view->stream != stream) {
            return corrupt(stream, seq,
                           fmt::format("the envelope stored there names stream {} seq {}; "
                                       "nothing was quarantined",
                                       view->stream, view->seq.value()));
        }
    }
    return {};
}

Result<std::vector<std::optional<core::Digest>>> Store::Impl::hashes_at(
    std::string_view stream, std::span<const core::Seq> seqs) const {
    if (seqs.size() > hashes_at_seqs_max) {
        return core::make_error(errc::limit_exceeded,
                                fmt::format("stream {}: hashes of {} seqs asked at once, limit {}",
                                            stream, seqs.size(), hashes_at_seqs_max));
    }
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto stored = record(*txn, stream);
    if (!stored) return core::Unexpected{stored.error()};
    if (!*stored) {
        return core::make_error(errc::not_found, fmt::format("stream {} does not exist", stream));
    }
    const StreamRecord& r = **stored;
    std::vector<std::optional<core::Digest>> out;
    out.reserve(seqs.size());
    for (core::Seq seq : seqs) {
        if (seq == core::Seq{0}) {
            out.emplace_back(core::genesis_hash);
        } else if (seq.next() == r.first_seq) {
            out.emplace_back(r.base_hash);
        } else if (seq < r.first_seq || seq > r.last_seq) {
            out.emplace_back(std::nullopt);
        } else {
            auto key = detail::event_key(r.id, seq);
            auto value = txn->get(dbis_.events, detail::view_of(key));
            if (!value) return core::Unexpected{value.error()};
            if (!*value) return corrupt(stream, seq, "missing");
            auto view = core::decode_envelope(**value);
            if (!view) return corrupt(stream, seq, view.error().detail);
            out.emplace_back(view->hash);
        }
    }
    return out;
}

namespace {

// Quarantine keys: stream id ‖ seq ‖ epoch ‖ hash[0..8) (storage/keys.h).
core::StreamId quarantine_key_stream(core::ByteView key) {
    return core::StreamId{core::load_be64(key.data())};
}
core::Seq quarantine_key_seq(core::ByteView key) {
    return core::Seq{core::load_be64(key.data() + 8)};
}
core::Epoch quarantine_key_epoch(core::ByteView key) {
    return core::Epoch{core::load_be64(key.data() + 16)};
}

// The stream ids that have quarantined events, with the stream name their
// envelopes carry (the live record's name if none decodes), in id order.
// One seek per id.
struct QuarantineGroup {
    core::StreamId id;
    std::string name;
};

Result<std::optional<std::string>> live_name_of(const Txn& txn, MDB_dbi streams,
                                                core::StreamId id) {
    auto cursor = Cursor::open(txn, streams);
    if (!cursor) return core::Unexpected{cursor.error()};
    for (auto entry = cursor->step(MDB_FIRST);; entry = cursor->step(MDB_NEXT)) {
        if (!entry) return core::Unexpected{entry.error()};
        if (!*entry) return std::optional<std::string>{};
        std::string_view name = core::as_chars((*entry)->first);
        auto r = detail::decode_stream_record((*entry)->second, name);
        if (!r) return core::Unexpected{r.error()};
        if (r->id == id) return std::optional<std::string>{std::string(name)};
    }
}

Result<std::vector<QuarantineGroup>> quarantine_groups(const Txn& txn, MDB_dbi quarantine,
                                                       MDB_dbi streams) {
    auto cursor = Cursor::open(txn, quarantine);
    if (!cursor) return core::Unexpected{cursor.error()};
    std::vector<QuarantineGroup> groups;
    auto entry = cursor->step(MDB_FIRST);
    for (;;) {
        if (!entry) return core::Unexpected{entry.error()};
        if (!*entry) break;
        if ((*entry)->first.size() != sizeof(detail::QuarantineKey)) {
            return core::make_error(errc::corrupt, "a quarantine key has the wrong size");
        }
        const core::StreamId id = quarantine_key_stream((*entry)->first);
        std::optional<std::string> name;
        // The first entry that decodes names the stream (only a store older
        // than truncation's checks holds entries that do not).
        while (!name) {
            if (auto view = core::decode_envelope((*entry)->second)) {
                name = std::string(view->stream);
                break;
            }
            entry = cursor->step(MDB_NEXT);
            if (!entry) return core::Unexpected{entry.error()};
            if (!*entry || quarantine_key_stream((*entry)->first) != id) break;
        }
        if (!name) {
            auto live = live_name_of(txn, streams, id);
            if (!live) return core::Unexpected{live.error()};
            if (!*live) {
                return core::make_error(
                    errc::corrupt, fmt::format("quarantined events of stream id {} do not decode "
                                               "and no stream has that id",
                                               id.value()));
            }
            name = std::move(*live);
        }
        groups.push_back(QuarantineGroup{id, std::move(*name)});
        if (id.value() == UINT64_MAX) break;
        // The next stream id's first entry.
        std::array<std::byte, 8> next;
        core::store_be64(next.data(), id.value() + 1);
        entry = cursor->seek(detail::view_of(next));
    }
    return groups;
}

}  // namespace

Result<std::vector<QuarantineSummary>> Store::Impl::quarantine_streams() const {
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto groups = quarantine_groups(*txn, dbis_.quarantine, dbis_.streams);
    if (!groups) return core::Unexpected{groups.error()};
    // A name may have several ids: a stream deleted and created again.
    std::map<std::string, QuarantineSummary, std::less<>> by_name;
    std::map<std::string, std::map<core::Epoch, std::uint64_t>, std::less<>> epochs;
    auto cursor = Cursor::open(*txn, dbis_.quarantine);
    if (!cursor) return core::Unexpected{cursor.error()};
    for (const QuarantineGroup& g : *groups) {
        QuarantineSummary& summary = by_name[g.name];
        std::map<core::Epoch, std::uint64_t>& counts = epochs[g.name];
        std::array<std::byte, 8> prefix;
        core::store_be64(prefix.data(), g.id.value());
        for (auto entry = cursor->seek(detail::view_of(prefix));; entry = cursor->step(MDB_NEXT)) {
            if (!entry) return core::Unexpected{entry.error()};
            if (!*entry || quarantine_key_stream((*entry)->first) != g.id) break;
            const core::Seq seq = quarantine_key_seq((*entry)->first);
            if (summary.count == 0 || seq < summary.seq_min) summary.seq_min = seq;
            if (summary.count == 0 || seq > summary.seq_max) summary.seq_max = seq;
            ++summary.count;
            ++counts[quarantine_key_epoch((*entry)->first)];
        }
    }
    std::vector<QuarantineSummary> out;
    out.reserve(by_name.size());
    for (auto& [name, summary] : by_name) {
        summary.stream = name;
        for (const auto& [epoch, count] : epochs[name]) {
            summary.epochs.push_back(QuarantineEpochCount{epoch, count});
        }
        out.push_back(std::move(summary));
    }
    return out;
}

namespace {

// A quarantine entry's place in a stream's order: (seq, epoch, hash[0..8)),
// then the stream id, for names that had several.
struct QuarantineOrder {
    core::Seq seq;
    core::Epoch epoch;
    std::array<std::byte, 8> hash_prefix;
    friend auto operator<=>(const QuarantineOrder&, const QuarantineOrder&) = default;
};

QuarantineOrder order_of(core::ByteView key) {
    QuarantineOrder o{quarantine_key_seq(key), quarantine_key_epoch(key), {}};
    std::memcpy(o.hash_prefix.data(), key.data() + 24, 8);
    return o;
}

QuarantineOrder order_of(const QuarantinePosition& p) {
    QuarantineOrder o{p.seq, p.epoch, {}};
    std::memcpy(o.hash_prefix.data(), p.hash.bytes.data(), 8);
    return o;
}

}  // namespace

Result<QuarantinePage> Store::Impl::quarantine_read(std::string_view stream,
                                                    const QuarantineReadOptions& options) const {
    const std::size_t events_max = std::min(options.events_max, quarantine_read_events_max);
    QuarantinePage page;
    if (events_max == 0) return page;
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto groups = quarantine_groups(*txn, dbis_.quarantine, dbis_.streams);
    if (!groups) return core::Unexpected{groups.error()};
    // Up to events_max + 1 entries after `after` from each stream id of this
    // name, merged in order; the views live as long as the transaction.
    struct Candidate {
        QuarantineOrder order;
        core::ByteView value;
    };
    std::vector<Candidate> candidates;
    for (const QuarantineGroup& g : *groups) {
        if (g.name != stream) continue;
        auto cursor = Cursor::open(*txn, dbis_.quarantine);
        if (!cursor) return core::Unexpected{cursor.error()};
        auto start = options.after
                         ? detail::quarantine_key(g.id, options.after->seq, options.after->epoch,
                                                  options.after->hash)
                         : detail::quarantine_key(g.id, core::Seq{0}, core::Epoch{0}, {});
        std::size_t taken = 0;
        for (auto entry = cursor->seek(detail::view_of(start)); taken <= events_max;
             entry = cursor->step(MDB_NEXT)) {
            if (!entry) return core::Unexpected{entry.error()};
            if (!*entry || quarantine_key_stream((*entry)->first) != g.id) break;
            QuarantineOrder order = order_of((*entry)->first);
            if (options.after && order <= order_of(*options.after)) continue;
            candidates.push_back(Candidate{order, (*entry)->second});
            ++taken;
        }
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Candidate& a, const Candidate& b) { return a.order < b.order; });
    std::size_t bytes = 0;
    for (const Candidate& c : candidates) {
        if (page.events.size() == events_max ||
            (!page.events.empty() && bytes + c.value.size() > options.bytes_max)) {
            const QuarantinedEvent& last = page.events.back();
            page.next = QuarantinePosition{last.seq, last.epoch, last.envelope.hash};
            break;
        }
        auto view = core::decode_envelope(c.value);
        if (!view) {
            return corrupt(
                stream, c.order.seq,
                fmt::format("a quarantined envelope does not decode: {}", view.error().detail));
        }
        bytes += c.value.size();
        page.events.push_back(
            QuarantinedEvent{view->seq, view->epoch, core::Envelope::from_view(*view)});
    }
    return page;
}

Result<std::optional<core::Bytes>> Store::Impl::node_value(std::string_view key) const {
    auto txn = Txn::begin(env_, Txn::Mode::read);
    if (!txn) return core::Unexpected{txn.error()};
    auto value = txn->get(dbis_.node, core::as_bytes(key));
    if (!value) return core::Unexpected{value.error()};
    if (!*value) return std::optional<core::Bytes>{};
    return std::optional<core::Bytes>{core::Bytes((*value)->begin(), (*value)->end())};
}

}  // namespace spirit::storage
