// The client protocol codec. Decoding unpacks with msgpack-c under explicit
// limits (array sizes, depth, no ext), with str and bin referenced in place,
// then copies fields out through a positional reader that keeps the first
// problem, naming the message and the field.
#include "core/protocol.h"

#include <cstring>

#include <fmt/format.h>
#include <msgpack.hpp>

#include "core/assert.h"
#include "core/codec.h"
#include "core/limits.h"

namespace spirit::core::protocol {

const char* type_name(Type type) noexcept {
    switch (type) {
        case Type::hello:
            return "Hello";
        case Type::publish:
            return "Publish";
        case Type::subscribe:
            return "Subscribe";
        case Type::credit:
            return "Credit";
        case Type::ack:
            return "Ack";
        case Type::unsubscribe:
            return "Unsubscribe";
        case Type::status:
            return "Status";
        case Type::stream_list:
            return "StreamList";
        case Type::stream_info:
            return "StreamInfo";
        case Type::stream_create:
            return "StreamCreate";
        case Type::stream_delete:
            return "StreamDelete";
        case Type::verify:
            return "Verify";
        case Type::welcome:
            return "Welcome";
        case Type::publish_ack:
            return "PublishAck";
        case Type::events:
            return "Events";
        case Type::subscribed:
            return "Subscribed";
        case Type::subscription_ended:
            return "SubscriptionEnded";
        case Type::error:
            return "Error";
        case Type::status_reply:
            return "StatusReply";
        case Type::stream_list_reply:
            return "StreamListReply";
        case Type::stream_info_reply:
            return "StreamInfoReply";
        case Type::done:
            return "Done";
        case Type::verify_reply:
            return "VerifyReply";
        case Type::peer_hello:
            return "PeerHello";
        case Type::heartbeat:
            return "Heartbeat";
        case Type::positions:
            return "Positions";
        case Type::replicate:
            return "Replicate";
        case Type::replica_ack:
            return "ReplicaAck";
        case Type::replica_refused:
            return "ReplicaRefused";
        case Type::forward:
            return "Forward";
        case Type::forward_ack:
            return "ForwardAck";
        case Type::forward_error:
            return "ForwardError";
    }
    return "unknown";
}

Family family_of(Type type) noexcept {
    const auto n = static_cast<unsigned>(type);
    if (n >= 128) return Family::peer;
    if (n >= 64) return Family::daemon;
    return Family::client;
}

Type type_of(const Message& message) noexcept {
    // In the order of the Message variant's alternatives.
    static constexpr Type types[] = {Type::hello,
                                     Type::publish,
                                     Type::subscribe,
                                     Type::credit,
                                     Type::ack,
                                     Type::unsubscribe,
                                     Type::status,
                                     Type::stream_list,
                                     Type::stream_info,
                                     Type::stream_create,
                                     Type::stream_delete,
                                     Type::verify,
                                     Type::welcome,
                                     Type::publish_ack,
                                     Type::events,
                                     Type::subscribed,
                                     Type::subscription_ended,
                                     Type::error,
                                     Type::status_reply,
                                     Type::stream_list_reply,
                                     Type::stream_info_reply,
                                     Type::done,
                                     Type::verify_reply,
                                     Type::peer_hello,
                                     Type::heartbeat,
                                     Type::positions,
                                     Type::replicate,
                                     Type::replica_ack,
                                     Type::replica_refused,
                                     Type::forward,
                                     Type::forward_ack,
                                     Type::forward_error};
    static_assert(std::size(types) == std::variant_size_v<Message>);
    return types[message.index()];
}

namespace {

using msgpack::type::object_type;

constexpr std::size_t text_bytes_max = 4096;  // names, tokens, messages
constexpr std::size_t list_items_max = 100'000;

// Reads the elements of one msgpack array in order, from `start`. The first
// problem is kept; later reads return defaults; the caller checks once.
class Reader {
 public:
    // `message` names the message ("Publish"); an item reader also names the
    // list field and index. Descriptions are built only for an error.
    Reader(const msgpack::object& array, const char* message, std::uint32_t start)
        : array_(array), message_(message), index_(start) {}
    Reader(const msgpack::object& array, const char* message, const char* list, std::size_t item)
        : array_(array), message_(message), list_(list), item_(item), index_(0) {}

    std::optional<Error>& error() { return error_; }
    bool failed() const { return error_.has_value(); }

