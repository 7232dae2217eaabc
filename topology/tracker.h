// topology/tracker.h: the master's view of every copy of every stream of
// its group: which positions are verified against its own chain, what each
// replica durably holds, what to send it next, and from that the watermark
// of `acks` copies and the holders of a seq (etcd raft's tracker/, in
// spirit's terms).
//
// The rule that matters: only a position whose (seq, hash) equals this
// master's chain ever counts as a copy. A replica's report is a claim; it
// is checked against the master's hash at that seq (the daemon reads it)
// before it counts. Acks of what the master sent are checked against the
// hash of the last event sent. A copy whose claim differs is searched for
// its last common seq (topology/divergence.h) and repaired there.
//
// Pure and deterministic; one instance per master term, owned by the loop
// thread. Byte counts are the daemon's frame sizes; time is not needed.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/node_id.h"
#include "topology/divergence.h"
#include "topology/position.h"

namespace spirit::topology {

enum class CopyState : std::uint8_t {
    unverified,   // nothing known yet, or a claim waits to be checked
    diverged,     // the claim differs from this chain: a search runs (see search)
    repairing,    // the replica was told to cut its copy after the common seq
    replicating,  // verified: pushed from `next`
    refused,      // the replica refused the stream (`why`); cleared by a new link
};
const char* copy_state_name(CopyState state);

// This master's own copy of a stream, as the search and the checks need it.
struct Chain {
    core::Seq first_seq{1};  // first retained seq
    core::Digest base_hash;  // hash of first_seq - 1
    core::Seq last_seq{0};
    core::Digest last_hash;
};

// A frame sent and not yet acknowledged.
struct InFlight {
    core::Seq last;
    core::Digest last_hash;
    std::uint64_t bytes = 0;
};

struct ReplicaCopy {
    CopyState state = CopyState::unverified;
    Position claim;            // what the replica reported last
    core::Seq matched{0};      // verified: durable there and equal to this chain
    core::Epoch confirmed{0};  // its confirmed epoch, from a verified position
    // Verified on the replica's current link. Only such a copy counts in the
    // watermark, the holders and the confirmed copies: a replica whose link
    // dropped may come back wiped or rolled back, so what was verified before
    // (`matched`, kept for lag) counts again only once a claim on the new
    // link was checked.
    bool counts = false;
    core::Seq target{0};          // this master's last seq when the copy was verified
    core::Seq next{1};            // next seq to send
    core::Digest next_prev_hash;  // the hash `next` chains on
    bool aligned = false;         // sent something since it was verified
    std::deque<InFlight> in_flight;
    std::optional<DivergenceSearch> search;
    std::string why;  // refused: the replica's reason
};

// What a claim's check found.
enum class Verdict : std::uint8_t {
    verified,         // replicate from claim.seq + 1
    diverged,         // search: send probes()
    cannot_continue,  // the copies share no seq this master keeps (`why` says)
};

// The range a replica needs next: events from..to (inclusive) chained on
// prev_hash. from == to + 1 with an empty range means "align": confirm the
// epoch at from - 1. A verified copy that needs nothing is aligned once, so
// that it confirms the epoch and learns its copy is the master's.
struct SendRange {
    core::Seq from;
    core::Digest prev_hash;
    core::Seq to;
};

class Tracker {
 public:
    // `replicas`: the other data nodes of the group. `window_bytes`: bytes
    // in flight to one replica, over all its streams, before sending waits.
    Tracker(core::Epoch epoch, std::vector<core::NodeId> replicas, std::uint64_t window_bytes);

    core::Epoch epoch() const { return epoch_; }
    const std::vector<core::NodeId>& replicas() const { return replicas_; }

    // This master's own copy of `stream` is durable up to `chain.last_seq`,
    // confirmed in `confirmed`.
    void own(const std::string& stream, const Chain& chain, core::Epoch confirmed);
    const Chain* own_chain(const std::string& stream) const;
    // This master sealed `stream` up to `last` and is committing it:
    // replicas may be sent that much now (Raft's leader sends in parallel
    // with its own write), but its own copy counts in the watermark and the
    // holders only once own() says it is durable. Ignored for a stream
    // without an own() chain.
    void sealed(const std::string& stream, core::Seq last);
    // The last seq that may be sent: sealed or durable, whichever is higher.
    core::Seq sendable(const std::string& stream) const;

