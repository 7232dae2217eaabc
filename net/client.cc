#include "net/client.h"

#include <signal.h>

#include <algorithm>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/codec.h"
#include "core/hash_chain.h"
#include "core/limits.h"

namespace spirit::net {

using core::errc;
namespace proto = core::protocol;
using Clock = std::chrono::steady_clock;

namespace {

core::Error error_of(errc code, std::string detail) {
    return core::Error{core::make_error_code(code), std::move(detail)};
}

core::Error error_from_wire(std::uint32_t code, std::string message) {
    return core::Error{std::error_code(static_cast<int>(code), core::spirit_category()),
                       std::move(message)};
}

}  // namespace

std::map<std::string, core::Seq> Subscription::positions() const {
    std::map<std::string, core::Seq> out;
    for (const auto& [stream, state] : streams_) out.emplace(stream, state.next_seq);
    return out;
}

core::Result<Endpoint> parse_endpoint(std::string_view text) {
    if (text.starts_with("unix:")) {
        if (text.size() == 5) return core::make_error(errc::invalid_argument, "unix: needs a path");
        return Endpoint{UnixEndpoint{std::string(text.substr(5))}};
    }
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
        return core::make_error(errc::invalid_argument,
                                fmt::format("\"{}\" is not host:port or unix:PATH", text));
    }
    std::string host(text.substr(0, colon));
    if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    std::uint32_t port = 0;
    for (char c : text.substr(colon + 1)) {
        if (c < '0' || c > '9' || port > 65535) {
            return core::make_error(errc::invalid_argument,
                                    fmt::format("\"{}\": the port must be 1..65535", text));
        }
        port = port * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (port == 0 || port > 65535) {
        return core::make_error(errc::invalid_argument,
                                fmt::format("\"{}\": the port must be 1..65535", text));
    }
    return Endpoint{TcpEndpoint{host, static_cast<std::uint16_t>(port)}};
}

Client::Client(ClientOptions options) : options_(std::move(options)) {
    reconnect_delay_ms_ = options_.reconnect_delay_ms_min;
}

Client::~Client() {
    reconnect_timer_.reset();
    turn_timer_.reset();
    if (connection_) abandon(std::move(connection_));
}

core::Result<std::unique_ptr<Client>> Client::connect(ClientOptions options) {
    // A write to a connection the daemon closed must be an error, not the
    // end of the process: ignore SIGPIPE unless the program handles it.
    static const bool sigpipe_ignored = [] {
        struct sigaction current {};
        if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
            ::signal(SIGPIPE, SIG_IGN);
        }
        return true;
    }();
    (void)sigpipe_ignored;
    std::unique_ptr<Client> client(new Client(std::move(options)));
    SPIRIT_TRY(client->open_connection());
    return client;
}

core::Result<void> Client::open_connection() {
    connection_error_.reset();
    bool attempted = false;
    Connection::connect(
        loop_, options_.endpoint, *this,
        {.frame_bytes_max = core::limits::frame_bytes_max, .queue_bytes_high = 64u << 20},
        [&](core::Result<std::unique_ptr<Connection>> c) {
            attempted = true;
            if (!c) {
                connection_error_ = c.error();
                return;
            }
            connection_ = std::move(*c);
            say_hello();
        });
    const auto deadline = Clock::now() + std::chrono::milliseconds(options_.connect_timeout_ms);
    while (!ready_ && !connection_error_ && Clock::now() < deadline) {
        (void)turn(deadline);  // a failure shows in connection_error_
    }
    if (ready_) return {};
    if (connection_error_) {
        core::Error e = *connection_error_;
        return core::make_error(
            e.code, fmt::format("connecting to {}: {}", describe(options_.endpoint), e.detail));
    }
    (void)attempted;
    return core::make_error(errc::timeout,
                            fmt::format("connecting to {}: no Welcome within {} ms",
                                        describe(options_.endpoint), options_.connect_timeout_ms));
}

void Client::say_hello() {
    send(proto::Hello{proto::version, options_.client_name, options_.token});
}

void Client::send(const proto::Message& message) {
    if (!connection_ || connection_->closing()) return;
    proto::encode(connection_->send_buffer(), message);
    connection_->commit_send_buffer();
}