    std::uint64_t u64(const char* field) {
        const msgpack::object* o = next(field);
        if (o == nullptr) return 0;
        if (o->type != object_type::POSITIVE_INTEGER) {
            wrong(field, "an unsigned integer", *o);
            return 0;
        }
        return o->via.u64;
    }
    template <class Int>
    Int bounded(const char* field) {
        std::uint64_t v = u64(field);
        if (v > std::numeric_limits<Int>::max()) {
            fail(field, fmt::format("{} is out of range", v));
            return 0;
        }
        return static_cast<Int>(v);
    }
    std::optional<std::uint64_t> opt_u64(const char* field) {
        if (take_nil()) return std::nullopt;
        return u64(field);
    }
    std::string_view text(const char* field, std::size_t max) {
        const msgpack::object* o = next(field);
        if (o == nullptr) return {};
        if (o->type != object_type::STR) {
            wrong(field, "a string", *o);
            return {};
        }
        if (o->via.str.size > max) {
            fail(field, fmt::format("{} bytes, limit {}", o->via.str.size, max),
                 errc::limit_exceeded);
            return {};
        }
        return {o->via.str.ptr, o->via.str.size};
    }
    std::string owned_text(const char* field, std::size_t max = text_bytes_max) {
        return std::string(text(field, max));
    }
    std::optional<std::string> opt_text(const char* field, std::size_t max = text_bytes_max) {
        if (take_nil()) return std::nullopt;
        return owned_text(field, max);
    }
    ByteView bin(const char* field, std::size_t max) {
        const msgpack::object* o = next(field);
        if (o == nullptr) return {};
        if (o->type != object_type::BIN) {
            wrong(field, "bin", *o);
            return {};
        }
        if (o->via.bin.size > max) {
            fail(field, fmt::format("{} bytes, limit {}", o->via.bin.size, max),
                 errc::limit_exceeded);
            return {};
        }
        return {reinterpret_cast<const std::byte*>(o->via.bin.ptr), o->via.bin.size};
    }
    template <class Fixed>
    Fixed fixed(const char* field) {
        Fixed out;
        ByteView b = bin(field, Fixed::size_bytes);
        if (failed()) return out;
        if (b.size() != Fixed::size_bytes) {
            fail(field, fmt::format("{} bytes, expected {}", b.size(), Fixed::size_bytes));
            return out;
        }
        std::memcpy(out.bytes.data(), b.data(), b.size());
        return out;
    }
    template <class Fixed>
    std::optional<Fixed> opt_fixed(const char* field) {
        if (take_nil()) return std::nullopt;
        return fixed<Fixed>(field);
    }
    std::span<const msgpack::object> list(const char* field, std::size_t max) {
        const msgpack::object* o = next(field);
        if (o == nullptr) return {};
        if (o->type != object_type::ARRAY) {
            wrong(field, "an array", *o);
            return {};
        }
        if (o->via.array.size > max) {
            fail(field, fmt::format("{} items, limit {}", o->via.array.size, max),
                 errc::limit_exceeded);
            return {};
        }
        return {o->via.array.ptr, o->via.array.size};
    }
    // Reads each item of a list field as an array of fields itself.
    template <class Read>
    void items(const char* field, std::span<const msgpack::object> list, Read read) {
        for (std::size_t i = 0; i < list.size() && !failed(); ++i) {
            const msgpack::object& item = list[i];
            if (item.type != object_type::ARRAY) {
                error_ = Error{make_error_code(errc::malformed),
                               fmt::format("{} {}[{}]: expected an array", what(), field, i)};
                return;
            }
            Reader r(item, message_, field, i);
            read(r);
            if (r.failed()) error_ = std::move(r.error());
        }
    }
    void fail(const char* field, const std::string& problem, errc code = errc::malformed) {
        if (!error_) {
            error_ = Error{make_error_code(code),
                           fmt::format("{} field {} ({}): {}", what(), index_ - 1, field, problem)};
        }
    }

 private:
    const msgpack::object* next(const char* field) {
        if (error_) return nullptr;
        if (index_ >= array_.via.array.size) {
            error_ = Error{make_error_code(errc::malformed),
                           fmt::format("{}: field {} ({}) is missing", what(), index_, field)};
            return nullptr;
        }
        return &array_.via.array.ptr[index_++];
    }
    bool take_nil() {
        if (error_ || index_ >= array_.via.array.size) return false;
        if (array_.via.array.ptr[index_].type != object_type::NIL) return false;
        ++index_;
        return true;
    }
    void wrong(const char* field, const char* expected, const msgpack::object& got) {
        fail(field, fmt::format("expected {}, got {}", expected, kind_name(got.type)));
    }
    static const char* kind_name(object_type t) {
        switch (t) {
            case object_type::NIL:
                return "nil";
            case object_type::BOOLEAN:
                return "boolean";
            case object_type::POSITIVE_INTEGER:
                return "unsigned integer";
            case object_type::NEGATIVE_INTEGER:
                return "negative integer";
            case object_type::FLOAT32:
            case object_type::FLOAT64:
                return "float";
            case object_type::STR:
                return "string";
            case object_type::BIN:
                return "bin";
            case object_type::ARRAY:
                return "array";
            case object_type::MAP:
                return "map";
            case object_type::EXT:
                return "ext";
        }
        return "unknown";
    }

    std::string what() const {
        if (list_ == nullptr) return message_;
        return fmt::format("{} {}[{}]", message_, list_, item_);
    }

