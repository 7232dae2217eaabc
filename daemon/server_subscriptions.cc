// Subscriptions: start positions, durable cursors, credit-based flow
// control, and delivery. Catch-up and live delivery are one path: a
// subscription reads from the store at its own position whenever it has
// credit, the socket can take more, and its stream has committed events
// beyond that position. So switching from catch-up to live needs no hand-off
// and can neither skip nor repeat an event, and a slow subscriber holds at
// most one read batch plus its connection's bounded send queue.
#include <fmt/format.h>

#include "core/assert.h"
#include "core/hash_chain.h"
#include "core/stream_name.h"
#include "daemon/log.h"
#include "daemon/server.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

// A pattern names data streams; system streams (`$topology`) only when it
// starts with '$' itself, so `>` never mixes the daemon's own into a feed.
bool pattern_covers_stream(const std::string& pattern, const std::string& stream) {
    if (core::is_system_stream(stream) && !core::is_system_stream(pattern)) return false;
    return pattern_matches(pattern, stream);
}

// One read batch: bounds the memory a subscription uses per step.
constexpr std::size_t read_events_max = 1024;
constexpr std::size_t read_bytes_max = 1u << 20;
// Credit a consumer may hold; more is clamped (not an error).
constexpr std::uint64_t credit_events_max = 1'000'000;
constexpr std::uint64_t credit_bytes_max = std::uint64_t{1} << 32;
// Subscriptions pumped per call before yielding to I/O.
constexpr std::size_t pumps_per_turn = 256;

bool is_pattern(std::string_view target) {
    return target.find_first_of("*>") != std::string_view::npos;
}

}  // namespace

core::Result<void> Server::check_subscribe(const Session& session,
                                           const proto::Subscribe& subscribe) const {
    auto refused = [](errc code, std::string detail) {
        return core::Unexpected{core::Error{core::make_error_code(code), std::move(detail)}};
    };
    const std::uint64_t id = subscribe.subscription_id;
    if (session.subscriptions.contains(id)) {
        return refused(errc::already_exists, fmt::format("subscription {} is already open", id));
    }
    if (session.subscriptions.size() >= config_.limits.subscriptions_per_connection_max) {
        return refused(errc::limit_exceeded,
                       fmt::format("{} subscriptions on this connection (limit {})",
                                   session.subscriptions.size(),
                                   config_.limits.subscriptions_per_connection_max));
    }
    if (is_pattern(subscribe.target)) {
        if (auto valid = validate_pattern(subscribe.target); !valid) {
            return refused(errc::invalid_argument, valid.error().detail);
        }
        if (subscribe.from == proto::From::seq) {
            return refused(errc::invalid_argument,
                           "a pattern subscription cannot start at a seq; use first, last, new "
                           "or a time");
        }
    } else if (auto valid = core::validate_stream_name(subscribe.target, core::NameScope::system);
               !valid) {
        return refused(errc::invalid_stream_name, valid.error().detail);
    }
    if (!may(session, Right::subscribe, subscribe.target)) {
        return refused(errc::unauthorized,
                       fmt::format("this token may not subscribe to {}", subscribe.target));
    }
    if (subscribe.durable) {
        if (auto valid = core::validate_stream_name(*subscribe.durable); !valid) {
            return refused(errc::invalid_argument,
                           "durable consumer name: " + valid.error().detail);
        }
        if (durable_active_.contains(*subscribe.durable)) {
            return refused(errc::busy, fmt::format("durable consumer {} is already active on "
                                                   "another subscription",
                                                   *subscribe.durable));
        }
    }
    return {};
}

core::Result<void> Server::add_streams(Subscription& sub,
                                       std::vector<proto::StreamPosition>& positions) {
    if (!sub.pattern) return add_stream(sub, sub.target, positions);
    auto streams = store_->list_streams();
    if (!streams) return core::Unexpected{streams.error()};
    for (const storage::StreamInfo& info : *streams) {
        if (!pattern_covers_stream(sub.target, info.name)) continue;
        SPIRIT_TRY(add_stream(sub, info.name, positions));
    }
    pattern_subscriptions_.insert({sub.connection_id, sub.id});
    return {};
}