core::Result<void> Client::turn(Clock::time_point deadline) {
    send_outgoing();
    const auto now = Clock::now();
    const auto wait = deadline > now
                          ? std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)
                          : std::chrono::milliseconds(0);
    if (!turn_timer_) turn_timer_ = std::make_unique<Timer>(loop_);
    // libuv runs due timers before it polls: a one-shot timer already due
    // would fire first and leave the poll unbounded. A repeating timer from
    // a fresh clock always bounds it.
    loop_.update_time();
    const auto bound = static_cast<std::uint64_t>(wait.count()) + 1;
    turn_timer_->start(bound, bound, [] {});
    loop_.run_once(true);
    turn_timer_->stop();
    if (!connection_ && !reconnecting_) {
        return core::Unexpected{connection_error_
                                    ? *connection_error_
                                    : error_of(errc::connection_lost, "the connection is closed")};
    }
    return {};
}

core::Result<void> Client::poll() {
    send_outgoing();
    loop_.run_once(false);
    if (!connection_ && !reconnecting_) {
        return core::Unexpected{connection_error_
                                    ? *connection_error_
                                    : error_of(errc::connection_lost, "the connection is closed")};
    }
    return {};
}

core::Result<void> Client::run_for(std::chrono::milliseconds duration) {
    const auto deadline = Clock::now() + duration;
    while (Clock::now() < deadline) SPIRIT_TRY(turn(deadline));
    return {};
}

core::Result<void> Client::run_until(const std::function<bool()>& done,
                                     std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!done()) {
        if (Clock::now() >= deadline) {
            return core::make_error(errc::timeout,
                                    fmt::format("not done within {} ms", timeout.count()));
        }
        SPIRIT_TRY(turn(deadline));
    }
    return {};
}

// --- publishing ---

void Client::publish_async(std::string_view stream, std::span<const core::EventDraft> events,
                           const PublishOptions& options, PublishCallback done) {
    SPIRIT_ASSERT(!events.empty());
    std::size_t bytes = 0;
    for (const core::EventDraft& e : events) {
        bytes += e.type.size() + e.metadata.size() + e.payload.size() + 32;
    }
    Outgoing* batch = nullptr;
    if (!options.expected_last_seq && !outgoing_.empty()) {
        Outgoing& last = outgoing_.back();
        if (last.stream == stream && !last.expected &&
            last.events.count() + events.size() <= options_.publish_batch_events_max &&
            last.bytes + bytes <= options_.publish_batch_bytes_max) {
            batch = &last;
        }
    }
    if (batch == nullptr) {
        batch = &outgoing_.emplace_back();
        batch->stream = std::string(stream);
        batch->expected = options.expected_last_seq;
    }
    for (const core::EventDraft& e : events) batch->events.add(e);
    batch->bytes += bytes;
    batch->parts.push_back(Part{events.size(), std::move(done)});
    ++publish_callbacks_;
}

void Client::send_outgoing() {
    if (!ready_ || outgoing_.empty()) return;
    for (Outgoing& batch : outgoing_) {
        const std::uint64_t id = next_request_id_++;
        if (connection_ && !connection_->closing()) {
            batch.events.write_frame(connection_->send_buffer(), id, batch.stream, batch.expected);
            connection_->commit_send_buffer();
        }
        in_flight_.emplace(id, InFlight{std::move(batch.parts), batch.events.count()});
    }
    outgoing_.clear();
}

