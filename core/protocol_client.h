// core/protocol_client.h: the messages of the client protocol, between a
// client (producer, consumer, the spirit CLI) and spiritd, in both
// directions. docs/protocol.md is the specification; core/protocol.h has
// the message types, the codec and the frame builders.
//
// Fields are listed in wire order: the position of a field in its struct is
// its position in the message's msgpack array (after the type at 0). Never
// renumber, never reorder; add fields only at the end.
//
// Decoded messages may hold views (std::string_view, ByteView) into the
// frame body they came from: valid only while that body is. Strings that
// outlive a frame (names, tokens, messages) are owned.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/envelope.h"
#include "core/ids.h"
#include "core/stream_policy.h"

namespace spirit::core::protocol {

// Protocol version spoken by this build; Hello and PeerHello carry it.
inline constexpr std::uint32_t version = 1;

// --- client -> daemon (types 1 to 63) ---

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

// Changes a stream's policy: `policy` is the whole new one; only its
// retention may differ from the stream's now (docs/protocol.md).
struct StreamAlter {
    std::uint64_t request_id = 0;
    std::string stream;
    StreamPolicy policy;
};

struct Verify {
    std::uint64_t request_id = 0;
    std::string stream;
};

// Asks for a leadership transfer to `master` (spirit cluster set-master):
// the daemon answers Done once the transfer has started. Needs the admin
// right.
struct ClusterSetMaster {
    std::uint64_t request_id = 0;
    std::string master;  // a node id of the cluster
    // Added after master (absent: false). Also when `master` has not caught
    // up since its data dir was made (it then completes from the others);
    // only the target itself may be asked so.
    bool force = false;
};

// What the quarantine holds for `stream` ("": for every stream the token
// may read), answered with a QuarantineListReply.
struct QuarantineList {
    std::uint64_t request_id = 0;
    std::string stream;
};

// A quarantined event's place in its stream's quarantine, which is ordered
// by (seq, epoch, hash): two entries may share a seq (removed in different
// epochs), and even a seq and an epoch.
struct QuarantinePosition {
    Seq seq;
    Epoch epoch;
    Digest hash;  // the envelope's chain hash as stored
    friend bool operator==(const QuarantinePosition&, const QuarantinePosition&) = default;
};

// A page of `stream`'s quarantined envelopes after a position. With
// after_hash set, after (after_seq, after_epoch, after_hash), the `next` of
// the page before; with after_hash nil, after every entry whose seq is at
// most after_seq (0: from the first entry), whatever after_epoch.
struct QuarantineRead {
    std::uint64_t request_id = 0;
    std::string stream;
    Seq after_seq;
    Epoch after_epoch;
    std::optional<Digest> after_hash;
    std::uint64_t limit = 0;  // events at most; 0: the daemon's page
};

// One quarantined event, by its seq and the epoch of its envelope.
struct QuarantineEntry {
    Seq seq;
    Epoch epoch;
};

// Publishes quarantined events of `stream` again, as new events of it:
// the same ids, types, metadata and payloads, in the order of `entries`.
// Answered with the PublishAck of that publish.
struct QuarantineRepublish {
    std::uint64_t request_id = 0;
    std::string stream;
    std::vector<QuarantineEntry> entries;  // 1 to batch_events_max
};

// Asks for a hot backup of the store (spirit backup): the daemon answers
// with BackupChunks, in order, then one BackupDone, or an Error. Needs the
// admin right; one backup runs at a time on a daemon.
struct Backup {
    std::uint64_t request_id = 0;
};

// Asks what the answering node knows of its cluster (spirit topology):
// answered with a TopologyReply by every node, master, slave, witness or a
// node alone. Needs no right beyond a session; positions are listed only
// for streams the token may subscribe to.
struct Topology {
    std::uint64_t request_id = 0;
};

// --- daemon -> client (types 64 to 127) ---

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
    // The chain hash of next_seq - 1: verify the first delivered event against it.
    Digest prev_hash;
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
    // Added after detail: on the master, milliseconds since the peer last
    // held every event the master had (0 while it does, or unknown).
    std::uint64_t lag_ms = 0;
};

// A durable consumer with an open subscription, and how far behind it is.
struct ConsumerStatus {
    std::string consumer;
    std::string stream;
    Seq acked;     // its last acknowledged seq
    Seq last_seq;  // the stream's last seq (what it may catch up to)
    std::uint64_t lag_events = 0;
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
    std::string role;           // "single", "master", "slave" or "learning"
    std::string master;         // the master's node id ("" while none is known)
    std::vector<PeerStatus> peers;
    std::vector<ReplicationError> replication_errors;
    std::uint64_t outbox_events = 0;
    // Added after outbox_events (a reply without them reads as 0 and ""):
    std::uint64_t epoch = 0;  // the epoch of the role this node knows (1 alone)
    std::string state;        // "serving", "completing: ...", "following node-a", ...
    // Added after state (a reply without them reads as 0, false and empty):
    std::uint64_t map_bytes = 0;        // the store's map size (storage.map_size)
    std::uint64_t used_bytes = 0;       // of the data file, up to LMDB's last page in use
    std::uint64_t disk_free_bytes = 0;  // on the data dir's file system
    bool ready = false;                 // what the metrics listener's /ready answers
    std::string ready_detail;           // why not ready; "" when ready
    // The slowest durable consumers with an open subscription, slowest
    // first, at most status_consumers_max of them.
    std::vector<ConsumerStatus> consumers;
};
inline constexpr std::size_t status_consumers_max = 10;

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

