// core/protocol_peer.h: the messages of peer links, between the spiritd
// nodes of one cluster (docs/replication.md describes what they do). They
// share the framing, the codec and the version of the client protocol
// (core/protocol.h); a client socket refuses them and a peer link refuses
// everything else.
//
// Fields are listed in wire order: never renumber, never reorder; add fields
// only at the end. Decoded messages may hold views into the frame body.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/envelope.h"
#include "core/ids.h"
#include "core/protocol_client.h"
#include "core/stream_policy.h"

namespace spirit::core::protocol {

// --- node <-> node (types 128 and up) ---
//
// Every message that carries or acknowledges data carries its sender's
// epoch first: a node refuses data of an epoch older than it knows and
// answers with a Heartbeat naming the current role (epoch fencing).

// The peer protocol's version (PeerHello checks it).
inline constexpr std::uint32_t peer_version = 3;

// Opens a peer link, both ways: each side sends it first and checks the
// other's version, cluster name and node id. `epoch` and `master` are the
// role the sender has recorded (0 and "": none yet); `fresh`: its data dir
// is new or wiped and its copies have not caught up since, so they do not
// count when a master gathers copies.
struct PeerHello {
    std::uint32_t version = peer_version;
    std::string cluster;
    std::string node_id;
    Epoch epoch;
    std::string master;
    bool fresh = false;
};

// How much of one author's sub-log of `$topology` a node holds: every
// event up to `seq` (core/topology_event.h).
struct TopologyVersion {
    std::string node;
    std::uint64_t instance = 0;
    std::uint64_t seq = 0;
    friend bool operator==(const TopologyVersion&, const TopologyVersion&) = default;
};

// Sent every cluster.heartbeat_ms, at once when the sender's role changes,
// and in answer to data of an older epoch: the sender's epoch and that
// epoch's master ("" if none is known; a master names itself). Any frame
// counts as a sign of life. `caught_up` (master to slave): every copy of the
// receiver holds what the master had when the copy was checked. `versions`:
// what the sender holds of `$topology` (the receiver answers with the
// TopologyEvents the sender lacks).
struct Heartbeat {
    Epoch epoch;
    std::string master;
    bool caught_up = false;
    std::vector<TopologyVersion> versions;
};

// Elections (topology/elector.h, docs/topology.md). The sender stands in
// `epoch`; `pre`: would the receiver vote (nothing is recorded); `forced`:
// a leadership transfer, voters skip the live-master check.
struct VoteRequest {
    Epoch epoch;
    bool pre = false;
    bool forced = false;
};

// The answer; `known` is the voter's epoch. A granted real vote is sent
// only once the voter's Voted event is durable.
struct VoteResponse {
    Epoch epoch;
    bool pre = false;
    bool granted = false;
    Epoch known;
    // What the voter holds of `$topology` as it answers (a new master
    // completes nothing before it holds as much as a majority of voters).
    std::vector<TopologyVersion> versions;
};

// A leadership transfer (spirit cluster set-master): the receiver stands
// at once, forced. `epoch`: the sender's.
struct TimeoutNow {
    Epoch epoch;
};

// Sealed `$topology` events the receiver lacks (core/topology_codec.h),
// each author's in seq order, at most 256 KiB of them per frame.
struct TopologyEvents {
    std::vector<ByteView> events;  // views into the frame
};

// Where one copy of a stream ends: its confirmed epoch (of the last master
// it aligned with), last seq and hash, and the policy recorded with it.
struct CopyPosition {
    std::string stream;
    Epoch confirmed;
    Seq last_seq;
    Digest last_hash;
    StreamPolicy policy;
};

// Slave -> master when the link to its master comes up and when the master
// or epoch changes: where each of its copies ends (durable). A report with
// many streams spans frames: all but the last have `more` set.
struct Positions {
    Epoch epoch;
    bool fresh = false;
    std::vector<CopyPosition> streams;
    bool more = false;
};

// Master -> slave: sealed envelopes prev_seq + 1 ... of `stream`, chained
// on prev_hash. The policy lets the slave create the stream. No envelopes:
// "your copy ends at (prev_seq, prev_hash), as mine does there; confirm
// this epoch" (an align). `history`: where the master's copy ended when it
// completed the stream in this epoch; the slave's copy is confirmed in the
// epoch only once it holds that seq. `visible`: the last seq the master
// lets consumers see (for an immediate stream, what `acks` copies hold).
struct Replicate {
    Epoch epoch;
    std::string stream;
    StreamPolicy policy;
    Seq prev_seq;
    Digest prev_hash;
    Seq history;
    Seq visible;
    std::vector<ByteView> envelopes;  // views into the frame
};

// Master -> slave: consumers may now see `stream` up to `seq` (an immediate
// stream's watermark moved without a Replicate to carry it).
struct Visible {
    Epoch epoch;
    std::string stream;
    Seq seq;
};

// Slave -> master: `seq` (whose chain hash is `hash`) and everything before
// it are durable here; the copy is confirmed in `confirmed`.
struct ReplicaAck {
    Epoch epoch;
    std::string stream;
    Seq seq;
    Digest hash;
    Epoch confirmed;
};

// Slave -> master: a Replicate of `stream` was refused at `seq` (`code` an
// errc value): a chain that does not verify, or a frame that does not
// continue the copy. The copy can resume after (resume_seq, resume_hash);
// later frames are dropped until one continues from there.
struct ReplicaRefused {
    Epoch epoch;
    std::string stream;
    Seq seq;
    std::uint32_t code = 0;
    std::string message;
    Seq resume_seq;
    Digest resume_hash;
};

// Slave -> master: a client's publish, for the master to order. Event ids
// are always set (the slave fills missing ones), so a repeat is harmless.
struct Forward {
    Epoch epoch;
    std::uint64_t request_id = 0;
    std::string_view stream;
    std::optional<Seq> expected_last_seq;
    std::vector<EventDraft> events;  // views into the frame
};

// Master -> slave: the receipt of a Forward (fields as PublishAck).
struct ForwardAck {
    Epoch epoch;
    PublishAck ack;
};

struct ForwardError {
    Epoch epoch;
    std::uint64_t request_id = 0;
    std::uint32_t code = 0;
    std::string message;
};

// Master -> a copy: its hashes at `seqs`, to find where two copies part ways.
struct Probe {
    Epoch epoch;
    std::string stream;
    std::vector<Seq> seqs;
};

struct SeqHash {
    Seq seq;
    std::optional<Digest> hash;  // nil: this copy holds no such seq
};

// The answer to a Probe, in its order.
struct ProbeReply {
    Epoch epoch;
    std::string stream;
    std::vector<SeqHash> hashes;
};

// Master -> slave: the copy agrees with the master's up to (after_seq,
// hash); move the events after it into quarantine and confirm the epoch
// there if that is at or past `history` (as in Replicate; else once the
// copy holds it). `remove`: the master holds no such stream; after the cut
// the empty copy is deleted.
struct Truncate {
    Epoch epoch;
    std::string stream;
    Seq after_seq;
    Digest hash;
    bool remove = false;
    Seq history;
};

// A completing master -> the copy it adopts: send from_seq .. to_seq.
struct Fetch {
    Epoch epoch;
    std::string stream;
    Seq from_seq;
    Seq to_seq;
};

// The answer to a Fetch: envelopes chained on (prev_seq, prev_hash), at most
// 1 MiB; fewer than asked means "ask again from the next". code != 0: it
// cannot serve (an errc value, and why).
struct FetchReply {
    Epoch epoch;
    std::string stream;
    std::uint32_t code = 0;
    std::string message;
    Seq prev_seq;
    Digest prev_hash;
    std::vector<ByteView> envelopes;  // views into the frame
};

}  // namespace spirit::core::protocol