    const msgpack::object& array_;
    const char* message_;
    const char* list_ = nullptr;
    std::size_t item_ = 0;
    std::uint32_t index_;
    std::optional<Error> error_;
};

StreamPolicy read_policy(Reader& r) {
    StreamPolicy p;
    const auto redundancy = r.bounded<std::uint8_t>("redundancy");
    const auto acks_kind = r.bounded<std::uint8_t>("acks_kind");
    p.acks.count = r.bounded<std::uint8_t>("acks_count");
    p.retention.events_max = r.u64("retention_events_max");
    p.retention.bytes_max = r.u64("retention_bytes_max");
    p.retention.age_ms_max = r.u64("retention_age_ms_max");
    if (redundancy > 1) r.fail("redundancy", fmt::format("unknown value {}", redundancy));
    if (acks_kind > 2) r.fail("acks_kind", fmt::format("unknown value {}", acks_kind));
    p.redundancy = static_cast<Redundancy>(redundancy);
    p.acks.kind = static_cast<Acks::Kind>(acks_kind);
    return p;
}

StreamDescription read_description(Reader& r) {
    StreamDescription d;
    d.name = r.owned_text("name", limits::stream_name_bytes_max);
    d.policy = read_policy(r);
    d.first_seq = Seq{r.u64("first_seq")};
    d.last_seq = Seq{r.u64("last_seq")};
    d.event_count = r.u64("event_count");
    d.event_bytes = r.u64("event_bytes");
    d.last_epoch = Epoch{r.u64("last_epoch")};
    d.last_timestamp_ns = TimestampNs{r.u64("last_timestamp_ns")};
    d.last_hash = r.fixed<Digest>("last_hash");
    d.created_ns = TimestampNs{r.u64("created_ns")};
    return d;
}

std::vector<EventDraft> read_events(Reader& r, std::size_t batch_events_max) {
    std::vector<EventDraft> events;
    auto list = r.list("events", batch_events_max);
    events.reserve(list.size());
    r.items("events", list, [&](Reader& e) {
        EventDraft d;
        d.id = e.opt_fixed<EventId>("id");
        d.type = e.text("type", limits::type_bytes_max);
        d.metadata = e.bin("metadata", limits::metadata_bytes_max);
        d.payload = e.bin("payload", limits::payload_bytes_max);
        events.push_back(d);
    });
    return events;
}

PublishAck read_publish_ack(Reader& r, std::size_t batch_events_max) {
    PublishAck m;
    m.request_id = r.u64("request_id");
    const auto kind = r.bounded<std::uint8_t>("kind");
    if (kind > static_cast<std::uint8_t>(AckKind::accepted)) {
        r.fail("kind", fmt::format("unknown value {}", kind));
    }
    m.kind = static_cast<AckKind>(kind);
    m.first_seq = Seq{r.u64("first_seq")};
    m.last_seq = Seq{r.u64("last_seq")};
    m.epoch = Epoch{r.u64("epoch")};
    m.timestamp_ns = TimestampNs{r.u64("timestamp_ns")};
    m.last_hash = r.fixed<Digest>("last_hash");
    auto dups = r.list("duplicates", batch_events_max);
    r.items("duplicates", dups, [&](Reader& d) {
        m.duplicates.push_back(Duplicate{d.bounded<std::uint32_t>("index"), Seq{d.u64("seq")}});
    });
    auto holders = r.list("holders", 256);
    r.items("holders", holders, [&](Reader& h) { m.holders.push_back(h.owned_text("node_id")); });
    return m;
}

Message read_client_message(Type type, Reader& r, std::size_t batch_events_max) {
    switch (type) {
        case Type::hello: {
            Hello m;
            m.version = r.bounded<std::uint32_t>("version");
            m.client_name = r.owned_text("client_name", 256);
            m.token = r.opt_text("token", 1024);
            return m;
        }
        case Type::publish: {
            Publish m;
            m.request_id = r.u64("request_id");
            m.stream = r.text("stream", limits::stream_name_bytes_max);
            if (auto s = r.opt_u64("expected_last_seq")) m.expected_last_seq = Seq{*s};
            m.events = read_events(r, batch_events_max);
            return m;
        }
        case Type::subscribe: {
            Subscribe m;
            m.subscription_id = r.u64("subscription_id");
            m.target = r.owned_text("target", limits::stream_name_bytes_max);
            const auto from = r.bounded<std::uint8_t>("from");
            if (from > static_cast<std::uint8_t>(From::new_)) {
                r.fail("from", fmt::format("unknown value {}", from));
            }
            m.from = static_cast<From>(from);
            m.from_value = r.u64("from_value");
            m.durable = r.opt_text("durable", limits::stream_name_bytes_max);
            m.credit_events = r.u64("credit_events");
            m.credit_bytes = r.u64("credit_bytes");
            return m;
        }
        case Type::credit:
            return Credit{r.u64("subscription_id"), r.u64("events"), r.u64("bytes")};
        case Type::ack: {
            Ack m;
            m.subscription_id = r.u64("subscription_id");
            m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
            m.seq = Seq{r.u64("seq")};
            return m;
        }
        case Type::unsubscribe:
            return Unsubscribe{r.u64("subscription_id")};
        case Type::status:
            return Status{r.u64("request_id")};
        case Type::stream_list: {
            StreamList m;
            m.request_id = r.u64("request_id");
            m.after = r.owned_text("after", limits::stream_name_bytes_max);
            m.limit = r.u64("limit");
            return m;
        }
        case Type::stream_info: {
            StreamInfo m;
            m.request_id = r.u64("request_id");
            m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
            return m;
        }
        case Type::stream_create: {
            StreamCreate m;
            m.request_id = r.u64("request_id");
            m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
            m.policy = read_policy(r);
            return m;
        }
        case Type::stream_delete: {
            StreamDelete m;
            m.request_id = r.u64("request_id");
            m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
            return m;
        }
        case Type::verify: {
            Verify m;
            m.request_id = r.u64("request_id");
            m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
            return m;
        }
        default:
            break;
    }
    SPIRIT_ASSERT_MSG(false, "not a client message type");
    return Status{};
}

Message read_daemon_message(Type type, Reader& r, std::size_t batch_events_max) {
    switch (type) {
        case Type::welcome: {
            Welcome m;
            m.version = r.bounded<std::uint32_t>("version");
            m.node_id = r.owned_text("node_id");
            m.server = r.owned_text("server");
            m.frame_bytes_max = r.u64("frame_bytes_max");
            m.batch_events_max = r.bounded<std::uint32_t>("batch_events_max");
            return m;
        }
        case Type::publish_ack:
            return read_publish_ack(r, batch_events_max);
        case Type::events: {
            Events m;
            m.subscription_id = r.u64("subscription_id");
            // The envelopes are bin items, collected by decode() itself.
            (void)r.list("envelopes", list_items_max);
            return m;
        }
        case Type::subscribed: {
            Subscribed m;
            m.subscription_id = r.u64("subscription_id");
            auto list = r.list("positions", list_items_max);
            r.items("positions", list, [&](Reader& p) {
                StreamPosition pos;
                pos.stream = p.owned_text("stream", limits::stream_name_bytes_max);
                pos.next_seq = Seq{p.u64("next_seq")};
                pos.prev_hash = p.fixed<Digest>("prev_hash");
                m.positions.push_back(std::move(pos));
            });
            return m;
        }
        case Type::subscription_ended: {
            SubscriptionEnded m;
            m.subscription_id = r.u64("subscription_id");
            m.code = r.bounded<std::uint32_t>("code");
            m.message = r.owned_text("message");
            return m;
        }
        case Type::error: {
            ErrorReply m;
            m.request_id = r.opt_u64("request_id");
            m.code = r.bounded<std::uint32_t>("code");
            m.message = r.owned_text("message");
            return m;
        }
        case Type::status_reply: {
            StatusReply m;
            m.request_id = r.u64("request_id");
            m.node_id = r.owned_text("node_id");
            m.server = r.owned_text("server");
            m.uptime_ms = r.u64("uptime_ms");
            m.connections = r.u64("connections");
            m.subscriptions = r.u64("subscriptions");
            m.streams = r.u64("streams");
            m.commits = r.u64("commits");
            m.syncs = r.u64("syncs");
            m.events_written = r.u64("events_written");
            m.bytes_written = r.u64("bytes_written");
            m.failed_commits = r.u64("failed_commits");
            m.queued_bytes = r.u64("queued_bytes");
            m.storage_error = r.owned_text("storage_error");
            m.role = r.owned_text("role", 16);
            m.master = r.owned_text("master", 64);
            auto peers = r.list("peers", 256);
            r.items("peers", peers, [&](Reader& p) {
                PeerStatus ps;
                ps.node_id = p.owned_text("node_id", 64);
                ps.connected = p.u64("connected") != 0;
                ps.lag_events = p.u64("lag_events");
                ps.detail = p.owned_text("detail");
                m.peers.push_back(std::move(ps));
            });
            auto errors = r.list("replication_errors", list_items_max);
            r.items("replication_errors", errors, [&](Reader& e) {
                ReplicationError re;
                re.stream = e.owned_text("stream", limits::stream_name_bytes_max);
                re.message = e.owned_text("message");
                m.replication_errors.push_back(std::move(re));
            });
            m.outbox_events = r.u64("outbox_events");
            return m;
        }
        case Type::stream_list_reply: {
            StreamListReply m;
            m.request_id = r.u64("request_id");
            auto list = r.list("streams", list_items_max);
            r.items("streams", list, [&](Reader& d) { m.streams.push_back(read_description(d)); });
            m.next = r.owned_text("next", limits::stream_name_bytes_max);
            return m;
        }
        case Type::stream_info_reply: {
            StreamInfoReply m;
            m.request_id = r.u64("request_id");
            auto list = r.list("stream", 1);
            if (!r.failed() && list.size() != 1) r.fail("stream", "expected one description");
            r.items("stream", list, [&](Reader& d) { m.stream = read_description(d); });
            return m;
        }
        case Type::done:
            return Done{r.u64("request_id")};
        case Type::verify_reply: {
            VerifyReply m;
            m.request_id = r.u64("request_id");
            m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
            m.events_checked = r.u64("events_checked");
            m.first_seq = Seq{r.u64("first_seq")};
            m.last_seq = Seq{r.u64("last_seq")};
            if (auto s = r.opt_u64("break_seq")) m.break_seq = Seq{*s};
            m.problem = r.owned_text("problem");
            return m;
        }
        default:
            break;
    }
    SPIRIT_ASSERT_MSG(false, "not a daemon message type");
    return Done{};
}

Message read_peer_message(Type type, Reader& r, std::size_t batch_events_max) {
    switch (type) {
        case Type::peer_hello: {
            PeerHello m;
            m.version = r.bounded<std::uint32_t>("version");
            m.cluster = r.owned_text("cluster", 64);
            m.node_id = r.owned_text("node_id", 64);
            return m;
        }
        case Type::heartbeat:
            return Heartbeat{};
        case Type::positions: {
            Positions m;
            auto list = r.list("streams", list_items_max);
            r.items("streams", list, [&](Reader& p) {
                CopyPosition c;
                c.stream = p.owned_text("stream", limits::stream_name_bytes_max);
                c.last_seq = Seq{p.u64("last_seq")};
                c.last_hash = p.fixed<Digest>("last_hash");
                m.streams.push_back(std::move(c));
            });
            return m;
        }
        case Type::replicate: {
            Replicate m;
            m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
            m.policy = read_policy(r);
            m.prev_seq = Seq{r.u64("prev_seq")};
            m.prev_hash = r.fixed<Digest>("prev_hash");
            // The envelopes are bin items, collected by decode() itself.
            (void)r.list("envelopes", list_items_max);
            return m;
        }
        case Type::replica_ack: {
            ReplicaAck m;
            m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
            m.seq = Seq{r.u64("seq")};
            return m;
        }
        case Type::replica_refused: {
            ReplicaRefused m;
            m.stream = r.owned_text("stream", limits::stream_name_bytes_max);
            m.seq = Seq{r.u64("seq")};
            m.code = r.bounded<std::uint32_t>("code");
            m.message = r.owned_text("message");
            return m;
        }
        case Type::forward: {
            Forward m;
            m.request_id = r.u64("request_id");
            m.stream = r.text("stream", limits::stream_name_bytes_max);
            if (auto seq = r.opt_u64("expected_last_seq")) m.expected_last_seq = Seq{*seq};
            m.events = read_events(r, batch_events_max);
            return m;
        }
        case Type::forward_ack:
            return ForwardAck{read_publish_ack(r, batch_events_max)};
        case Type::forward_error: {
            ForwardError m;
            m.request_id = r.u64("request_id");
            m.code = r.bounded<std::uint32_t>("code");
            m.message = r.owned_text("message");
            return m;
        }
        default:
            break;
    }
    SPIRIT_ASSERT_MSG(false, "not a peer message type");
    return Heartbeat{};
}

bool is_peer_type(std::uint64_t t) {
    return t >= 128 && t <= 136;
}

bool is_client_type(std::uint64_t t) {
    return t >= 1 && t <= 12;
}
bool is_daemon_type(std::uint64_t t) {
    return t >= 64 && t <= 74;
}

// str and bin stay in the frame buffer: no copies while unpacking.
bool reference_in_place(msgpack::type::object_type, std::size_t, void*) {
    return true;
}

}  // namespace

Result<Message> decode(ByteView body, std::size_t batch_events_max) {
    // Arrays: the largest list is a batch of events; nothing of ours uses
    // maps or ext; nesting is at most message -> list -> item.
    const std::size_t arrays_max = std::max<std::size_t>(batch_events_max, list_items_max);
    const msgpack::unpack_limit limit(arrays_max, 0, limits::frame_bytes_max,
                                      limits::frame_bytes_max, 0, 4);
    msgpack::object_handle handle;
    std::size_t offset = 0;
    try {
        handle = msgpack::unpack(reinterpret_cast<const char*>(body.data()), body.size(), offset,
                                 reference_in_place, nullptr, limit);
    } catch (const msgpack::insufficient_bytes&) {
        return make_error(errc::malformed,
                          fmt::format("frame body of {} bytes is truncated msgpack", body.size()));
    } catch (const msgpack::size_overflow& e) {
        return make_error(errc::limit_exceeded, fmt::format("frame body: {}", e.what()));
    } catch (const msgpack::unpack_error& e) {
        return make_error(errc::malformed, fmt::format("frame body is not msgpack: {}", e.what()));
    } catch (const msgpack::type_error&) {
        return make_error(errc::malformed, "frame body has a value of the wrong type");
    }
    if (offset != body.size()) {
        return make_error(errc::malformed, fmt::format("frame body has {} bytes after the message",
                                                       body.size() - offset));
    }
    const msgpack::object& root = handle.get();
    if (root.type != object_type::ARRAY || root.via.array.size == 0) {
        return make_error(errc::malformed, "frame body is not a message array");
    }
    const msgpack::object& head = root.via.array.ptr[0];
    if (head.type != object_type::POSITIVE_INTEGER) {
        return make_error(errc::malformed, "message type is not an unsigned integer");
    }
    const std::uint64_t type_number = head.via.u64;
    if (!is_client_type(type_number) && !is_daemon_type(type_number) &&
        !is_peer_type(type_number)) {
        return make_error(errc::unknown_message,
                          fmt::format("unknown message type {}", type_number));
    }
    const auto type = static_cast<Type>(type_number);
    Reader r(root, type_name(type), 1);
    Message m = is_client_type(type_number)   ? read_client_message(type, r, batch_events_max)
                : is_daemon_type(type_number) ? read_daemon_message(type, r, batch_events_max)
                                              : read_peer_message(type, r, batch_events_max);
    if ((type == Type::events || type == Type::replicate) && !r.failed()) {
        // The envelopes are bin items; the reader above consumed the list.
        // Events: [66, id, list]; Replicate: [131, stream, 6 policy fields,
        // prev_seq, prev_hash, list] (the list at 10).
        const std::uint32_t at = type == Type::events ? 2 : 10;
        const msgpack::object& list = root.via.array.ptr[at];
        std::vector<ByteView>& events =
            type == Type::events ? std::get<Events>(m).envelopes : std::get<Replicate>(m).envelopes;
        for (std::uint32_t i = 0; i < list.via.array.size; ++i) {
            const msgpack::object& item = list.via.array.ptr[i];
            if (item.type != object_type::BIN) {
                return make_error(errc::malformed, fmt::format("{} envelopes[{}]: expected bin",
                                                               type_name(type), i));
            }
            events.push_back(
                ByteView(reinterpret_cast<const std::byte*>(item.via.bin.ptr), item.via.bin.size));
        }
    }
    if (r.failed()) return Unexpected{std::move(*r.error())};
    return m;
}

namespace {

struct Sink {
    Bytes& out;
    void write(const char* data, std::size_t size) {
        const auto* p = reinterpret_cast<const std::byte*>(data);
        out.insert(out.end(), p, p + size);
    }
};

using Packer = msgpack::packer<Sink>;

void pack_text(Packer& pk, std::string_view s) {
    pk.pack_str(static_cast<std::uint32_t>(s.size()));
    pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void pack_bin(Packer& pk, ByteView b) {
    pk.pack_bin(static_cast<std::uint32_t>(b.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<std::uint32_t>(b.size()));
}

template <class Opt, class Pack>
void pack_optional(Packer& pk, const Opt& value, Pack pack) {
    if (value) {
        pack(*value);
    } else {
        pk.pack_nil();
    }
}

void pack_policy(Packer& pk, const StreamPolicy& p) {
    pk.pack_uint8(static_cast<std::uint8_t>(p.redundancy));
    pk.pack_uint8(static_cast<std::uint8_t>(p.acks.kind));
    pk.pack_uint8(p.acks.count);
    pk.pack_uint64(p.retention.events_max);
    pk.pack_uint64(p.retention.bytes_max);
    pk.pack_uint64(p.retention.age_ms_max);
}

void pack_description(Packer& pk, const StreamDescription& d) {
    pk.pack_array(15);
    pack_text(pk, d.name);
    pack_policy(pk, d.policy);
    pk.pack_uint64(d.first_seq.value());
    pk.pack_uint64(d.last_seq.value());
    pk.pack_uint64(d.event_count);
    pk.pack_uint64(d.event_bytes);
    pk.pack_uint64(d.last_epoch.value());
    pk.pack_uint64(d.last_timestamp_ns.value());
    pack_bin(pk, ByteView(d.last_hash.bytes));
    pk.pack_uint64(d.created_ns.value());
}

void pack_head(Packer& pk, Type type, std::uint32_t fields) {
    pk.pack_array(fields + 1);
    pk.pack_uint8(static_cast<std::uint8_t>(type));
}

void pack_event(Packer& pk, const EventDraft& e) {
    pk.pack_array(4);
    pack_optional(pk, e.id, [&](const EventId& id) { pack_bin(pk, ByteView(id.bytes)); });
    pack_text(pk, e.type);
    pack_bin(pk, e.metadata);
    pack_bin(pk, e.payload);
}

// The fields of a Publish before its event list.
void pack_publish_head(Packer& pk, std::uint64_t request_id, std::string_view stream,
                       std::optional<Seq> expected_last_seq) {
    pack_head(pk, Type::publish, 4);
    pk.pack_uint64(request_id);
    pack_text(pk, stream);
    pack_optional(pk, expected_last_seq, [&](Seq s) { pk.pack_uint64(s.value()); });
}

struct Encoder {
    Packer& pk;

    void operator()(const Hello& m) {
        pack_head(pk, Type::hello, 3);
        pk.pack_uint32(m.version);
        pack_text(pk, m.client_name);
        pack_optional(pk, m.token, [&](const std::string& t) { pack_text(pk, t); });
    }
    void operator()(const Publish& m) {
        pack_publish_head(pk, m.request_id, m.stream, m.expected_last_seq);
        pack_events(m.events);
    }
    void operator()(const Subscribe& m) {
        pack_head(pk, Type::subscribe, 7);
        pk.pack_uint64(m.subscription_id);
        pack_text(pk, m.target);
        pk.pack_uint8(static_cast<std::uint8_t>(m.from));
        pk.pack_uint64(m.from_value);
        pack_optional(pk, m.durable, [&](const std::string& d) { pack_text(pk, d); });
        pk.pack_uint64(m.credit_events);
        pk.pack_uint64(m.credit_bytes);
    }
    void operator()(const Credit& m) {
        pack_head(pk, Type::credit, 3);
        pk.pack_uint64(m.subscription_id);
        pk.pack_uint64(m.events);
        pk.pack_uint64(m.bytes);
    }
    void operator()(const Ack& m) {
        pack_head(pk, Type::ack, 3);
        pk.pack_uint64(m.subscription_id);
        pack_text(pk, m.stream);
        pk.pack_uint64(m.seq.value());
    }
    void operator()(const Unsubscribe& m) {
        pack_head(pk, Type::unsubscribe, 1);
        pk.pack_uint64(m.subscription_id);
    }
    void operator()(const Status& m) {
        pack_head(pk, Type::status, 1);
        pk.pack_uint64(m.request_id);
    }
    void operator()(const StreamList& m) {
        pack_head(pk, Type::stream_list, 3);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.after);
        pk.pack_uint64(m.limit);
    }
    void operator()(const StreamInfo& m) {
        pack_head(pk, Type::stream_info, 2);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.stream);
    }
    void operator()(const StreamCreate& m) {
        pack_head(pk, Type::stream_create, 8);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.stream);
        pack_policy(pk, m.policy);
    }
    void operator()(const StreamDelete& m) {
        pack_head(pk, Type::stream_delete, 2);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.stream);
    }
    void operator()(const Verify& m) {
        pack_head(pk, Type::verify, 2);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.stream);
    }
    void operator()(const Welcome& m) {
        pack_head(pk, Type::welcome, 5);
        pk.pack_uint32(m.version);
        pack_text(pk, m.node_id);
        pack_text(pk, m.server);
        pk.pack_uint64(m.frame_bytes_max);
        pk.pack_uint32(m.batch_events_max);
    }
    void operator()(const PublishAck& m) {
        pack_head(pk, Type::publish_ack, 9);
        pack_ack_fields(m);
    }
    void operator()(const Events& m) {
        pack_head(pk, Type::events, 2);
        pk.pack_uint64(m.subscription_id);
        pk.pack_array(static_cast<std::uint32_t>(m.envelopes.size()));
        for (ByteView e : m.envelopes) pack_bin(pk, e);
    }
    void operator()(const Subscribed& m) {
        pack_head(pk, Type::subscribed, 2);
        pk.pack_uint64(m.subscription_id);
        pk.pack_array(static_cast<std::uint32_t>(m.positions.size()));
        for (const StreamPosition& p : m.positions) {
            pk.pack_array(3);
            pack_text(pk, p.stream);
            pk.pack_uint64(p.next_seq.value());
            pack_bin(pk, ByteView(p.prev_hash.bytes));
        }
    }
    void operator()(const SubscriptionEnded& m) {
        pack_head(pk, Type::subscription_ended, 3);
        pk.pack_uint64(m.subscription_id);
        pk.pack_uint32(m.code);
        pack_text(pk, m.message);
    }
    void operator()(const ErrorReply& m) {
        pack_head(pk, Type::error, 3);
        pack_optional(pk, m.request_id, [&](std::uint64_t id) { pk.pack_uint64(id); });
        pk.pack_uint32(m.code);
        pack_text(pk, m.message);
    }
    void operator()(const StatusReply& m) {
        pack_head(pk, Type::status_reply, 19);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.node_id);
        pack_text(pk, m.server);
        for (std::uint64_t v :
             {m.uptime_ms, m.connections, m.subscriptions, m.streams, m.commits, m.syncs,
              m.events_written, m.bytes_written, m.failed_commits, m.queued_bytes}) {
            pk.pack_uint64(v);
        }
        pack_text(pk, m.storage_error);
        pack_text(pk, m.role);
        pack_text(pk, m.master);
        pk.pack_array(static_cast<std::uint32_t>(m.peers.size()));
        for (const PeerStatus& p : m.peers) {
            pk.pack_array(4);
            pack_text(pk, p.node_id);
            pk.pack_uint8(p.connected ? 1 : 0);
            pk.pack_uint64(p.lag_events);
            pack_text(pk, p.detail);
        }
        pk.pack_array(static_cast<std::uint32_t>(m.replication_errors.size()));
        for (const ReplicationError& e : m.replication_errors) {
            pk.pack_array(2);
            pack_text(pk, e.stream);
            pack_text(pk, e.message);
        }
        pk.pack_uint64(m.outbox_events);
    }
    void operator()(const StreamListReply& m) {
        pack_head(pk, Type::stream_list_reply, 3);
        pk.pack_uint64(m.request_id);
        pk.pack_array(static_cast<std::uint32_t>(m.streams.size()));
        for (const StreamDescription& d : m.streams) pack_description(pk, d);
        pack_text(pk, m.next);
    }
    void operator()(const StreamInfoReply& m) {
        pack_head(pk, Type::stream_info_reply, 2);
        pk.pack_uint64(m.request_id);
        pk.pack_array(1);
        pack_description(pk, m.stream);
    }
    void operator()(const Done& m) {
        pack_head(pk, Type::done, 1);
        pk.pack_uint64(m.request_id);
    }
    void pack_events(const std::vector<EventDraft>& events) {
        pk.pack_array(static_cast<std::uint32_t>(events.size()));
        for (const EventDraft& e : events) pack_event(pk, e);
    }
    void pack_ack_fields(const PublishAck& m) {
        pk.pack_uint64(m.request_id);
        pk.pack_uint8(static_cast<std::uint8_t>(m.kind));
        pk.pack_uint64(m.first_seq.value());
        pk.pack_uint64(m.last_seq.value());
        pk.pack_uint64(m.epoch.value());
        pk.pack_uint64(m.timestamp_ns.value());
        pack_bin(pk, ByteView(m.last_hash.bytes));
        pk.pack_array(static_cast<std::uint32_t>(m.duplicates.size()));
        for (const Duplicate& d : m.duplicates) {
            pk.pack_array(2);
            pk.pack_uint32(d.index);
            pk.pack_uint64(d.seq.value());
        }
        pk.pack_array(static_cast<std::uint32_t>(m.holders.size()));
        for (const std::string& h : m.holders) {
            pk.pack_array(1);
            pack_text(pk, h);
        }
    }
    void operator()(const PeerHello& m) {
        pack_head(pk, Type::peer_hello, 3);
        pk.pack_uint32(m.version);
        pack_text(pk, m.cluster);
        pack_text(pk, m.node_id);
    }
    void operator()(const Heartbeat&) { pack_head(pk, Type::heartbeat, 0); }
    void operator()(const Positions& m) {
        pack_head(pk, Type::positions, 1);
        pk.pack_array(static_cast<std::uint32_t>(m.streams.size()));
        for (const CopyPosition& c : m.streams) {
            pk.pack_array(3);
            pack_text(pk, c.stream);
            pk.pack_uint64(c.last_seq.value());
            pack_bin(pk, ByteView(c.last_hash.bytes));
        }
    }
    void operator()(const Replicate& m) {
        pack_head(pk, Type::replicate, 10);
        pack_text(pk, m.stream);
        pack_policy(pk, m.policy);
        pk.pack_uint64(m.prev_seq.value());
        pack_bin(pk, ByteView(m.prev_hash.bytes));
        pk.pack_array(static_cast<std::uint32_t>(m.envelopes.size()));
        for (ByteView e : m.envelopes) pack_bin(pk, e);
    }
    void operator()(const ReplicaAck& m) {
        pack_head(pk, Type::replica_ack, 2);
        pack_text(pk, m.stream);
        pk.pack_uint64(m.seq.value());
    }
    void operator()(const ReplicaRefused& m) {
        pack_head(pk, Type::replica_refused, 4);
        pack_text(pk, m.stream);
        pk.pack_uint64(m.seq.value());
        pk.pack_uint32(m.code);
        pack_text(pk, m.message);
    }
    void operator()(const Forward& m) {
        pack_head(pk, Type::forward, 4);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.stream);
        pack_optional(pk, m.expected_last_seq, [&](Seq s) { pk.pack_uint64(s.value()); });
        pack_events(m.events);
    }
    void operator()(const ForwardAck& m) {
        pack_head(pk, Type::forward_ack, 9);
        pack_ack_fields(m.ack);
    }
    void operator()(const ForwardError& m) {
        pack_head(pk, Type::forward_error, 3);
        pk.pack_uint64(m.request_id);
        pk.pack_uint32(m.code);
        pack_text(pk, m.message);
    }
    void operator()(const VerifyReply& m) {
        pack_head(pk, Type::verify_reply, 7);
        pk.pack_uint64(m.request_id);
        pack_text(pk, m.stream);
        pk.pack_uint64(m.events_checked);
        pk.pack_uint64(m.first_seq.value());
        pk.pack_uint64(m.last_seq.value());
        pack_optional(pk, m.break_seq, [&](Seq s) { pk.pack_uint64(s.value()); });
        pack_text(pk, m.problem);
    }
};

}  // namespace

