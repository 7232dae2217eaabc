#include "daemon/cluster/topology_log.h"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/hash_chain.h"
#include "core/topology_codec.h"
#include "daemon/log.h"
#include "topology/view.h"

namespace spirit::daemon {

namespace proto = core::protocol;

namespace {

constexpr std::string_view node_key_instance = "instance";

core::TimestampNs now_ns() {
    const auto since = std::chrono::system_clock::now().time_since_epoch();
    return core::TimestampNs{static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(since).count())};
}

core::Bytes encode_u64(std::uint64_t v) {
    core::Bytes out(8);
    for (int i = 7; i >= 0; --i) {
        out[static_cast<std::size_t>(i)] = std::byte{static_cast<unsigned char>(v & 0xff)};
        v >>= 8;
    }
    return out;
}

core::EventId id_of(const core::Digest& hash) {
    core::EventId id;
    std::memcpy(id.bytes.data(), hash.bytes.data(), id.bytes.size());
    return id;
}

}  // namespace

TopologyLog::TopologyLog(Context context) : c_(std::move(context)) {}

TopologyLog::~TopologyLog() {
    *alive_ = false;
}

core::Result<void> TopologyLog::load_instance() {
    auto stored = c_.store.node_value(node_key_instance);
    if (!stored) return core::Unexpected{stored.error()};
    std::uint64_t instance = 0;
    if (*stored && (*stored)->size() == 8) {
        for (std::byte b : **stored) instance = (instance << 8) | static_cast<std::uint8_t>(b);
    } else if (*stored) {
        return core::make_error(core::errc::corrupt, "node value \"instance\" is not 8 bytes");
    } else {
        // A new data dir: a new sub-log. Recorded before any own event is
        // appended (the writer commits in order).
        randombytes_buf(&instance, sizeof instance);
        auto put = c_.store.put_node_value(
            node_key_instance, encode_u64(instance), [](core::Result<void> r) {
                if (!r) {
                    spdlog::error("recording the instance: {}", r.error().message());
                }
            });
        if (!put) return core::Unexpected{put.error()};
    }
    author_ = core::TopologyAuthor{c_.self, instance};
    return {};
}

core::Result<std::vector<core::TopologyEvent>> TopologyLog::load() {
    SPIRIT_TRY(load_instance());
    struct Stored {
        core::SealedTopologyEvent event;
        core::Bytes bytes;
    };
    std::vector<Stored> stored;
    auto info = c_.store.stream_info(topology_stream);
    if (!info) return core::Unexpected{info.error()};
    core::Seq next{1};
    while (*info && next <= (*info)->last_seq) {
        std::optional<core::Error> bad;
        auto read = c_.store.read(
            topology_stream, {.from_seq = next, .events_max = 4096},
            [&](const core::EnvelopeView& e, core::ByteView) {
                auto sealed = core::decode_topology_event(e.payload);
                if (!sealed) {
                    bad = core::Error{
                        sealed.error().code,
                        fmt::format("$topology seq {}: {}", e.seq.value(), sealed.error().detail)};
                    return storage::Visit::stop;
                }
                stored.push_back(
                    {std::move(*sealed), core::Bytes(e.payload.begin(), e.payload.end())});
                return storage::Visit::next;
            });
        if (!read) return core::Unexpected{read.error()};
        if (bad) return core::Unexpected{*bad};
        if (read->events == 0) break;
        next = read->next_seq;
    }
    std::stable_sort(stored.begin(), stored.end(), [](const Stored& a, const Stored& b) {
        return a.event.event.key < b.event.event.key;
    });
    std::vector<core::TopologyEvent> out;
    for (Stored& s : stored) {
        const core::SealedTopologyEvent& e = s.event;
        AuthorLog& log = logs_[e.event.key.author];
        if (e.event.key.seq <= log.sealed.size()) continue;  // stored twice
        auto key = c_.keys.find(e.event.key.author.node);
        std::optional<std::string> why;
        if (e.event.key.seq != log.sealed.size() + 1) {
            why = "a gap before it";
        } else if (key == c_.keys.end()) {
            why = "its author is no longer a member";
        } else if (auto ok = core::verify_topology_event(e, key->second, log.last_hash); !ok) {
            why = ok.error().detail;
        }
        if (why) {
            spdlog::warn("$topology event {} is ignored: {}",
                         core::topology_event_name(e.event.key), *why);
            continue;
        }
        log.sealed.push_back(std::move(s.bytes));
        log.last_hash = e.hash;
        log.accepted = log.sealed.size();
        log.accepted_hash = e.hash;
        out.push_back(e.event);
    }
    sealed_hash_ = logs_[author_].last_hash;
    events_ = out.size();
    return out;
}