void Server::handle_subscribe(Session& session, proto::Subscribe&& subscribe) {
    const std::uint64_t id = subscribe.subscription_id;
    auto refuse = [&](const core::Error& e) {
        const auto code = e.code.category() == core::spirit_category()
                              ? static_cast<std::uint32_t>(e.code.value())
                              : static_cast<std::uint32_t>(errc::internal);
        send(session, proto::SubscriptionEnded{id, code, e.detail});
    };
    if (auto ok = check_subscribe(session, subscribe); !ok) return refuse(ok.error());
    auto sub = std::make_unique<Subscription>();
    sub->connection_id = session.connection->id();
    sub->id = id;
    sub->target = std::move(subscribe.target);
    sub->pattern = is_pattern(sub->target);
    sub->from = subscribe.from;
    sub->from_value = subscribe.from_value;
    sub->durable = std::move(subscribe.durable);
    sub->credit_events = std::min(subscribe.credit_events, credit_events_max);
    sub->bytes_limited = subscribe.credit_bytes > 0;
    sub->credit_bytes = std::min(subscribe.credit_bytes, credit_bytes_max);
    std::vector<proto::StreamPosition> positions;
    if (auto added = add_streams(*sub, positions); !added) {
        forget_subscription(*sub);
        return refuse(added.error());
    }
    if (sub->durable) {
        durable_active_.emplace(*sub->durable, SubscriptionKey{sub->connection_id, id});
    }
    send(session, proto::Subscribed{id, std::move(positions)});
    Subscription& stored = *session.subscriptions.emplace(id, std::move(sub)).first->second;
    schedule(stored);
}

core::Result<void> Server::add_stream(Subscription& sub, const std::string& stream,
                                      std::vector<proto::StreamPosition>& positions) {
    auto info = store_->stream_info(stream);
    if (!info) return core::Unexpected{info.error()};
    const core::Seq first = *info ? (*info)->first_seq : core::Seq{1};
    const core::Seq last = visibility_.visible(stream);
    StreamCursor cursor;
    bool resumed = false;
    if (sub.durable) {
        auto stored = store_->cursor(*sub.durable, stream);
        if (!stored) return core::Unexpected{stored.error()};
        // A write of this consumer's position may still be on its way to the
        // store (it left a moment ago): resume after that, not before.
        std::optional<core::Seq> at = *stored;
        if (auto w = cursor_writes_.find({*sub.durable, stream}); w != cursor_writes_.end()) {
            at = std::max(at.value_or(core::Seq{0}), w->second.highest);
        }
        if (at) {
            cursor.next_seq = at->next();
            cursor.acked = cursor.stored = *at;
            resumed = true;
        }
    }
    if (!resumed) {
        switch (sub.from) {
            case proto::From::first:
                cursor.next_seq = core::Seq{1};
                break;
            case proto::From::seq:
                cursor.next_seq = core::Seq{std::max<std::uint64_t>(sub.from_value, 1)};
                break;
            case proto::From::time: {
                if (!*info) break;
                auto at = store_->seq_at_time(stream, core::TimestampNs{sub.from_value});
                if (!at) return core::Unexpected{at.error()};
                cursor.next_seq = *at;
                break;
            }
            case proto::From::last:
                cursor.next_seq = last.value() > 0 ? last : core::Seq{1};
                break;
            case proto::From::new_:
                cursor.next_seq = last.next();
                break;
        }
    }
    cursor.next_seq = std::max(cursor.next_seq, first);
    // The hash the first delivered event chains on, so the consumer can
    // verify from its first event.
    core::Digest prev = core::genesis_hash;
    if (*info && cursor.next_seq == (*info)->first_seq) {
        prev = (*info)->base_hash;
    } else if (*info && cursor.next_seq.value() > 1 &&
               cursor.next_seq <= (*info)->last_seq.next()) {
        auto read = store_->read(stream, {.from_seq = cursor.next_seq.prev(), .events_max = 1},
                                 [&](const core::EnvelopeView& e, core::ByteView) {
                                     prev = e.hash;
                                     return storage::Visit::stop;
                                 });
        if (!read) return core::Unexpected{read.error()};
    }
    positions.push_back(proto::StreamPosition{stream, cursor.next_seq, prev});
    sub.streams.insert_or_assign(stream, cursor);
    subscribers_[stream].insert({sub.connection_id, sub.id});
    return {};
}