void Client::complete_publish(std::uint64_t request_id, core::Result<proto::PublishAck> ack) {
    auto it = in_flight_.find(request_id);
    if (it == in_flight_.end()) return;
    InFlight flight = std::move(it->second);
    in_flight_.erase(it);
    // Split the frame's receipt per caller: new events took consecutive
    // seqs in order, skipping duplicates.
    std::size_t offset = 0;
    std::size_t next_duplicate = 0;
    std::uint64_t next_seq = ack ? ack->first_seq.value() : 0;
    for (Part& part : flight.parts) {
        --publish_callbacks_;
        if (!ack) {
            part.done(core::Unexpected{ack.error()});
            offset += part.events;
            continue;
        }
        PublishReceipt r;
        r.kind = ack->kind;
        r.epoch = ack->epoch;
        r.timestamp_ns = ack->timestamp_ns;
        r.holders = ack->holders;
        std::uint64_t stored = 0;
        const std::uint64_t first = next_seq;
        for (std::size_t i = offset; i < offset + part.events; ++i) {
            if (next_duplicate < ack->duplicates.size() &&
                ack->duplicates[next_duplicate].index == i) {
                r.duplicates.push_back(proto::Duplicate{static_cast<std::uint32_t>(i - offset),
                                                        ack->duplicates[next_duplicate].seq});
                ++next_duplicate;
            } else {
                ++stored;
            }
        }
        // An accepted ack has no seqs (the master has not ordered the
        // events yet): first_seq 0, and so none for any caller.
        if (stored > 0 && first != 0) {
            r.first_seq = core::Seq{first};
            r.last_seq = core::Seq{first + stored - 1};
            next_seq += stored;
        }
        offset += part.events;
        part.done(std::move(r));
    }
}

core::Result<PublishReceipt> Client::publish(std::string_view stream,
                                             std::span<const core::EventDraft> events,
                                             const PublishOptions& options) {
    std::optional<core::Result<PublishReceipt>> out;
    publish_async(stream, events, options,
                  [&](core::Result<PublishReceipt> r) { out = std::move(r); });
    SPIRIT_TRY(run_until([&] { return out.has_value(); },
                         std::chrono::milliseconds(options_.request_timeout_ms)));
    return std::move(*out);
}

core::Result<void> Client::flush(std::chrono::milliseconds timeout) {
    return run_until([&] { return publish_callbacks_ == 0; }, timeout);
}

// --- requests ---

core::Result<proto::Message> Client::request(proto::Message message, std::uint64_t request_id) {
    if (!ready_) return core::make_error(errc::connection_lost, "not connected");
    replies_[request_id] = std::nullopt;
    send(message);
    auto waited = run_until([&] { return replies_[request_id].has_value(); },
                            std::chrono::milliseconds(options_.request_timeout_ms));
    auto reply = std::move(replies_[request_id]);
    replies_.erase(request_id);
    SPIRIT_TRY(waited);
    return std::move(*reply);
}

namespace {

template <class T>
core::Result<T> expect(core::Result<proto::Message> reply) {
    if (!reply) return core::Unexpected{reply.error()};
    if (auto* t = std::get_if<T>(&*reply)) return std::move(*t);
    return core::make_error(errc::malformed, fmt::format("unexpected reply {}",
                                                         proto::type_name(proto::type_of(*reply))));
}

}  // namespace

core::Result<proto::StatusReply> Client::status() {
    const std::uint64_t id = next_request_id_++;
    return expect<proto::StatusReply>(request(proto::Status{id}, id));
}

core::Result<proto::TopologyReply> Client::topology() {
    const std::uint64_t id = next_request_id_++;
    return expect<proto::TopologyReply>(request(proto::Topology{id}, id));
}

core::Result<std::vector<proto::StreamDescription>> Client::streams() {
    const std::uint64_t id = next_request_id_++;
    auto reply = expect<proto::StreamListReply>(request(proto::StreamList{id, {}, 0}, id));
    if (!reply) return core::Unexpected{reply.error()};
    std::vector<proto::StreamDescription> all = std::move(reply->streams);
    // Further pages, each after the last name of the one before.
    while (!reply->next.empty()) {
        const std::uint64_t next_id = next_request_id_++;
        reply = expect<proto::StreamListReply>(
            request(proto::StreamList{next_id, reply->next, 0}, next_id));
        if (!reply) return core::Unexpected{reply.error()};
        std::move(reply->streams.begin(), reply->streams.end(), std::back_inserter(all));
    }
    return all;
}

core::Result<proto::StreamDescription> Client::stream_info(std::string_view stream) {
    const std::uint64_t id = next_request_id_++;
    auto reply =
        expect<proto::StreamInfoReply>(request(proto::StreamInfo{id, std::string(stream)}, id));
    if (!reply) return core::Unexpected{reply.error()};
    return std::move(reply->stream);
}

