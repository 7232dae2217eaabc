// tests/sim/master.h: a simulated node's part while it masters its group in
// an epoch, mirroring daemon/cluster/master.h step by step, with the real
// topology::Completion, topology::Tracker, topology::DivergenceSearch and
// topology::watermark deciding:
// 1. Completion. Once its own writes are durable (a barrier), it reports
//    its own copies, solicits the data peers' Positions, and waits until
//    Completion::gathered() (completion_quorum reports, and for a grace the
//    peers it heard lately). For each stream it adopts the highest copy by
//    (confirmed epoch, seq): probes the source at its own last seq, on a
//    mismatch searches for the last common seq and cuts its own suffix
//    into quarantine, fetches the missing events (every hash checked), and
//    durably confirms the epoch.
// 2. Serving. Every slave's Positions are claims checked by the Tracker
//    against this chain; a diverged copy is searched (Probe) and told to cut
//    (Truncate); verified copies are pushed to (Replicate), an empty one
//    aligning a copy to the epoch. A missing answer is asked for again
//    (Solicit) after a few ticks: the simulated network loses messages.
// 3. Writes. A stream takes writes once completed; imm, if it has history,
//    once `acks` copies confirmed the epoch. A publish is sent to the slaves
//    in parallel with its own write; eventual is acked at its own durable
//    write, immediate once `acks` verified durable copies hold it (its own
//    counting once durable). The visible watermark follows the same counts.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/sim/messages.h"
#include "topology/completion.h"
#include "topology/divergence.h"
#include "topology/tracker.h"

namespace spirit::sim {

class Node;
class World;

class Master {
 public:
    Master(Node& node, Epoch epoch);

    Epoch epoch() const { return epoch_; }
    void start();
    // The role ended: everything waiting fails.
    void abandon();
    void tick();

    void receive(std::size_t from, const PositionsMsg& m);
    void receive(std::size_t from, const AckMsg& m);
    void receive(std::size_t from, const RefusedMsg& m);
    void receive(std::size_t from, const ProbeReplyMsg& m);
    void receive(std::size_t from, const FetchReplyMsg& m);

    bool serving() const { return phase_ == Phase::serving; }
    bool writable(std::size_t stream) const;
    // False: refused at once (not writable). Otherwise acked later, or not.
    bool publish(std::size_t stream, std::uint64_t id);
    std::string state() const;

 private:
    enum class Phase : std::uint8_t { gathering, adopting, serving };
    struct Adoption {
        enum class Step : std::uint8_t { probe, search, cut, fetch, confirm };
        topology::Choice choice;
        Step step = Step::probe;
        std::optional<topology::DivergenceSearch> search;
        std::uint64_t asked_at = 0;  // ticks_ when the last request went out
        int retries = 0;
        bool writing = false;  // fetched events on their way to disk
    };
    struct Awaiter {
        std::uint64_t id = 0;
        std::uint64_t deadline = 0;
    };

    // Completion.
    void restart_completion(const std::string& why);
    void report_own();
    void report(std::size_t peer, const PositionsMsg& m);
    std::vector<topology::CopyReport> copies_of(const std::array<topology::Position, 2>& at,
                                                const std::array<Epoch, 2>& last_epoch) const;
    void check_gathered();
    void adopt(const topology::Choice& choice);
    void probe_source(std::size_t stream, std::vector<Seq> seqs);
    void adoption_probed(std::size_t stream, const ProbeReplyMsg& m);
    void cut_own(std::size_t stream, Seq common);
    void fetch(std::size_t stream);
    void confirm_own(std::size_t stream);
    void adopted(std::size_t stream);
    void finish_completion();
    void retry_adoptions();

    // Serving.
    void verify_peer(std::size_t peer);
    void check_claim(std::size_t peer, std::size_t stream, const topology::Position& claim,
                     topology::Tracker::Claim kind);
    void tracker_probed(std::size_t peer, const ProbeReplyMsg& m);
    void pump(std::size_t peer);
    void own_changed(std::size_t stream);
    void copies_changed(std::size_t stream);
    void await(std::size_t stream, Seq seq, std::uint64_t id);
    void ack(std::size_t stream, Seq seq, std::uint64_t id);
    void solicit(std::size_t peer);
    void answered(std::size_t peer, std::size_t stream);
    bool needs_answer(std::size_t peer) const;
    void expire();
    std::size_t acks_required(std::size_t stream) const;
    Seq settled(std::size_t stream) const;  // what may be acked and shown
    std::size_t stream_index(const std::string& name) const;
    void trace(const std::string& text) const;

    Node& node_;
    World& world_;
    Epoch epoch_;
    std::vector<std::size_t> peers_;  // the other data nodes
    Phase phase_ = Phase::gathering;
    topology::Tracker tracker_;
    std::optional<topology::Completion> completion_;
    bool own_reported_ = false;
    std::uint64_t generation_ = 0;  // of the completion: stale callbacks do nothing
    std::uint64_t ticks_ = 0;
    std::map<std::size_t, PositionsMsg> reports_;
    std::array<std::optional<Adoption>, stream_count> adoptions_;
    std::array<bool, stream_count> awaiting_confirmation_{};
    std::array<std::multimap<Seq, Awaiter>, stream_count> awaiters_;
    std::array<Seq, stream_count> visible_{};
    std::array<Seq, stream_count> history_{};  // its copy when it completed each stream
    // ticks_ of the last answer about each (peer, stream).
    std::map<std::pair<std::size_t, std::size_t>, std::uint64_t> last_answer_;
    std::map<std::size_t, std::uint64_t> last_solicit_;
};

}  // namespace spirit::sim