void Server::handle_credit(Session& session, const proto::Credit& credit) {
    auto it = session.subscriptions.find(credit.subscription_id);
    if (it == session.subscriptions.end()) return;  // ended meanwhile: not an error
    Subscription& sub = *it->second;
    sub.credit_events = std::min(sub.credit_events + credit.events, credit_events_max);
    sub.credit_bytes = std::min(sub.credit_bytes + credit.bytes, credit_bytes_max);
    schedule(sub);
}

void Server::handle_ack(Session& session, const proto::Ack& ack) {
    auto it = session.subscriptions.find(ack.subscription_id);
    if (it == session.subscriptions.end()) return;
    Subscription& sub = *it->second;
    if (!sub.durable) return;  // only durable consumers have cursors
    auto cursor = sub.streams.find(ack.stream);
    if (cursor == sub.streams.end()) return;
    // An ack beyond what was delivered is clamped: a cursor never claims
    // events the consumer has not seen.
    const core::Seq seq = std::min(ack.seq, cursor->second.next_seq.prev());
    if (seq <= cursor->second.acked) return;
    cursor->second.acked = seq;
    write_cursor(sub, ack.stream);
}

core::Result<void> Server::store_cursor(const std::string& consumer, const std::string& stream,
                                        core::Seq seq, storage::DoneCallback done) {
    const std::pair<std::string, std::string> key{consumer, stream};
    SPIRIT_TRY(store_->set_cursor(
        consumer, stream, seq, [this, key, done = std::move(done)](core::Result<void> r) mutable {
            auto w = cursor_writes_.find(key);
            if (w != cursor_writes_.end() && --w->second.in_flight == 0) {
                cursor_writes_.erase(w);
            }
            done(std::move(r));
        }));
    CursorWrite& w = cursor_writes_[key];
    w.highest = std::max(w.highest, seq);
    ++w.in_flight;
    return {};
}

void Server::write_cursor(Subscription& sub, const std::string& stream) {
    auto it = sub.streams.find(stream);
    if (it == sub.streams.end()) return;
    StreamCursor& cursor = it->second;
    if (cursor.writing || cursor.acked <= cursor.stored) return;
    const core::Seq target = cursor.acked;
    const SubscriptionKey key{sub.connection_id, sub.id};
    cursor.writing = true;
    auto queued = store_cursor(
        *sub.durable, stream, target, [this, key, stream, target](core::Result<void> r) {
            Session* s = session_of(key.first);
            if (s == nullptr) return;
            auto sit = s->subscriptions.find(key.second);
            if (sit == s->subscriptions.end()) return;
            auto cit = sit->second->streams.find(stream);
            if (cit == sit->second->streams.end()) return;
            cit->second.writing = false;
            if (!r) {
                // Not retried here (a store refusing writes would make that a
                // busy loop): the consumer's next ack tries again.
                spdlog::warn("storing the cursor of {} on {} failed: {}", *sit->second->durable,
                             stream, r.error().message());
                return;
            }
            cit->second.stored = std::max(cit->second.stored, target);
            write_cursor(*sit->second, stream);  // acks that came meanwhile
        });
    if (!queued) {
        cursor.writing = false;
        spdlog::warn("storing the cursor of {} on {} failed: {}", *sub.durable, stream,
                     queued.error().message());
    }
}

void Server::handle_unsubscribe(Session& session, std::uint64_t subscription_id) {
    auto it = session.subscriptions.find(subscription_id);
    if (it == session.subscriptions.end()) return;
    forget_subscription(*it->second);
    session.subscriptions.erase(it);
    send(session, proto::SubscriptionEnded{subscription_id, 0, "unsubscribed"});
}

void Server::end_subscription(Session& session, std::uint64_t subscription_id,
                              const core::Error& why) {
    auto it = session.subscriptions.find(subscription_id);
    if (it == session.subscriptions.end()) return;
    forget_subscription(*it->second);
    session.subscriptions.erase(it);
    send(session, proto::SubscriptionEnded{
                      subscription_id, static_cast<std::uint32_t>(why.code.value()), why.detail});
}

