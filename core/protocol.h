// core/protocol.h: the wire protocol of spiritd's sockets: message types,
// the Message variant, the msgpack codec and the frame builders. The
// messages themselves are in core/protocol_client.h (client <-> daemon) and
// core/protocol_peer.h (node <-> node); docs/protocol.md is the
// specification of the client protocol.
//
// A frame is a 4-byte big-endian body length, then a msgpack array whose
// element 0 is the message type and whose following elements are the fields
// in the order their structs list them. Type numbers and field positions
// are on the wire: never renumber, never reorder; add fields only at the
// end (a decoder ignores fields past the ones it knows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

#include "core/bytes.h"
#include "core/ids.h"
#include "core/protocol_client.h"
#include "core/protocol_peer.h"
#include "core/result.h"
#include "core/stream_policy.h"

namespace spirit::core::protocol {

// Message types. On the wire: never renumber. Each family is one run of
// consecutive numbers (type_ranges below).
enum class Type : std::uint8_t {
    // client -> daemon
    hello = 1,
    publish = 2,
    subscribe = 3,
    credit = 4,
    ack = 5,
    unsubscribe = 6,
    status = 7,
    stream_list = 8,
    stream_info = 9,
    stream_create = 10,
    stream_delete = 11,
    verify = 12,
    cluster_set_master = 13,
    quarantine_list = 14,
    quarantine_read = 15,
    quarantine_republish = 16,
    backup = 17,
    topology = 18,
    stream_alter = 19,
    // daemon -> client
    welcome = 64,
    publish_ack = 65,
    events = 66,
    subscribed = 67,
    subscription_ended = 68,
    error = 69,
    status_reply = 70,
    stream_list_reply = 71,
    stream_info_reply = 72,
    done = 73,
    verify_reply = 74,
    quarantine_list_reply = 75,
    quarantine_read_reply = 76,
    backup_chunk = 77,
    backup_done = 78,
    topology_reply = 79,
    // node <-> node (peer links)
    peer_hello = 128,
    heartbeat = 129,
    positions = 130,
    replicate = 131,
    replica_ack = 132,
    replica_refused = 133,
    forward = 134,
    forward_ack = 135,
    forward_error = 136,
    probe = 137,
    probe_reply = 138,
    truncate = 139,
    fetch = 140,
    fetch_reply = 141,
    vote_request = 142,
    vote_response = 143,
    timeout_now = 144,
    topology_events = 145,
    visible = 146,
};

// Which side of which link may send a type.
enum class Family { client, daemon, peer };

// The types of one family: first to last, every number between in use.
struct TypeRange {
    Family family;
    Type first;
    Type last;
};
inline constexpr TypeRange type_ranges[] = {
    {Family::client, Type::hello, Type::stream_alter},
    {Family::daemon, Type::welcome, Type::topology_reply},
    {Family::peer, Type::peer_hello, Type::visible},
};

// The type numbered `number`; nullopt if no type has that number.
std::optional<Type> type_from_number(std::uint64_t number) noexcept;
Family family_of(Type type) noexcept;
const char* type_name(Type type) noexcept;

using Message =
    std::variant<Hello, Publish, Subscribe, Credit, Ack, Unsubscribe, Status, StreamList,
                 StreamInfo, StreamCreate, StreamDelete, Verify, ClusterSetMaster, QuarantineList,
                 QuarantineRead, QuarantineRepublish, Backup, Topology, StreamAlter, Welcome,
                 PublishAck, Events, Subscribed, SubscriptionEnded, ErrorReply, StatusReply,
                 StreamListReply, StreamInfoReply, Done, VerifyReply, QuarantineListReply,
                 QuarantineReadReply, BackupChunk, BackupDone, TopologyReply, PeerHello, Heartbeat,
                 Positions, Replicate, ReplicaAck, ReplicaRefused, Forward, ForwardAck,
                 ForwardError, Probe, ProbeReply, Truncate, Fetch, FetchReply, VoteRequest,
                 VoteResponse, TimeoutNow, TopologyEvents, Visible>;

// The wire type of a message.
Type type_of(const Message& message) noexcept;

// Why a frame body did not decode, and how far the decoder got before it
// stopped: enough for a daemon to answer the request and keep the
// connection, or not.
struct DecodeError {
    // errc::malformed (bytes that are not msgpack, not a message array, a
    // field of the wrong msgpack type or missing), invalid_argument (a
    // field's value out of its range, or over its size or count limit),
    // limit_exceeded (msgpack past the unpack limits: a map, an ext, a list
    // of more than 100,000 items, nesting deeper than 5), unknown_message (a
    // type number no type has). The detail names the message and the field
    // by position and name: "Publish field 4 (events) [0] field 1 (type): 256
    // bytes, limit 255".
    Error error;
    // The message's type, once element 0 is a known type number.
    std::optional<Type> type;
    // Field 1 when the type has a request id there (every client request
    // but Hello and the subscription's messages; PublishAck, Error and the
    // replies) and it reads as an unsigned integer.
    std::optional<std::uint64_t> request_id;
    // Field 1 when the type has a subscription id there (Subscribe, Credit,
    // Ack, Unsubscribe; Events, Subscribed, SubscriptionEnded) and it reads
    // as an unsigned integer.
    std::optional<std::uint64_t> subscription_id;
};

// Decodes one frame body (without its 4-byte header). Never throws; every
// count and size is checked against the limits before anything is built,
// and the first problem stops decoding. Lists of events hold at most
// `batch_events_max` items. Views in the result point into `body`.
// Decodes every type; which family a socket accepts is the caller's check.
[[nodiscard]] tl::expected<Message, DecodeError> decode_frame(ByteView body,
                                                              std::size_t batch_events_max);

// decode_frame() for callers that drop the link on any error (peer links,
// the client library): the error alone.
[[nodiscard]] Result<Message> decode(ByteView body, std::size_t batch_events_max);

// Appends one complete frame (header and body) for `message` to `out`.
void encode(Bytes& out, const Message& message);

// Builds a frame whose last field is a list of stored envelopes (Events,
// Replicate) incrementally, without decoding them: construct, add each
// envelope, finish. The list is an array32 whose count finish() patches, so
// the bytes differ from encode()'s (which uses the shortest array header);
// both decode to the same message.
class EnvelopeFrameBuilder {
 public:
    void add(ByteView envelope);
    // Patches the count and the frame length; returns the envelopes added.
    std::size_t finish();
    std::size_t bytes() const { return out_.size() - start_; }