void encode(Bytes& out, const Message& message) {
    const std::size_t start = out.size();
    out.resize(start + frame_header_bytes);
    Sink sink{out};
    Packer pk(sink);
    std::visit(Encoder{pk}, message);
    encode_frame_header(out.data() + start, out.size() - start - frame_header_bytes);
}

EnvelopeFrameBuilder::EnvelopeFrameBuilder(Bytes& out) : out_(out), start_(out.size()) {
    out_.resize(start_ + frame_header_bytes);
}

void EnvelopeFrameBuilder::begin_envelopes() {
    // array32 with the count patched in finish(): the count is not known yet.
    out_.push_back(std::byte{0xdd});
    count_at_ = out_.size();
    out_.resize(out_.size() + 4);
}

void EnvelopeFrameBuilder::add(ByteView envelope) {
    Sink sink{out_};
    Packer pk(sink);
    pack_bin(pk, envelope);
    ++count_;
}

std::size_t EnvelopeFrameBuilder::finish() {
    store_be32(out_.data() + count_at_, static_cast<std::uint32_t>(count_));
    encode_frame_header(out_.data() + start_, out_.size() - start_ - frame_header_bytes);
    return count_;
}

void PublishEvents::add(const EventDraft& event) {
    Sink sink{packed_};
    Packer pk(sink);
    pack_event(pk, event);
    ++count_;
}