    // A replica's link closed: what was in flight is lost; every copy must
    // be claimed and checked again, and until then none of them counts
    // (`matched` is kept: the lag it showed).
    void link_down(const core::NodeId& replica);

    // What a position a replica sends stands for.
    enum class Claim : std::uint8_t {
        durable,  // its copy is durable up to there (Positions, an unexpected ack)
        resume,   // it can continue from there (a refusal); not yet durable
    };
    // `replica` says its copy of `stream` ends at `claim`. `here` is this
    // master's hash at claim.seq (nullopt: it has no such seq).
    Verdict claim(const core::NodeId& replica, const std::string& stream, const Position& claim,
                  const std::optional<core::Digest>& here, Claim kind = Claim::durable);
    // `replica`'s durable position after what it was sent. Returns false if
    // it is not the end of a frame in flight (a claim: check it instead).
    [[nodiscard]] bool ack(const core::NodeId& replica, const std::string& stream,
                           const Position& position);
    // The replica stopped taking `stream`; its bytes in flight are released.
    void refused(const core::NodeId& replica, const std::string& stream, std::string why);

    // Divergence search: the seqs to ask `replica` for, and the comparisons.
    std::vector<core::Seq> probes(const core::NodeId& replica, const std::string& stream) const;
    // Returns the common seq once the search is done (the copy is then
    // `repairing`: tell the replica to cut after it), nullopt otherwise.
    std::optional<core::Seq> probed(const core::NodeId& replica, const std::string& stream,
                                    const std::vector<std::pair<core::Seq, bool>>& same);

    // What to send `replica` in `stream` now (nullopt: nothing, or no room).
    std::optional<SendRange> next_send(const core::NodeId& replica,
                                       const std::string& stream) const;
    // A frame of events up to `last` (or an align, last = next - 1) was sent.
    void sent(const core::NodeId& replica, const std::string& stream, core::Seq last,
              const core::Digest& last_hash, std::uint64_t bytes);
    std::uint64_t bytes_in_flight(const core::NodeId& replica) const;

    // The highest seq `copies` verified copies (this master's included) hold;
    // a replica's copy counts only once verified on its current link.
    core::Seq watermark(const std::string& stream, std::size_t copies) const;
    // The nodes whose verified copies hold `stream` up to `seq`, this master
    // first (replicas as in watermark()).
    std::vector<core::NodeId> holders(const std::string& stream, core::Seq seq,
                                      const core::NodeId& self) const;
    // Copies (this master's included) confirmed in this epoch (replicas as
    // in watermark()).
    std::size_t confirmed_copies(const std::string& stream) const;
    // Whether every copy of `replica` is verified and has caught up with
    // where this master was when it was verified.
    bool caught_up(const core::NodeId& replica) const;

    const ReplicaCopy* copy(const core::NodeId& replica, const std::string& stream) const;
    // Streams this tracker knows, in name order.
    std::vector<std::string> streams() const;
    // `stream` was deleted: its chain and every replica's copy go, with
    // what was in flight of it.
    void forget(const std::string& stream);

 private:
    struct Stream {
        Chain chain;
        // Sealed beyond chain.last_seq (not durable here yet); equal to it
        // when nothing is.
        core::Seq sealed_seq{0};
        core::Epoch confirmed{0};
        std::map<core::NodeId, ReplicaCopy> copies;
    };
    Stream& stream_of(const std::string& stream);
    ReplicaCopy& copy_of(const core::NodeId& replica, const std::string& stream);
    void release(const core::NodeId& replica, ReplicaCopy& copy);
    void verify(ReplicaCopy& copy, const Position& claim, const Chain& chain, Claim kind);

    core::Epoch epoch_;
    std::vector<core::NodeId> replicas_;
    std::uint64_t window_bytes_;
    std::map<std::string, Stream> streams_;
    std::map<core::NodeId, std::uint64_t> bytes_in_flight_;
};

}  // namespace spirit::topology