core::Result<void> Client::create_stream(std::string_view stream,
                                         const core::StreamPolicy& policy) {
    const std::uint64_t id = next_request_id_++;
    auto reply =
        expect<proto::Done>(request(proto::StreamCreate{id, std::string(stream), policy}, id));
    if (!reply) return core::Unexpected{reply.error()};
    return {};
}

core::Result<void> Client::alter_stream(std::string_view stream,
                                        const core::StreamPolicy& policy) {
    const std::uint64_t id = next_request_id_++;
    auto reply =
        expect<proto::Done>(request(proto::StreamAlter{id, std::string(stream), policy}, id));
    if (!reply) return core::Unexpected{reply.error()};
    return {};
}

core::Result<void> Client::delete_stream(std::string_view stream) {
    const std::uint64_t id = next_request_id_++;
    auto reply = expect<proto::Done>(request(proto::StreamDelete{id, std::string(stream)}, id));
    if (!reply) return core::Unexpected{reply.error()};
    return {};
}

core::Result<proto::VerifyReply> Client::verify(std::string_view stream) {
    const std::uint64_t id = next_request_id_++;
    return expect<proto::VerifyReply>(request(proto::Verify{id, std::string(stream)}, id));
}

core::Result<void> Client::set_master(std::string_view node, bool force) {
    const std::uint64_t id = next_request_id_++;
    auto reply =
        expect<proto::Done>(request(proto::ClusterSetMaster{id, std::string(node), force}, id));
    if (!reply) return core::Unexpected{reply.error()};
    return {};
}

core::Result<proto::QuarantineListReply> Client::quarantine_list(std::string_view stream) {
    const std::uint64_t id = next_request_id_++;
    return expect<proto::QuarantineListReply>(
        request(proto::QuarantineList{id, std::string(stream)}, id));
}

core::Result<QuarantineEntries> Client::quarantine_read(std::string_view stream,
                                                        core::Seq after_seq, std::size_t limit) {
    return read_quarantine(proto::QuarantineRead{0, std::string(stream), after_seq, core::Epoch{0},
                                                 std::nullopt, limit});
}

core::Result<QuarantineEntries> Client::quarantine_read(std::string_view stream,
                                                        const proto::QuarantinePosition& after,
                                                        std::size_t limit) {
    return read_quarantine(
        proto::QuarantineRead{0, std::string(stream), after.seq, after.epoch, after.hash, limit});
}

core::Result<QuarantineEntries> Client::read_quarantine(proto::QuarantineRead read) {
    const std::uint64_t id = next_request_id_++;
    read.request_id = id;
    const std::string stream = read.stream;
    // The reply's envelopes are views into envelope_copies_ (handle()).
    auto message = request(std::move(read), id);
    const std::vector<core::Bytes> copies = std::move(envelope_copies_[id]);
    envelope_copies_.erase(id);
    if (!message) return core::Unexpected{message.error()};
    auto* reply = std::get_if<proto::QuarantineReadReply>(&*message);
    if (reply == nullptr) {
        return core::make_error(
            errc::malformed,
            fmt::format("unexpected reply {}", proto::type_name(proto::type_of(*message))));
    }
    QuarantineEntries out;
    out.next = reply->next;
    for (core::ByteView encoded : reply->envelopes) {
        auto view = core::decode_envelope(encoded);
        if (!view) {
            return core::make_error(errc::malformed,
                                    "a quarantined envelope: " + view.error().detail);
        }
        if (view->stream != stream) {
            return core::make_error(errc::malformed,
                                    fmt::format("a quarantined envelope of stream {} in a page "
                                                "of stream {}",
                                                view->stream, stream));
        }
        out.entries.push_back(core::Envelope::from_view(*view));
    }
    return out;
}

core::Result<std::vector<core::Epoch>> Client::quarantined_epochs(std::string_view stream,
                                                                  core::Seq seq) {
    std::vector<core::Epoch> epochs;
    if (seq.value() == 0) return epochs;
    auto page = quarantine_read(stream, core::Seq{seq.value() - 1}, 16);
    while (page) {
        bool past = page->entries.empty();
        for (const core::Envelope& e : page->entries) {
            if (e.seq != seq) {
                past = true;
                break;
            }
            if (epochs.empty() || epochs.back() != e.epoch) epochs.push_back(e.epoch);
        }
        if (past || !page->next) return epochs;
        page = quarantine_read(stream, *page->next, 16);
    }
    return core::Unexpected{page.error()};
}

