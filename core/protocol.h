// core/protocol.h: the client protocol's messages and their msgpack codec
// (docs/protocol.md is the specification).
//
// A frame is a 4-byte big-endian body length, then a msgpack array whose
// element 0 is the message type and whose following elements are the fields
// in the order listed here. Type numbers and field positions are on the
// wire: never renumber, never reorder; add fields only at the end.
//
// Decoded messages may hold views (std::string_view, ByteView) into the
// frame body they came from: valid only while that body is. Strings that
// outlive a frame (names, tokens, messages) are owned.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/bytes.h"
#include "core/envelope.h"
#include "core/ids.h"
#include "core/result.h"
#include "core/stream_policy.h"

namespace spirit::core::protocol {

// Protocol version spoken by this build; Hello carries the client's.
inline constexpr std::uint32_t version = 1;

// Message types. On the wire: never renumber.
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
};

// Which side of which link may send a type.
enum class Family { client, daemon, peer };
Family family_of(Type type) noexcept;

const char* type_name(Type type) noexcept;

// --- client -> daemon ---

struct Hello {
    std::uint32_t version = protocol::version;
    std::string client_name;
    std::optional<std::string> token;
};

struct Publish {
    std::uint64_t request_id = 0;
    std::string_view stream;
    std::optional<Seq> expected_last_seq;
    std::vector<EventDraft> events;  // views into the frame
};

// Where a subscription starts. On the wire: never renumber.
enum class From : std::uint8_t {
    first = 0,  // the first retained event
    seq = 1,    // from_value is the first seq to deliver
    time = 2,   // from_value is a timestamp (ns): the first event at or after it
    last = 3,   // the last event, then everything after it
    new_ = 4,   // only events appended after the subscription starts
};

struct Subscribe {
    std::uint64_t subscription_id = 0;  // chosen by the client, unique per connection
    std::string target;                 // a stream name, or a pattern with * and >
    From from = From::first;
    std::uint64_t from_value = 0;
    std::optional<std::string> durable;  // durable consumer name: resume after its last ack
    std::uint64_t credit_events = 0;     // events the daemon may send before more credit
    std::uint64_t credit_bytes = 0;      // 0: no byte limit
};

struct Credit {
    std::uint64_t subscription_id = 0;
    std::uint64_t events = 0;  // added to the subscription's credit
    std::uint64_t bytes = 0;
};

struct Ack {
    std::uint64_t subscription_id = 0;
    std::string stream;
    Seq seq;  // everything up to and including seq is processed
};

struct Unsubscribe {
    std::uint64_t subscription_id = 0;
};

struct Status {
    std::uint64_t request_id = 0;
};

// One page of the stream list: the streams named after `after` ("" from
// the first), at most `limit` of them (0: the daemon's page size).
struct StreamList {
    std::uint64_t request_id = 0;
    std::string after;
    std::uint64_t limit = 0;
};

struct StreamInfo {
    std::uint64_t request_id = 0;
    std::string stream;
};

struct StreamCreate {
    std::uint64_t request_id = 0;
    std::string stream;
    StreamPolicy policy;
};

struct StreamDelete {
    std::uint64_t request_id = 0;
    std::string stream;
};

struct Verify {
    std::uint64_t request_id = 0;
    std::string stream;
};

// --- daemon -> client ---

struct Welcome {
    std::uint32_t version = protocol::version;
    std::string node_id;
    std::string server;  // "spiritd 0.1.0"
    std::uint64_t frame_bytes_max = 0;
    std::uint32_t batch_events_max = 0;
};

// What an acknowledgement promises. On the wire: never renumber.
enum class AckKind : std::uint8_t {
    durable = 0,     // committed (per the sync mode) on the stream's master
    replicated = 1,  // durable on `holders`, at least the stream's acks copies
    accepted = 2,    // stored in this node's outbox; the master has not ordered it yet
};

struct Duplicate {
    std::uint32_t index = 0;
    Seq seq;
};

struct PublishAck {
    std::uint64_t request_id = 0;
    AckKind kind = AckKind::durable;
    Seq first_seq;  // of the events this publish stored; Seq{0} if none (all duplicates)
    Seq last_seq;
    Epoch epoch;
    TimestampNs timestamp_ns;
    Digest last_hash;
    std::vector<Duplicate> duplicates;
    std::vector<std::string> holders;  // node ids holding the events durably
};

struct Events {
    std::uint64_t subscription_id = 0;
    std::vector<ByteView> envelopes;  // sealed envelopes (docs/format.md), views into the frame
};

struct StreamPosition {
    std::string stream;
    Seq next_seq;  // the first seq the subscription will deliver
    Digest
        prev_hash;  // the chain hash of next_seq - 1: verify the first delivered event against it
};

struct Subscribed {
    std::uint64_t subscription_id = 0;
    std::vector<StreamPosition> positions;
};

struct SubscriptionEnded {
    std::uint64_t subscription_id = 0;
    std::uint32_t code = 0;  // an errc value
    std::string message;
};

struct ErrorReply {
    std::optional<std::uint64_t> request_id;  // nil: about the connection, which then closes
    std::uint32_t code = 0;                   // an errc value
    std::string message;
};

// One peer link as `spirit status` shows it.
struct PeerStatus {
    std::string node_id;
    bool connected = false;
    std::uint64_t lag_events = 0;  // on the master: events the peer does not have yet
    std::string detail;
};