void TopologyLog::append_own(std::vector<core::TopologyEvent> events,
                             std::function<void()> durable) {
    SPIRIT_ASSERT(!events.empty());
    Batch batch{std::move(events), {}, {}, std::move(durable)};
    std::uint64_t seq =
        own_.empty() ? logs_[author_].sealed.size() : own_.back().events.back().key.seq;
    for (core::TopologyEvent& e : batch.events) {
        SPIRIT_ASSERT(e.key.author == author_);
        SPIRIT_ASSERT_MSG(e.key.seq == ++seq, "own $topology events out of order");
        e.timestamp = now_ns();
        core::Digest hash;
        batch.sealed.push_back(core::seal_topology_event(e, sealed_hash_, c_.identity, &hash));
        batch.hashes.push_back(hash);
        sealed_hash_ = hash;
    }
    own_.push_back(std::move(batch));
    start_append();
}

void TopologyLog::start_append() {
    if (own_in_flight_ || own_.empty()) return;
    own_in_flight_ = true;
    retry_ = false;
    const Batch& front = own_.front();
    std::weak_ptr<bool> alive = alive_;
    auto queued = store_events(front.sealed, front.hashes, [this, alive](bool ok) {
        if (alive.expired() || !*alive.lock()) return;
        own_in_flight_ = false;
        if (!ok) {
            retry_ = true;  // tick() tries again; the next batch waits for this one
            return;
        }
        Batch done = std::move(own_.front());
        own_.pop_front();
        AuthorLog& log = logs_[author_];
        for (std::size_t i = 0; i < done.sealed.size(); ++i) {
            log.sealed.push_back(std::move(done.sealed[i]));
            log.last_hash = done.hashes[i];
        }
        log.accepted = log.sealed.size();
        log.accepted_hash = log.last_hash;
        events_ += done.events.size();
        done.durable();
        start_append();
    });
    if (!queued) {
        own_in_flight_ = false;
        retry_ = true;
        spdlog::error("storing this node's $topology events: {}; retrying",
                      queued.error().message());
    }
}

void TopologyLog::tick() {
    if (retry_) start_append();
}

core::Result<void> TopologyLog::store_events(const std::vector<core::Bytes>& sealed,
                                             const std::vector<core::Digest>& hashes,
                                             std::function<void(bool)> done) {
    SPIRIT_ASSERT(sealed.size() == hashes.size());
    std::vector<core::EventDraft> drafts;
    drafts.reserve(sealed.size());
    for (std::size_t i = 0; i < sealed.size(); ++i) {
        auto decoded = core::decode_topology_event(sealed[i]);
        SPIRIT_ASSERT(decoded.has_value());
        drafts.push_back(
            core::EventDraft{id_of(hashes[i]),
                             core::topology_kind_name(core::topology_kind(decoded->event.body)),
                             {},
                             sealed[i]});
    }
    return c_.store.append(
        storage::AppendRequest{
            .stream = topology_stream, .events = drafts, .epoch = core::Epoch{1}},
        [this, alive = std::weak_ptr<bool>(alive_),
         done = std::move(done)](core::Result<storage::AppendResult> r) {
            if (!r) spdlog::error("storing $topology events: {}", r.error().message());
            if (r && r->stored > 0 && !alive.expired() && *alive.lock() && c_.stored) {
                c_.stored(r->last_seq);
            }
            done(r.has_value());
        });
}

std::optional<std::string> TopologyLog::check(const core::SealedTopologyEvent& e) const {
    auto key = c_.keys.find(e.event.key.author.node);
    if (key == c_.keys.end()) return "its author is not a member";
    const AuthorLog* log = nullptr;
    if (auto it = logs_.find(e.event.key.author); it != logs_.end()) log = &it->second;
    const core::Digest prev = log != nullptr ? log->accepted_hash : core::genesis_hash;
    if (auto ok = core::verify_topology_event(e, key->second, prev); !ok) return ok.error().detail;
    return topology::check_event(e.event, c_.members);
}