 protected:
    // Starts a frame in `out` (appending). REQUIRES: `out` outlives the builder.
    explicit EnvelopeFrameBuilder(Bytes& out);
    // Opens the envelope list; called once the fields before it are packed.
    void begin_envelopes();
    Bytes& out_;

 private:
    std::size_t start_;
    std::size_t count_at_ = 0;
    std::size_t count_ = 0;
};

class EventsFrameBuilder : public EnvelopeFrameBuilder {
 public:
    EventsFrameBuilder(Bytes& out, std::uint64_t subscription_id);
};

class ReplicateFrameBuilder : public EnvelopeFrameBuilder {
 public:
    ReplicateFrameBuilder(Bytes& out, Epoch epoch, std::string_view stream,
                          const StreamPolicy& policy, Seq prev_seq, const Digest& prev_hash,
                          Seq history, Seq visible);
};

// A FetchReply that serves (code 0).
class FetchReplyFrameBuilder : public EnvelopeFrameBuilder {
 public:
    FetchReplyFrameBuilder(Bytes& out, Epoch epoch, std::string_view stream, Seq prev_seq,
                           const Digest& prev_hash);
};

// A Publish frame's events, packed as they are queued (one copy of each
// field, no allocation per event); write_frame() appends the whole frame
// once the batch is sent. The bytes are those encode() writes for a Publish.
class PublishEvents {
 public:
    void add(const EventDraft& event);
    std::size_t count() const { return count_; }
    std::size_t bytes() const { return packed_.size(); }
    void write_frame(Bytes& out, std::uint64_t request_id, std::string_view stream,
                     std::optional<Seq> expected_last_seq) const;

 private:
    Bytes packed_;
    std::size_t count_ = 0;
};

}  // namespace spirit::core::protocol