void Server::forget_subscription(const Subscription& sub) {
    const SubscriptionKey key{sub.connection_id, sub.id};
    for (const auto& [stream, cursor] : sub.streams) {
        auto it = subscribers_.find(stream);
        if (it != subscribers_.end()) {
            it->second.erase(key);
            if (it->second.empty()) subscribers_.erase(it);
        }
        // The last ack of a durable consumer is kept even if it came just
        // before the consumer left, also while an earlier write is in flight
        // (stored positions only move forward, so the two cannot undo each other).
        if (sub.durable && cursor.acked > cursor.stored) {
            auto failed = [name = *sub.durable, stream](const core::Error& e) {
                spdlog::warn("storing the last cursor of {} on {} failed: {}", name, stream,
                             e.message());
            };
            auto queued =
                store_cursor(*sub.durable, stream, cursor.acked, [failed](core::Result<void> r) {
                    if (!r) failed(r.error());
                });
            if (!queued) failed(queued.error());
        }
    }
    pattern_subscriptions_.erase(key);
    if (sub.durable) {
        auto it = durable_active_.find(*sub.durable);
        if (it != durable_active_.end() && it->second == key) durable_active_.erase(it);
    }
}

void Server::stream_visible(const std::string& stream, core::Seq last_seq) {
    (void)last_seq;  // subscriptions read it from visibility_ as they pump
    // Pattern subscriptions pick up streams they do not follow yet.
    for (const SubscriptionKey& key : std::vector<SubscriptionKey>(pattern_subscriptions_.begin(),
                                                                   pattern_subscriptions_.end())) {
        Session* s = session_of(key.first);
        if (s == nullptr) continue;
        auto sit = s->subscriptions.find(key.second);
        if (sit == s->subscriptions.end()) continue;
        Subscription& sub = *sit->second;
        if (sub.streams.contains(stream) || !pattern_covers_stream(sub.target, stream)) continue;
        std::vector<proto::StreamPosition> positions;
        // A stream that appears after the subscription started is followed
        // from its beginning, whatever `from` said.
        const proto::From from = sub.from;
        sub.from = sub.from == proto::From::new_ || sub.from == proto::From::last
                       ? proto::From::first
                       : sub.from;
        auto added = add_stream(sub, stream, positions);
        sub.from = from;
        if (!added) {
            spdlog::warn("subscription {} on {}: {}", sub.id, stream, added.error().message());
            continue;
        }
        send(*s, proto::Subscribed{sub.id, std::move(positions)});
    }
    auto subs = subscribers_.find(stream);
    if (subs == subscribers_.end()) return;
    for (const SubscriptionKey& key : subs->second) {
        Session* s = session_of(key.first);
        if (s == nullptr) continue;
        auto sit = s->subscriptions.find(key.second);
        if (sit != s->subscriptions.end()) schedule(*sit->second);
    }
}

void Server::stream_cut(const std::string& stream, core::Seq seq) {
    // Subscriptions past the cut saw events that are now in quarantine: end
    // them, so no consumer silently gets other events at the same seqs.
    auto subs = subscribers_.find(stream);
    if (subs == subscribers_.end()) return;
    const std::vector<SubscriptionKey> keys(subs->second.begin(), subs->second.end());
    for (const SubscriptionKey& key : keys) {
        Session* s = session_of(key.first);
        if (s == nullptr) continue;
        auto sit = s->subscriptions.find(key.second);
        if (sit == s->subscriptions.end()) continue;
        auto cursor = sit->second->streams.find(stream);
        if (cursor == sit->second->streams.end() || cursor->second.next_seq <= seq.next()) continue;
        end_subscription(*s, key.second,
                         core::Error{core::make_error_code(errc::busy),
                                     fmt::format("stream {} was cut after seq {}: the events after "
                                                 "it differed from the master's copy and were "
                                                 "moved to quarantine; subscribe again",
                                                 stream, seq.value())});
    }
}

void Server::stream_deleted(const std::string& stream) {
    visibility_.forget(stream);
    auto subs = subscribers_.find(stream);
    if (subs == subscribers_.end()) return;
    const std::vector<SubscriptionKey> keys(subs->second.begin(), subs->second.end());
    for (const SubscriptionKey& key : keys) {
        Session* s = session_of(key.first);
        if (s == nullptr) continue;
        auto sit = s->subscriptions.find(key.second);
        if (sit == s->subscriptions.end()) continue;
        Subscription& sub = *sit->second;
        if (sub.pattern) {
            // A pattern subscription just stops following that stream.
            sub.streams.erase(stream);
            auto it = subscribers_.find(stream);
            if (it != subscribers_.end()) it->second.erase(key);
            continue;
        }
        end_subscription(*s, key.second,
                         core::Error{core::make_error_code(errc::not_found),
                                     fmt::format("stream {} was deleted", stream)});
    }
    auto it = subscribers_.find(stream);
    if (it != subscribers_.end() && it->second.empty()) subscribers_.erase(it);
}