core::Result<PublishReceipt> Client::quarantine_republish(std::string_view stream,
                                                          std::vector<QuarantineRef> entries) {
    proto::QuarantineRepublish republish{0, std::string(stream), {}};
    for (const auto& [seq, epoch] : entries) {
        if (epoch) {
            republish.entries.push_back(proto::QuarantineEntry{seq, *epoch});
            continue;
        }
        auto epochs = quarantined_epochs(stream, seq);
        if (!epochs) return core::Unexpected{epochs.error()};
        if (epochs->empty()) {
            return core::make_error(
                errc::not_found,
                fmt::format("stream {}: no quarantined event at seq {}", stream, seq.value()));
        }
        if (epochs->size() > 1) {
            std::string listed;
            for (core::Epoch e : *epochs) {
                listed += (listed.empty() ? "" : ", ") + std::to_string(e.value());
            }
            return core::make_error(
                errc::invalid_argument,
                fmt::format("stream {}: seq {} is quarantined in epochs {}; name one (seq:epoch)",
                            stream, seq.value(), listed));
        }
        republish.entries.push_back(proto::QuarantineEntry{seq, epochs->front()});
    }
    const std::uint64_t id = next_request_id_++;
    republish.request_id = id;
    auto ack = expect<proto::PublishAck>(request(std::move(republish), id));
    if (!ack) return core::Unexpected{ack.error()};
    PublishReceipt r;
    r.kind = ack->kind;
    r.first_seq = ack->first_seq;
    r.last_seq = ack->last_seq;
    r.epoch = ack->epoch;
    r.timestamp_ns = ack->timestamp_ns;
    r.duplicates = std::move(ack->duplicates);
    r.holders = std::move(ack->holders);
    return r;
}

// --- subscriptions ---

core::Result<Subscription*> Client::subscribe(SubscribeOptions options, EventHandler handler) {
    auto owned = std::make_unique<Subscription>();
    Subscription& sub = *owned;
    sub.id_ = next_subscription_id_++;
    sub.options_ = std::move(options);
    sub.handler_ = std::move(handler);
    sub.started_ns_ = core::TimestampNs{
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count())};
    subscriptions_.emplace(sub.id_, std::move(owned));
    send(proto::Subscribe{sub.id_, sub.options_.target, sub.options_.from, sub.options_.from_value,
                          sub.options_.durable, sub.options_.credit_events,
                          sub.options_.credit_bytes});
    SPIRIT_TRY(run_until([&] { return sub.confirmed_ || sub.ended_.has_value(); },
                         std::chrono::milliseconds(options_.request_timeout_ms)));
    if (sub.ended_) return core::Unexpected{*sub.ended_};
    return &sub;
}

core::Result<void> Client::unsubscribe(Subscription& sub) {
    if (sub.ended_) return {};
    send(proto::Unsubscribe{sub.id_});
    return run_until([&] { return sub.ended_.has_value(); },
                     std::chrono::milliseconds(options_.request_timeout_ms));
}

void Client::resubscribe(Subscription& sub) {
    proto::Subscribe s{sub.id_,
                       sub.options_.target,
                       sub.options_.from,
                       sub.options_.from_value,
                       sub.options_.durable,
                       sub.options_.credit_events,
                       sub.options_.credit_bytes};
    const bool pattern = sub.options_.target.find_first_of("*>") != std::string::npos;
    if (!sub.options_.durable && !sub.streams_.empty()) {
        if (!pattern) {
            s.from = proto::From::seq;
            s.from_value = sub.streams_.begin()->second.next_seq.value();
        } else {
            // Back to the oldest timestamp seen; repeats are dropped by seq.
            std::uint64_t oldest = UINT64_MAX;
            for (const auto& [stream, state] : sub.streams_) {
                oldest = std::min(oldest, state.last_ts.value());
            }
            s.from = proto::From::time;
            s.from_value = oldest;
        }
    }
    sub.consumed_since_credit_ = 0;
    send(s);
}

