// Message types, and the codec's entry points: decode() unpacks a frame
// body with msgpack-c under explicit limits (array sizes, depth, no maps or
// ext), with str and bin referenced in place, and hands the fields to the
// reader of the type's family; encode() hands a message to its family's
// writer. The frame builders write envelope lists without decoding them.
#include "core/protocol.h"

#include <fmt/format.h>
#include <msgpack.hpp>

#include "core/assert.h"
#include "core/codec.h"
#include "core/limits.h"
#include "core/protocol_codec.h"

namespace spirit::core::protocol {

namespace {

// Which id field 1 of a message is: the id its reply carries.
enum class IdField { none, request, subscription };

// The Message variant's alternatives, in its order.
struct TypeInfo {
    Type type;
    const char* name;
    IdField id;
};
constexpr TypeInfo message_types[] = {
    {Type::hello, "Hello", IdField::none},
    {Type::publish, "Publish", IdField::request},
    {Type::subscribe, "Subscribe", IdField::subscription},
    {Type::credit, "Credit", IdField::subscription},
    {Type::ack, "Ack", IdField::subscription},
    {Type::unsubscribe, "Unsubscribe", IdField::subscription},
    {Type::status, "Status", IdField::request},
    {Type::stream_list, "StreamList", IdField::request},
    {Type::stream_info, "StreamInfo", IdField::request},
    {Type::stream_create, "StreamCreate", IdField::request},
    {Type::stream_delete, "StreamDelete", IdField::request},
    {Type::verify, "Verify", IdField::request},
    {Type::cluster_set_master, "ClusterSetMaster", IdField::request},
    {Type::quarantine_list, "QuarantineList", IdField::request},
    {Type::quarantine_read, "QuarantineRead", IdField::request},
    {Type::quarantine_republish, "QuarantineRepublish", IdField::request},
    {Type::backup, "Backup", IdField::request},
    {Type::topology, "Topology", IdField::request},
    {Type::stream_alter, "StreamAlter", IdField::request},
    {Type::welcome, "Welcome", IdField::none},
    {Type::publish_ack, "PublishAck", IdField::request},
    {Type::events, "Events", IdField::subscription},
    {Type::subscribed, "Subscribed", IdField::subscription},
    {Type::subscription_ended, "SubscriptionEnded", IdField::subscription},
    {Type::error, "Error", IdField::request},
    {Type::status_reply, "StatusReply", IdField::request},
    {Type::stream_list_reply, "StreamListReply", IdField::request},
    {Type::stream_info_reply, "StreamInfoReply", IdField::request},
    {Type::done, "Done", IdField::request},
    {Type::verify_reply, "VerifyReply", IdField::request},
    {Type::quarantine_list_reply, "QuarantineListReply", IdField::request},
    {Type::quarantine_read_reply, "QuarantineReadReply", IdField::request},
    {Type::backup_chunk, "BackupChunk", IdField::request},
    {Type::backup_done, "BackupDone", IdField::request},
    {Type::topology_reply, "TopologyReply", IdField::request},
    {Type::peer_hello, "PeerHello", IdField::none},
    {Type::heartbeat, "Heartbeat", IdField::none},
    {Type::positions, "Positions", IdField::none},
    {Type::replicate, "Replicate", IdField::none},
    {Type::replica_ack, "ReplicaAck", IdField::none},
    {Type::replica_refused, "ReplicaRefused", IdField::none},
    // Peer messages: a link closes on a frame that does not decode.
    {Type::forward, "Forward", IdField::none},
    {Type::forward_ack, "ForwardAck", IdField::none},
    {Type::forward_error, "ForwardError", IdField::none},
    {Type::probe, "Probe", IdField::none},
    {Type::probe_reply, "ProbeReply", IdField::none},
    {Type::truncate, "Truncate", IdField::none},
    {Type::fetch, "Fetch", IdField::none},
    {Type::fetch_reply, "FetchReply", IdField::none},
    {Type::vote_request, "VoteRequest", IdField::none},
    {Type::vote_response, "VoteResponse", IdField::none},
    {Type::timeout_now, "TimeoutNow", IdField::none},
    {Type::topology_events, "TopologyEvents", IdField::none},
    {Type::visible, "Visible", IdField::none},
};

// The variant lists every type of every range, in increasing order: so a
// type added to the enum and its range must be added to Message too, and
// the ranges cannot overlap.
constexpr bool message_types_cover_ranges() {
    std::size_t in_ranges = 0;
    for (const TypeRange& range : type_ranges) {
        if (range.last < range.first) return false;
        in_ranges +=
            static_cast<std::size_t>(range.last) - static_cast<std::size_t>(range.first) + 1;
    }
    for (std::size_t i = 0; i < std::size(message_types); ++i) {
        const Type type = message_types[i].type;
        if (i > 0 && type <= message_types[i - 1].type) return false;
        bool in_a_range = false;
        for (const TypeRange& range : type_ranges) {
            in_a_range |= type >= range.first && type <= range.last;
        }
        if (!in_a_range) return false;
    }
    return in_ranges == std::size(message_types);
}

static_assert(std::size(message_types) == std::variant_size_v<Message>);
static_assert(message_types_cover_ranges(), "type_ranges and Message disagree");

}  // namespace

std::optional<Type> type_from_number(std::uint64_t number) noexcept {
    for (const TypeRange& range : type_ranges) {
        if (number >= static_cast<std::uint64_t>(range.first) &&
            number <= static_cast<std::uint64_t>(range.last)) {
            return static_cast<Type>(number);
        }
    }
    return std::nullopt;
}

Family family_of(Type type) noexcept {
    for (const TypeRange& range : type_ranges) {
        if (type >= range.first && type <= range.last) return range.family;
    }
    SPIRIT_ASSERT_MSG(false, "a type outside every range");
    return Family::peer;
}

Type type_of(const Message& message) noexcept {
    return message_types[message.index()].type;
}

const char* type_name(Type type) noexcept {
    for (const TypeInfo& info : message_types) {
        if (info.type == type) return info.name;
    }
    return "unknown";
}

namespace {

// str and bin stay in the frame buffer: no copies while unpacking.
bool reference_in_place(msgpack::type::object_type, std::size_t, void*) {
    return true;
}

}  // namespace

namespace detail {

// Unpacks a frame body into `handle`; the root is not checked yet.
Result<void> unpack(ByteView body, std::size_t batch_events_max, msgpack::object_handle& handle) {
    // Arrays: the largest list is a batch of events; nothing of ours uses
    // maps or ext; nesting is at most message -> list -> item -> list ->
    // item (a QuarantineListReply's epochs of a stream).
    const std::size_t arrays_max = std::max<std::size_t>(batch_events_max, list_items_max);
    const msgpack::unpack_limit limit(arrays_max, 0, limits::frame_bytes_max,
                                      limits::frame_bytes_max, 0, 5);
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
    return {};
}

}  // namespace detail

namespace {

using msgpack::type::object_type;

const TypeInfo& info_of(Type type) {
    for (const TypeInfo& info : message_types) {
        if (info.type == type) return info;
    }
    SPIRIT_ASSERT_MSG(false, "a type without an entry in message_types");
    return message_types[0];
}

// Field 1 of `root`, as the id a reply to a message of `type` carries, when
// it is an unsigned integer.
void read_reply_id(const msgpack::object& root, Type type, DecodeError& out) {
    const IdField id = info_of(type).id;
    if (id == IdField::none || root.via.array.size < 2) return;
    const msgpack::object& field = root.via.array.ptr[1];
    if (field.type != object_type::POSITIVE_INTEGER) return;
    (id == IdField::request ? out.request_id : out.subscription_id) = field.via.u64;
}

Message read_message(Type type, detail::Reader& r, std::size_t batch_events_max) {
    switch (family_of(type)) {
        case Family::client:
            return detail::read_client_request(type, r, batch_events_max);
        case Family::daemon:
            return detail::read_daemon_reply(type, r, batch_events_max);
        case Family::peer:
            return detail::read_peer_message(type, r, batch_events_max);
    }
    SPIRIT_ASSERT_MSG(false, "unknown family");
    return Heartbeat{};
}

tl::unexpected<DecodeError> failure(errc code, std::string detail) {
    return tl::unexpected(DecodeError{Error{make_error_code(code), std::move(detail)}, {}, {}, {}});
}

}  // namespace

tl::expected<Message, DecodeError> decode_frame(ByteView body, std::size_t batch_events_max) {
    msgpack::object_handle handle;
    if (auto unpacked = detail::unpack(body, batch_events_max, handle); !unpacked) {
        return tl::unexpected(DecodeError{std::move(unpacked).error(), {}, {}, {}});
    }
    const msgpack::object& root = handle.get();
    if (root.type != object_type::ARRAY || root.via.array.size == 0) {
        return failure(errc::malformed, "frame body is not a message array");
    }
    const msgpack::object& head = root.via.array.ptr[0];
    if (head.type != object_type::POSITIVE_INTEGER) {
        return failure(errc::malformed, "message type is not an unsigned integer");
    }
    const std::optional<Type> type = type_from_number(head.via.u64);
    if (!type) {
        return failure(errc::unknown_message, fmt::format("unknown message type {}", head.via.u64));
    }
    detail::Reader r(root, type_name(*type), 1);
    Message m = read_message(*type, r, batch_events_max);
    if (!r.failed()) return m;
    DecodeError e{std::move(*r.error()), type, {}, {}};
    read_reply_id(root, *type, e);
    return tl::unexpected(std::move(e));
}

Result<Message> decode(ByteView body, std::size_t batch_events_max) {
    auto decoded = decode_frame(body, batch_events_max);
    if (!decoded) return Unexpected{std::move(decoded.error().error)};
    return std::move(*decoded);
}

void encode(Bytes& out, const Message& message) {
    const std::size_t start = out.size();
    out.resize(start + frame_header_bytes);
    detail::Sink sink{out};
    detail::Packer pk(sink);
    if (family_of(type_of(message)) == Family::peer) {
        detail::pack_peer_message(pk, message);
    } else {
        detail::pack_client_message(pk, message);
    }
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
    detail::Sink sink{out_};
    detail::Packer pk(sink);
    detail::pack_bin(pk, envelope);
    ++count_;
}

std::size_t EnvelopeFrameBuilder::finish() {
    store_be32(out_.data() + count_at_, static_cast<std::uint32_t>(count_));
    encode_frame_header(out_.data() + start_, out_.size() - start_ - frame_header_bytes);
    return count_;
}

EventsFrameBuilder::EventsFrameBuilder(Bytes& out, std::uint64_t subscription_id)
    : EnvelopeFrameBuilder(out) {
    detail::Sink sink{out_};
    detail::Packer pk(sink);
    detail::pack_head(pk, Type::events, 2);
    pk.pack_uint64(subscription_id);
    begin_envelopes();
}

ReplicateFrameBuilder::ReplicateFrameBuilder(Bytes& out, Epoch epoch, std::string_view stream,
                                             const StreamPolicy& policy, Seq prev_seq,
                                             const Digest& prev_hash, Seq history, Seq visible)
    : EnvelopeFrameBuilder(out) {
    detail::Sink sink{out_};
    detail::Packer pk(sink);
    detail::pack_replicate_head(pk, epoch, stream, policy, prev_seq, prev_hash, history, visible);
    begin_envelopes();
}

FetchReplyFrameBuilder::FetchReplyFrameBuilder(Bytes& out, Epoch epoch, std::string_view stream,
                                               Seq prev_seq, const Digest& prev_hash)
    : EnvelopeFrameBuilder(out) {
    detail::Sink sink{out_};
    detail::Packer pk(sink);
    detail::pack_fetch_reply_head(pk, epoch, stream, 0, "", prev_seq, prev_hash);
    begin_envelopes();
}

void PublishEvents::add(const EventDraft& event) {
    detail::Sink sink{packed_};
    detail::Packer pk(sink);
    detail::pack_event(pk, event);
    ++count_;
}

void PublishEvents::write_frame(Bytes& out, std::uint64_t request_id, std::string_view stream,
                                std::optional<Seq> expected_last_seq) const {
    const std::size_t start = out.size();
    out.resize(start + frame_header_bytes);
    {
        detail::Sink sink{out};
        detail::Packer pk(sink);
        detail::pack_publish_head(pk, Type::publish, request_id, stream, expected_last_seq);
        pk.pack_array(static_cast<std::uint32_t>(count_));
    }
    out.insert(out.end(), packed_.begin(), packed_.end());
    encode_frame_header(out.data() + start, out.size() - start - frame_header_bytes);
}

}  // namespace spirit::core::protocol