void Server::schedule(Subscription& sub) {
    if (sub.queued) return;
    sub.queued = true;
    pump_queue_.push_back({sub.connection_id, sub.id});
    // Handlers of client frames and commits pump at once when they are done;
    // anything else that schedules (a slave's ack making an immediate event
    // visible, say) is pumped on the next loop turn.
    arm_pump();
}

void Server::arm_pump() {
    if (pump_armed_) return;
    pump_armed_ = true;
    pump_timer_->start(0, 0, [this] {
        pump_armed_ = false;
        pump_scheduled();
    });
}

void Server::pump_scheduled() {
    for (std::size_t n = 0; n < pumps_per_turn && !pump_queue_.empty(); ++n) {
        const SubscriptionKey key = pump_queue_.front();
        pump_queue_.pop_front();
        Session* s = session_of(key.first);
        if (s == nullptr) continue;
        auto it = s->subscriptions.find(key.second);
        if (it == s->subscriptions.end()) continue;
        it->second->queued = false;
        pump(*s, *it->second);
    }
    // More work: continue after the loop has served I/O.
    if (!pump_queue_.empty()) arm_pump();
}

void Server::pump(Session& session, Subscription& sub) {
    net::Connection& connection = *session.connection;
    if (connection.closing() || sub.streams.empty()) return;
    bool more = false;
    // Round robin over the subscription's streams, one read batch each.
    auto start = sub.streams.upper_bound(sub.resume_after);
    std::vector<std::string> order;
    order.reserve(sub.streams.size());
    for (auto it = start; it != sub.streams.end(); ++it) order.push_back(it->first);
    for (auto it = sub.streams.begin(); it != start; ++it) order.push_back(it->first);
    for (const std::string& stream : order) {
        if (sub.credit_events == 0 || (sub.bytes_limited && sub.credit_bytes == 0)) return;
        if (!connection.writable()) return;  // on_writable reschedules
        auto cit = sub.streams.find(stream);
        if (cit == sub.streams.end()) continue;
        StreamCursor& cursor = cit->second;
        const core::Seq last = visibility_.visible(stream);
        if (cursor.next_seq > last) continue;
        const std::size_t events_max = static_cast<std::size_t>(std::min<std::uint64_t>(
            {sub.credit_events, read_events_max, last.value() - cursor.next_seq.value() + 1}));
        const std::size_t bytes_max = sub.bytes_limited
                                          ? static_cast<std::size_t>(std::min<std::uint64_t>(
                                                sub.credit_bytes, read_bytes_max))
                                          : read_bytes_max;
        core::Bytes& out = connection.send_buffer();
        const std::size_t mark = out.size();
        proto::EventsFrameBuilder frame(out, sub.id);
        auto read = store_->read(
            stream, {.from_seq = cursor.next_seq, .events_max = events_max, .bytes_max = bytes_max},
            [&](const core::EnvelopeView&, core::ByteView encoded) {
                frame.add(encoded);
                return storage::Visit::next;
            });
        if (!read || read->events == 0) {
            out.resize(mark);
            if (!read) {
                spdlog::error("subscription {} on {}: {}", sub.id, stream, read.error().message());
                if (read.error().is(errc::not_found)) {
                    stream_deleted(stream);
                } else {
                    end_subscription(session, sub.id, read.error());
                }
                return;
            }
            continue;
        }
        frame.finish();
        connection.commit_send_buffer();
        ops_->metrics().delivered(stream, read->events, read->bytes);
        sub.credit_events -= read->events;
        if (sub.bytes_limited)
            sub.credit_bytes -= std::min<std::uint64_t>(sub.credit_bytes, read->bytes);
        cursor.next_seq = read->next_seq;
        sub.resume_after = stream;
        if (cursor.next_seq <= last) more = true;
    }
    if (more) schedule(sub);
}

}  // namespace spirit::daemon