void Client::end(Subscription& sub, core::Error why) {
    if (!sub.ended_) sub.ended_ = std::move(why);
}

void Client::deliver(Subscription& sub, const proto::Events& events) {
    std::uint64_t bytes = 0;
    for (core::ByteView encoded : events.envelopes) {
        bytes += encoded.size();
        ++sub.consumed_since_credit_;
        if (sub.ended_) continue;
        auto view = core::decode_envelope(encoded);
        if (!view) {
            end(sub, error_of(errc::malformed, "a delivered event: " + view.error().detail));
            continue;
        }
        auto it = sub.streams_.find(view->stream);
        if (it == sub.streams_.end()) {
            it = sub.streams_.emplace(std::string(view->stream), Subscription::StreamState{}).first;
            it->second.next_seq = view->seq;
            it->second.prev_hash = core::genesis_hash;
        }
        Subscription::StreamState& state = it->second;
        if (view->seq < state.next_seq) continue;  // delivered before a reconnect
        if (sub.options_.verify && view->seq == state.next_seq) {
            if (auto verified = core::verify_envelope(encoded, state.prev_hash); !verified) {
                end(sub, verified.error());
                send(proto::Unsubscribe{sub.id_});
                continue;
            }
        }
        // A jump forward is retention having trimmed what we had not read:
        // the chain restarts from the first event after the gap.
        state.next_seq = view->seq.next();
        state.prev_hash = view->hash;
        state.last_ts = view->timestamp_ns;
        state.ack_pending = view->seq;
        ++sub.delivered_;
        sub.handler_(*view);
    }
    // Keep the window open: return credit once a quarter of it is used.
    const std::uint64_t threshold = std::max<std::uint64_t>(1, sub.options_.credit_events / 4);
    if (!sub.ended_ && sub.consumed_since_credit_ >= threshold) {
        send(proto::Credit{sub.id_, sub.consumed_since_credit_,
                           sub.options_.credit_bytes > 0 ? bytes : 0});
        sub.consumed_since_credit_ = 0;
    }
    if (sub.options_.durable && !sub.ended_) {
        for (auto& [stream, state] : sub.streams_) {
            if (state.ack_pending.value() == 0) continue;
            send(proto::Ack{sub.id_, stream, state.ack_pending});
            state.ack_pending = core::Seq{0};
        }
    }
}

// --- incoming frames ---

void Client::on_frame(Connection&, core::ByteView body) {
    auto message = proto::decode(body, core::limits::batch_events_max);
    if (!message) {
        if (connection_) connection_->close(message.error(), Connection::Flush::no);
        return;
    }
    handle(std::move(*message));
}