struct ReplicationError {
    std::string stream;
    std::string message;
};

struct StatusReply {
    std::uint64_t request_id = 0;
    std::string node_id;
    std::string server;
    std::uint64_t uptime_ms = 0;
    std::uint64_t connections = 0;
    std::uint64_t subscriptions = 0;
    std::uint64_t streams = 0;
    std::uint64_t commits = 0;
    std::uint64_t syncs = 0;
    std::uint64_t events_written = 0;
    std::uint64_t bytes_written = 0;
    std::uint64_t failed_commits = 0;
    std::uint64_t queued_bytes = 0;
    std::string storage_error;  // empty while the store accepts writes
    std::string role;           // "single", "master" or "slave"
    std::string master;         // the master's node id
    std::vector<PeerStatus> peers;
    std::vector<ReplicationError> replication_errors;
    std::uint64_t outbox_events = 0;
};

struct StreamDescription {
    std::string name;
    StreamPolicy policy;
    Seq first_seq;
    Seq last_seq;
    std::uint64_t event_count = 0;
    std::uint64_t event_bytes = 0;
    Epoch last_epoch;
    TimestampNs last_timestamp_ns;
    Digest last_hash;
    TimestampNs created_ns;
};

struct StreamListReply {
    std::uint64_t request_id = 0;
    std::vector<StreamDescription> streams;
    std::string next;  // "" on the last page; else the `after` of the next page
};

struct StreamInfoReply {
    std::uint64_t request_id = 0;
    StreamDescription stream;
};

struct Done {
    std::uint64_t request_id = 0;
};

struct VerifyReply {
    std::uint64_t request_id = 0;
    std::string stream;
    std::uint64_t events_checked = 0;
    Seq first_seq;
    Seq last_seq;
    std::optional<Seq> break_seq;  // set: the chain breaks here
    std::string problem;
};

// --- node <-> node ---

// Opens a peer link, both ways: each side sends it first and checks the
// other's cluster name and node id.
struct PeerHello {
    std::uint32_t version = protocol::version;
    std::string cluster;
    std::string node_id;
};

// Sent every cluster.heartbeat_ms; any frame counts as a sign of life.
struct Heartbeat {};

// Where one copy of a stream ends.
struct CopyPosition {
    std::string stream;
    Seq last_seq;
    Digest last_hash;
};

// Slave -> master after the hello: the end of each of its copies, from
// which the master replicates.
struct Positions {
    std::vector<CopyPosition> streams;
};

// Master -> slave: sealed envelopes prev_seq + 1 ... of `stream`, chained
// on prev_hash. The policy lets the slave create the stream.
struct Replicate {
    std::string stream;
    StreamPolicy policy;
    Seq prev_seq;
    Digest prev_hash;
    std::vector<ByteView> envelopes;  // views into the frame
};

// Slave -> master: `seq` and everything before it are durable here.
struct ReplicaAck {
    std::string stream;
    Seq seq;
};

// Slave -> master: the slave stopped taking `stream` (a chain that does not
// verify, a gap); `code` is an errc value.
struct ReplicaRefused {
    std::string stream;
    Seq seq;
    std::uint32_t code = 0;
    std::string message;
};

// Slave -> master: a client's publish, for the master to order. Event ids
// are always set (the slave fills missing ones), so a repeat is harmless.
struct Forward {
    std::uint64_t request_id = 0;
    std::string_view stream;
    std::optional<Seq> expected_last_seq;
    std::vector<EventDraft> events;  // views into the frame
};

// Master -> slave: the receipt of a Forward (fields as PublishAck).
struct ForwardAck {
    PublishAck ack;
};

struct ForwardError {
    std::uint64_t request_id = 0;
    std::uint32_t code = 0;
    std::string message;
};

using Message =
    std::variant<Hello, Publish, Subscribe, Credit, Ack, Unsubscribe, Status, StreamList,
                 StreamInfo, StreamCreate, StreamDelete, Verify, Welcome, PublishAck, Events,
                 Subscribed, SubscriptionEnded, ErrorReply, StatusReply, StreamListReply,
                 StreamInfoReply, Done, VerifyReply, PeerHello, Heartbeat, Positions, Replicate,
                 ReplicaAck, ReplicaRefused, Forward, ForwardAck, ForwardError>;

// The wire type of a decoded message.
Type type_of(const Message& message) noexcept;

// Decodes one frame body (without its 4-byte header). Never throws; every
// count and size is checked against the limits before anything is built.
// Errors: errc::malformed (naming the message and field), unknown_message,
// limit_exceeded. Views in the result point into `body`.
[[nodiscard]] Result<Message> decode(ByteView body, std::size_t batch_events_max);

// Appends one complete frame (header and body) for `message` to `out`.
void encode(Bytes& out, const Message& message);

// Builds a frame whose last field is a list of stored envelopes (Events,
// Replicate) incrementally, without decoding them: construct, add each
// envelope, finish.
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

class EventsFrameBuilder : public EnvelopeFrameBuilder {
 public:
    EventsFrameBuilder(Bytes& out, std::uint64_t subscription_id);
};

class ReplicateFrameBuilder : public EnvelopeFrameBuilder {
 public:
    ReplicateFrameBuilder(Bytes& out, std::string_view stream, const StreamPolicy& policy,
                          Seq prev_seq, const Digest& prev_hash);
};

}  // namespace spirit::core::protocol