void PublishEvents::write_frame(Bytes& out, std::uint64_t request_id, std::string_view stream,
                                std::optional<Seq> expected_last_seq) const {
    const std::size_t start = out.size();
    out.resize(start + frame_header_bytes);
    {
        Sink sink{out};
        Packer pk(sink);
        pack_publish_head(pk, request_id, stream, expected_last_seq);
        pk.pack_array(static_cast<std::uint32_t>(count_));
    }
    out.insert(out.end(), packed_.begin(), packed_.end());
    encode_frame_header(out.data() + start, out.size() - start - frame_header_bytes);
}

EventsFrameBuilder::EventsFrameBuilder(Bytes& out, std::uint64_t subscription_id)
    : EnvelopeFrameBuilder(out) {
    Sink sink{out_};
    Packer pk(sink);
    pack_head(pk, Type::events, 2);
    pk.pack_uint64(subscription_id);
    begin_envelopes();
}

ReplicateFrameBuilder::ReplicateFrameBuilder(Bytes& out, std::string_view stream,
                                             const StreamPolicy& policy, Seq prev_seq,
                                             const Digest& prev_hash)
    : EnvelopeFrameBuilder(out) {
    Sink sink{out_};
    Packer pk(sink);
    pack_head(pk, Type::replicate, 10);
    pack_text(pk, stream);
    pack_policy(pk, policy);
    pk.pack_uint64(prev_seq.value());
    pack_bin(pk, ByteView(prev_hash.bytes));
    begin_envelopes();
}

}  // namespace spirit::core::protocol