void TopologyLog::refuse(const core::NodeId& from, const std::string& why) {
    ++refused_;
    last_refusal_ = fmt::format("from {}: {}", from.value(), why);
    spdlog::warn("refused a $topology event {}", last_refusal_);
}

void TopologyLog::accept(const core::NodeId& from, const std::vector<core::ByteView>& sealed,
                         const Learned& learned) {
    std::vector<core::Bytes> batch;
    std::vector<core::Digest> hashes;
    std::vector<core::TopologyEvent> events;
    std::set<core::TopologyAuthor> refused_authors;
    for (core::ByteView bytes : sealed) {
        auto decoded = core::decode_topology_event(bytes);
        if (!decoded) {
            refuse(from, decoded.error().detail);
            return;  // the rest cannot be read as continuing anything
        }
        const core::TopologyKey& key = decoded->event.key;
        if (key.author == author_ || refused_authors.contains(key.author)) continue;
        const std::uint64_t accepted =
            logs_.contains(key.author) ? logs_.at(key.author).accepted : 0;
        if (key.seq != accepted + 1) continue;  // held already, or a gap: sent again later
        if (auto why = check(*decoded)) {
            refuse(from, core::topology_event_name(key) + ": " + *why);
            refused_authors.insert(key.author);
            continue;
        }
        AuthorLog& log = logs_[key.author];
        log.accepted = key.seq;
        log.accepted_hash = decoded->hash;
        batch.emplace_back(bytes.begin(), bytes.end());
        hashes.push_back(decoded->hash);
        events.push_back(std::move(decoded->event));
    }
    if (batch.empty()) return;
    std::weak_ptr<bool> alive = alive_;
    auto stored = std::make_shared<std::vector<core::Bytes>>(batch);
    auto rollback = [this, events] {
        for (const core::TopologyEvent& e : events) {
            AuthorLog& log = logs_[e.key.author];
            log.accepted = log.sealed.size();
            log.accepted_hash = log.last_hash;
        }
    };
    auto queued = store_events(batch, hashes,
                               [this, alive, stored, hashes, events, learned, rollback](bool ok) {
                                   if (alive.expired() || !*alive.lock()) return;
                                   if (!ok) return rollback();
                                   for (std::size_t i = 0; i < events.size(); ++i) {
                                       AuthorLog& log = logs_[events[i].key.author];
                                       log.sealed.push_back(std::move((*stored)[i]));
                                       log.last_hash = hashes[i];
                                       ++events_;
                                       learned(events[i]);
                                   }
                               });
    if (!queued) {
        spdlog::warn("storing $topology events from {}: {}", from.value(),
                     queued.error().message());
        rollback();
    }
}

std::vector<proto::TopologyVersion> TopologyLog::versions() const {
    std::vector<proto::TopologyVersion> out;
    out.reserve(logs_.size());
    for (const auto& [author, log] : logs_) {
        if (log.sealed.empty()) continue;
        out.push_back({author.node.value(), author.instance, log.sealed.size()});
    }
    return out;
}

std::vector<proto::TopologySubLog> TopologyLog::sublogs() const {
    std::vector<proto::TopologySubLog> out;
    for (const auto& [author, log] : logs_) {
        if (log.sealed.empty()) continue;
        // Stored events were checked when they came: they decode.
        auto last = core::decode_topology_event(log.sealed.back());
        SPIRIT_ASSERT(last.has_value());
        out.push_back(
            {author.node.value(), author.instance, log.sealed.size(), last->event.timestamp});
    }
    return out;
}

std::vector<core::ByteView> TopologyLog::missing_for(
    const std::vector<proto::TopologyVersion>& theirs, std::size_t bytes_max) const {
    std::map<core::TopologyAuthor, std::uint64_t> held;
    for (const proto::TopologyVersion& v : theirs) {
        held[core::TopologyAuthor{core::NodeId(v.node), v.instance}] = v.seq;
    }
    std::vector<core::ByteView> out;
    std::size_t bytes = 0;
    for (const auto& [author, log] : logs_) {
        auto it = held.find(author);
        const std::uint64_t from = it == held.end() ? 0 : it->second;
        for (std::uint64_t seq = from; seq < log.sealed.size(); ++seq) {
            const core::Bytes& b = log.sealed[seq];
            if (!out.empty() && bytes + b.size() > bytes_max) return out;
            out.emplace_back(b);
            bytes += b.size();
        }
    }
    return out;
}

}  // namespace spirit::daemon
