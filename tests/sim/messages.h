// tests/sim/messages.h: what simulated nodes send each other. Election
// messages are topology::Elector's own (a Heartbeat carries the sender's
// `$topology` version vector for anti-entropy); the data messages mirror
// core/protocol.h's peer messages (Positions, Replicate, ReplicaAck,
// ReplicaRefused, Probe, Truncate, Fetch) with model entries instead of
// envelopes. Every data message carries the sender's epoch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/topology_event.h"
#include "tests/sim/model.h"
#include "topology/elector.h"

namespace spirit::sim {

// Author (node index) -> the highest contiguous seq of its sub-log held durably.
using VersionVector = std::vector<std::uint64_t>;

struct ElectionMsg {
    topology::ElectionMessage message;
    VersionVector versions;  // heartbeats only: what the sender holds of `$topology`
};
struct TopologyEventsMsg {
    std::vector<core::TopologyEvent> events;
};
// A slave's durable position of every stream (after a barrier: nothing in flight).
struct PositionsMsg {
    Epoch epoch;
    std::array<topology::Position, stream_count> at;
    std::array<Epoch, stream_count> last_epoch{};  // of each copy's last event (a mutation ranks
                                                   // by it)
};
// The master asks a slave to report its positions again (a retransmit timer).
struct SolicitMsg {
    Epoch epoch;
};
// Events after prev_seq (none: confirm the epoch there); `visible` is the
// seq the master declares consumers may see; `history` where its copy ended
// when it completed the stream: a copy may record this epoch as confirmed
// only once it holds that much of the master's chain.
struct ReplicateMsg {
    Epoch epoch;
    std::size_t stream = 0;
    Seq prev_seq;
    std::uint64_t prev_hash = 0;
    std::vector<Entry> entries;
    Seq visible;
    Seq history;
};
struct AckMsg {
    Epoch epoch;
    std::size_t stream = 0;
    topology::Position at;  // durable there, confirmed in at.confirmed
};
struct RefusedMsg {
    Epoch epoch;
    std::size_t stream = 0;
    Seq resume_seq;
    std::uint64_t resume_hash = 0;
};
struct ProbeMsg {
    Epoch epoch;
    std::size_t stream = 0;
    std::vector<Seq> seqs;
};
// `at`: where the durable copy that answered ends. The simulated network
// reorders, so the master takes only answers about the copy it searches
// (the daemon's peer links are FIFO and need no such check).
struct ProbeReplyMsg {
    Epoch epoch;
    std::size_t stream = 0;
    std::vector<std::pair<Seq, std::optional<std::uint64_t>>> hashes;
    topology::Position at;
};
// Cut the copy after `after` (whose hash is `hash`): the rest goes to
// quarantine. Only if the durable copy still ends at `searched`, the claim
// the master searched: a Truncate that arrives late (after the copy was cut
// and caught up) must not cut again.
struct TruncateMsg {
    Epoch epoch;
    std::size_t stream = 0;
    Seq after;
    std::uint64_t hash = 0;
    topology::Position searched;
    Seq history;  // as in ReplicateMsg
};
struct FetchMsg {
    Epoch epoch;
    std::size_t stream = 0;
    Seq from;
    Seq to;
};
// `ok` false: the source does not hold prev_seq.
struct FetchReplyMsg {
    Epoch epoch;
    std::size_t stream = 0;
    bool ok = false;
    Seq prev_seq;
    std::uint64_t prev_hash = 0;
    std::vector<Entry> entries;
};
struct VisibleMsg {
    Epoch epoch;
    std::size_t stream = 0;
    Seq seq;
};
// A node refused data from an older epoch and names the one it knows.
struct FencedMsg {
    Epoch epoch;
};
// A publish forwarded by a node that is not master.
struct ForwardMsg {
    std::size_t stream = 0;
    std::uint64_t id = 0;
};

using Message = std::variant<ElectionMsg, TopologyEventsMsg, PositionsMsg, SolicitMsg, ReplicateMsg,
                             AckMsg, RefusedMsg, ProbeMsg, ProbeReplyMsg, TruncateMsg, FetchMsg,
                             FetchReplyMsg, VisibleMsg, FencedMsg, ForwardMsg>;

// One line per message, deterministic (message-level traces).
std::string describe(const Message& message);
std::string describe(const core::TopologyEvent& event);

}  // namespace spirit::sim