struct QuarantineEpochCount {
    Epoch epoch;
    std::uint64_t events = 0;
};

// What the quarantine holds under one stream name.
struct QuarantineStream {
    std::string stream;
    std::uint64_t events = 0;
    Seq first_seq;                             // the lowest quarantined seq
    Seq last_seq;                              // the highest
    std::vector<QuarantineEpochCount> epochs;  // ascending by epoch
};

struct QuarantineListReply {
    std::uint64_t request_id = 0;
    std::vector<QuarantineStream> streams;  // by name
};

struct QuarantineReadReply {
    std::uint64_t request_id = 0;
    std::string stream;
    // Sealed envelopes as stored (docs/format.md), in (seq, epoch, hash)
    // order; views into the frame.
    std::vector<ByteView> envelopes;
    // Set when more entries may follow: the QuarantineRead's after_* fields.
    std::optional<QuarantinePosition> next;
};

// A BackupChunk's data holds at most this many bytes.
inline constexpr std::size_t backup_chunk_bytes_max = std::size_t{1} << 20;

// One piece of a backup, in order: `data` is the copy's bytes from `offset`.
struct BackupChunk {
    std::uint64_t request_id = 0;
    std::uint64_t offset = 0;
    // About the bytes the whole copy has, as estimated when it started.
    std::uint64_t bytes_estimate = 0;
    ByteView data;  // a view into the frame
};

// The end of a backup: its size and the BLAKE2b-256 of all its bytes, as
// the daemon sent them.
struct BackupDone {
    std::uint64_t request_id = 0;
    std::uint64_t bytes = 0;
    Digest hash;
};

// A member of the cluster (a [[cluster.members]] entry of the answering
// node's config) as that node sees it.
struct TopologyMember {
    std::string node_id;
    std::string address;  // its cluster.listen, "host:port"
    std::string role;     // "data" or "witness"
    bool self = false;    // the answering node itself
    bool linked = false;  // a live peer link to it (true for self)
    // Milliseconds since its link last carried a frame; nullopt: never
    // heard since the answering node started (and for self).
    std::optional<std::uint64_t> heard_ms;
    // Its newest instance (the sub-log of `$topology` whose last event is
    // the latest) and that instance's starts; 0 and 0: no event of it held.
    std::uint64_t instance = 0;
    std::uint64_t incarnation = 0;
    Epoch voted;       // the highest epoch it voted in, over its instances (0: none)
    std::string link;  // "connected", or why not ("unreachable: ..."); "" for self
};

// A replica group's master as the answering node's view of `$topology`
// says: the master elected in the group's highest epoch, unless it stepped
// down.
struct TopologyGroup {
    std::string name;    // "default": every data member (placement does not exist yet)
    Epoch epoch;         // the highest epoch a master was elected in (0: none yet)
    std::string master;  // that master; "" when there is none, and `why` says why
    std::string why;     // "no master elected yet", "node-a, the master of epoch 4, ..."
};

// One copy of one stream.
struct TopologyPosition {
    std::string node_id;
    std::string stream;
    Seq seq;          // its last event (on the master: verified against its chain)
    Epoch confirmed;  // the epoch of the last master the copy aligned with
    // Events the copy lacks of the master's; nullopt where the answering
    // node does not know it (a slave knows its own copies only).
    std::optional<std::uint64_t> lag_events;
    // "master" (the master's own copy), a replica's copy state as the
    // master tracks it ("replicating", "unverified", "diverged", "repairing",
    // "refused", "unreported"), or "own" (a copy of the answering node that
    // is not the master).
    std::string state;
};

// What `$topology` holds of one author's sub-log.
struct TopologySubLog {
    std::string node;
    std::uint64_t instance = 0;
    std::uint64_t events = 0;
    TimestampNs last_ns;  // the timestamp its author gave its last event
};

struct TopologyReply {
    std::uint64_t request_id = 0;
    std::string node_id;
    std::string role;    // as StatusReply.role: "single", "master", "slave", "witness", "electing"
    Epoch epoch;         // the epoch this node fences by (1 alone)
    std::string master;  // the master this node knows ("" while none is known)
    std::string state;   // as StatusReply.state
    std::vector<TopologyMember> members;  // by node id
    std::vector<TopologyGroup> groups;
    // Whose positions these are: "master" (this node masters the group and
    // lists every copy), "self" (this node's own copies only), "" (none: a
    // witness holds no data).
    std::string positions_source;
    // Laggiest first, then by stream, the master's own copy first; at most
    // topology_positions_max of the positions_total there are.
    std::vector<TopologyPosition> positions;
    std::uint64_t positions_total = 0;
    std::vector<TopologySubLog> sublogs;  // by author; at most topology_sublogs_max
    std::uint64_t topology_events = 0;    // `$topology` events this node holds
    std::uint64_t topology_refused = 0;   // peers' events refused since it started
    std::string last_refusal;             // why the last one was ("" none)
    // Epochs two different nodes claim to have mastered (never in a correct
    // cluster), ascending.
    std::vector<Epoch> conflicts;
};
inline constexpr std::size_t topology_members_max = 256;
inline constexpr std::size_t topology_groups_max = 16;
inline constexpr std::size_t topology_positions_max = 1000;
inline constexpr std::size_t topology_sublogs_max = 1024;
inline constexpr std::size_t topology_conflicts_max = 64;

}  // namespace spirit::core::protocol