void Client::handle(proto::Message&& message) {
    if (auto* welcome = std::get_if<proto::Welcome>(&message)) {
        welcome_ = std::move(*welcome);
        const bool reconnected = reconnecting_;
        ready_ = true;
        reconnecting_ = false;
        reconnect_delay_ms_ = options_.reconnect_delay_ms_min;
        if (reconnected) {
            ++reconnects_;
            for (auto& [id, sub] : subscriptions_) {
                if (!sub->ended_) resubscribe(*sub);
            }
        }
        send_outgoing();
    } else if (auto* ack = std::get_if<proto::PublishAck>(&message)) {
        // A request's (QuarantineRepublish), or a publish's.
        if (auto reply = replies_.find(ack->request_id); reply != replies_.end()) {
            reply->second = core::Result<proto::Message>(std::move(message));
        } else {
            complete_publish(ack->request_id, std::move(*ack));
        }
    } else if (auto* events = std::get_if<proto::Events>(&message)) {
        auto it = subscriptions_.find(events->subscription_id);
        if (it != subscriptions_.end()) deliver(*it->second, *events);
    } else if (auto* subscribed = std::get_if<proto::Subscribed>(&message)) {
        auto it = subscriptions_.find(subscribed->subscription_id);
        if (it == subscriptions_.end()) return;
        Subscription& sub = *it->second;
        sub.confirmed_ = true;
        for (const proto::StreamPosition& p : subscribed->positions) {
            auto [state, fresh] = sub.streams_.try_emplace(p.stream);
            if (fresh || state->second.next_seq < p.next_seq) {
                state->second.next_seq = p.next_seq;
                state->second.prev_hash = p.prev_hash;
            }
        }
    } else if (auto* ended = std::get_if<proto::SubscriptionEnded>(&message)) {
        auto it = subscriptions_.find(ended->subscription_id);
        if (it == subscriptions_.end()) return;
        if (ended->code == 0) {
            end(*it->second, core::Error{std::error_code(), ended->message});
        } else {
            end(*it->second, error_from_wire(ended->code, ended->message));
        }
    } else if (auto* error = std::get_if<proto::ErrorReply>(&message)) {
        core::Error e = error_from_wire(error->code, error->message);
        if (!error->request_id) {
            connection_error_ = e;  // the daemon closes the connection after this
            return;
        }
        if (in_flight_.contains(*error->request_id)) {
            complete_publish(*error->request_id, core::Unexpected{e});
        } else if (replies_.contains(*error->request_id)) {
            replies_[*error->request_id] = core::Result<proto::Message>(core::Unexpected{e});
        }
    } else if (auto* chunk = std::get_if<proto::BackupChunk>(&message)) {
        on_backup_chunk(*chunk);  // its data is a view into this frame: handed over at once
    } else if (auto* page = std::get_if<proto::QuarantineReadReply>(&message)) {
        // Its envelopes are views into this frame, which the next read
        // overwrites: the request gets views into copies.
        if (!replies_.contains(page->request_id)) return;
        std::vector<core::Bytes>& copies = envelope_copies_[page->request_id];
        for (core::ByteView& envelope : page->envelopes) {
            copies.emplace_back(envelope.begin(), envelope.end());
            envelope = copies.back();
        }
        replies_[page->request_id] = core::Result<proto::Message>(std::move(message));
    } else {
        std::uint64_t id = 0;
        std::visit(
            [&](const auto& m) {
                if constexpr (requires { m.request_id; }) {
                    if constexpr (std::is_same_v<std::decay_t<decltype(m.request_id)>,
                                                 std::uint64_t>) {
                        id = m.request_id;
                    }
                }
            },
            message);
        if (replies_.contains(id)) replies_[id] = core::Result<proto::Message>(std::move(message));
    }
}

void Client::on_closed(Connection& connection, const std::optional<core::Error>& why) {
    // `why` lives in the connection: copy it before the connection goes.
    const core::Error reason =
        why                 ? *why
        : connection_error_ ? *connection_error_
                            : error_of(errc::connection_lost, "the daemon closed the connection");
    if (connection_.get() == &connection) connection_.reset();  // the close callback allows it
    lost(reason);
}

void Client::lost(const core::Error& why) {
    const bool was_ready = ready_;
    ready_ = false;
    if (!connection_error_) connection_error_ = why;
    const core::Error lost_error =
        error_of(errc::connection_lost,
                 fmt::format("the connection closed before the reply ({}); the request may or "
                             "may not have been applied",
                             why.message()));
    std::vector<std::uint64_t> ids;
    for (const auto& [id, flight] : in_flight_) ids.push_back(id);
    for (std::uint64_t id : ids) complete_publish(id, core::Unexpected{lost_error});
    for (auto& [id, reply] : replies_) {
        if (!reply) reply = core::Result<proto::Message>(core::Unexpected{lost_error});
    }
    if (options_.reconnect && (was_ready || reconnecting_)) schedule_reconnect();
}

void Client::schedule_reconnect() {
    reconnecting_ = true;
    if (!reconnect_timer_) reconnect_timer_ = std::make_unique<Timer>(loop_);
    reconnect_timer_->start(reconnect_delay_ms_, 0, [this] {
        connection_error_.reset();
        Connection::connect(
            loop_, options_.endpoint, *this,
            {.frame_bytes_max = core::limits::frame_bytes_max, .queue_bytes_high = 64u << 20},
            [this](core::Result<std::unique_ptr<Connection>> c) {
                if (!c) {
                    schedule_reconnect();
                    return;
                }
                connection_ = std::move(*c);
                say_hello();
            });
    });
    reconnect_delay_ms_ = std::min(reconnect_delay_ms_ * 2, options_.reconnect_delay_ms_max);
}

}  // namespace spirit::net
