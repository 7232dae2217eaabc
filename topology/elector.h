// topology/elector.h: the election of a replica group's master, as a pure
// state machine (DESIGN.md, "Topology"; docs/topology.md has the rules
// and the diagram).
//
// - Every node sends a Heartbeat with its epoch and that epoch's master
//   (if known) every heartbeat interval; a master's heartbeat names itself.
//   A heartbeat naming another node's master (hearsay) is followed too,
//   unless the view holds that master's SteppedDown for that epoch; so is a
//   master's own claim, unless the view holds its SteppedDown (the claim is
//   late: a master never returns to an epoch it left). Such a heartbeat
//   fences by its epoch but names no master.
// - A data node that has not heard its master for a randomized election
//   timeout asks for pre-votes for its next epoch (members.h: epochs are
//   ballots), so a node back from a partition cannot depose a healthy
//   master. With a majority of pre-votes it votes for itself (a Voted
//   event, durable before the VoteRequests go out) and asks for votes.
// - A voter grants a vote only for an epoch above every epoch it knows,
//   only to the one data node that may stand in it, and only if it has not
//   heard a live master within the election timeout (unless the request is
//   forced by a leadership transfer). The vote is a Voted event, durable
//   before the VoteResponse is sent; voting for an epoch also fences: the
//   node then refuses data of older epochs (epoch() grows).
// - A candidate with votes from a majority appends MasterElected and is
//   master once that event is durable.
// - A master that has not heard from a majority of voters for an election
//   timeout steps down (check-quorum), as does one that learns of a higher
//   epoch. Either way it appends SteppedDown with the reason.
//
// Inputs: tick(), heard(), step() with a verified message, learn() with
// another author's verified event, persisted(), and the daemon's requests
// (transfer, step_down, note). Outputs: take_ready() (events to seal and
// persist, messages to send at once, messages to send once those events
// are durable) and role(), which the daemon reads after every input and
// acts on. No IO, clock, threads or randomness of its own: the PRNG is
// seeded through the options. Loop thread (or the simulator) only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/topology_event.h"
#include "topology/members.h"
#include "topology/prng.h"
#include "topology/role_table.h"
#include "topology/view.h"

namespace spirit::topology {

// Rules the simulator breaks on purpose to show that its checkers notice.
// Production code never sets them.
struct BrokenRules {
    bool votes_twice_per_epoch = false;    // a voter grants every request of an epoch
    bool any_candidate_any_epoch = false;  // no ballots: a candidate stands in known + 1
    bool no_check_quorum = false;          // a master never counts who it hears
};

// The sender's epoch and that epoch's master (empty: none known). A
// master's heartbeat names itself.
struct Heartbeat {
    core::Epoch epoch;
    core::NodeId master;
    friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};

// The sender stands in `epoch`. `pre`: would the receiver vote (nothing is
// recorded)? `forced`: a leadership transfer; voters skip the live-master check.
struct VoteRequest {
    core::Epoch epoch;
    bool pre = false;
    bool forced = false;
    friend bool operator==(const VoteRequest&, const VoteRequest&) = default;
};

// The answer; `known` is the voter's epoch.
struct VoteResponse {
    core::Epoch epoch;
    bool pre = false;
    bool granted = false;
    core::Epoch known;
    friend bool operator==(const VoteResponse&, const VoteResponse&) = default;
};

// A leadership transfer: the receiver stands at once, forced.
struct TimeoutNow {
    core::Epoch epoch;
    friend bool operator==(const TimeoutNow&, const TimeoutNow&) = default;
};

using ElectionMessage = std::variant<Heartbeat, VoteRequest, VoteResponse, TimeoutNow>;

struct Outgoing {
    core::NodeId to;
    ElectionMessage message;
    friend bool operator==(const Outgoing&, const Outgoing&) = default;
};

// Why a master (or a node elected and not yet master) stepped down. The
// SteppedDown event says it in words; this is the bounded set the daemon
// counts by (docs/operations.md, spirit_step_downs_total).
enum class StepDownCause : std::uint8_t {
    restarted,      // it started again: a restart never resumes an epoch
    check_quorum,   // it heard from no majority of voters for an election timeout
    higher_epoch,   // it learnt of a higher epoch: a voter's, or another master's
    transfer,       // it granted the forced vote of a leadership transfer
    commit_failed,  // the daemon asked (step_down): its own commit failed
};
inline constexpr StepDownCause step_down_causes[] = {
    StepDownCause::restarted, StepDownCause::check_quorum, StepDownCause::higher_epoch,
    StepDownCause::transfer, StepDownCause::commit_failed};
// "restarted", "check_quorum", ...: the metric's label values.
const char* step_down_cause_name(StepDownCause cause);

// Something this node did in its elections, for the daemon's metrics and
// logs; nothing to act on (the events and messages of the Ready carry it).
struct ElectionNote {
    enum class Kind : std::uint8_t {
        pre_vote_started,  // it asked for pre-votes to stand in `epoch`
        campaign_started,  // it voted for itself in `epoch` and asked for votes
        won,               // a majority voted for it: MasterElected for `epoch` is on its way
        stepped_down,      // it gave up `epoch`, for `cause`
    };
    Kind kind;
    core::Epoch epoch;
    StepDownCause cause = StepDownCause::restarted;  // stepped_down only
    friend bool operator==(const ElectionNote&, const ElectionNote&) = default;
};

// What the daemon must do. Seal and persist `events` in order (one batch is
// fine): their keys are this node's next seqs, their timestamps 0 (the
// daemon stamps them when it seals); send `send_now` at once; send `send_after` only once every
// event of this Ready (and of every earlier one) is durable, then call persisted(id). A Ready
// without events may release `send_after` at once, but still calls persisted(id): that call
// says nothing of earlier Readies, whose events may still be on their way to disk.
struct Ready {
    std::uint64_t id = 0;
    std::vector<core::TopologyEvent> events;
    std::vector<Outgoing> send_now;
    std::vector<Outgoing> send_after;
    std::vector<ElectionNote> notes;  // in the order they happened
    bool empty() const {
        return events.empty() && send_now.empty() && send_after.empty() && notes.empty();
    }
};

struct ElectorOptions {
    core::NodeId self;
    Members members;
    core::TopologyAuthor author;  // this node's own sub-log (its NodeStarted counts starts)
    std::uint64_t heartbeat_ticks = 1;
    // The election timeout is drawn from [election_ticks, 2 * election_ticks).
    std::uint64_t election_ticks = 10;
    std::uint64_t seed = 0;
    // The highest epoch this node knows from outside `$topology` (its
    // copies' confirmed epochs, a role recorded before elections existed).
    core::Epoch epoch_floor{0};
    BrokenRules broken;
};

class Elector {
 public:
    enum class State : std::uint8_t { follower, pre_candidate, candidate, elected, master };

    // `restored`: every durable event of `$topology` this node holds (all
    // authors), valid. Appends NodeStarted (and SteppedDown if the events
    // say this node was master: a restart never resumes an epoch).
    // REQUIRES: options.members contains options.self; heartbeat_ticks >= 1;
    // election_ticks > heartbeat_ticks.
    Elector(ElectorOptions options, const std::vector<core::TopologyEvent>& restored);

    // One logical tick.
    void tick();
    // Any valid frame arrived from `from` (check-quorum counts these).
    void heard(const core::NodeId& from);
    // A message from another member. Messages from non-members are dropped.
    void step(const core::NodeId& from, const ElectionMessage& message);
    // Another author's event, valid (check_event) and durable here.
    void learn(const core::TopologyEvent& event);
    // Ready `ready_id`'s send_after was sent and, if it carried events, they
    // and every earlier Ready's events are durable. For a Ready without
    // events nothing else follows: the driver may call it at once.
    void persisted(std::uint64_t ready_id);

    // An operator asks that `target` become master: the target stands at
    // once, forced. REQUIRES: members.is_data(target).
    void transfer(const core::NodeId& target);
    // The daemon gives up mastership (its own commit failed): a step-down
    // of cause commit_failed, `reason` in its SteppedDown.
    void step_down(const std::string& reason);
    // An event the daemon authors (a completion, a quarantine, a stream's
    // lifecycle); returns its key.
    core::TopologyKey note(core::TopologyBody body);

    bool has_ready() const { return !pending_.empty(); }
    Ready take_ready();

    // The role to act on: master == self only once elected and durable;
    // empty master: none known.
    Role role() const;
    // The epoch this node fences by: data of an older epoch is refused.
    core::Epoch epoch() const { return epoch_; }
    State state() const { return state_; }
    const View& view() const { return view_; }
    const Members& members() const { return options_.members; }
    std::uint64_t now() const { return now_; }
    // Deterministic one-line state ("n1 master epoch 3", for traces).
    std::string describe() const;

 private:
    void on_heartbeat(const core::NodeId& from, const Heartbeat& h);
    void on_vote_request(const core::NodeId& from, const VoteRequest& r);
    void on_vote_response(const core::NodeId& from, const VoteResponse& r);
    bool may_grant(const core::NodeId& from, const VoteRequest& r) const;
    void grant_vote(const core::NodeId& from, const VoteRequest& r);
    void follow(core::Epoch epoch, const core::NodeId& master, bool contact);
    void start_pre_vote();
    void start_campaign(bool forced);
    void win();
    void become_master();
    void give_up(StepDownCause cause, const std::string& reason);
    void check_quorum();
    void broadcast(const ElectionMessage& message, bool after_durable);
    void send_heartbeats();
    void reset_election_timer();
    bool master_alive() const;
    // `master` stepped down in `epoch`: the view holds its SteppedDown.
    bool stepped_down(core::Epoch epoch, const core::NodeId& master) const;
    bool can_stand() const;
    core::Epoch campaign_epoch() const;
    void emit(core::TopologyBody body);

    ElectorOptions options_;
    View view_;
    Prng prng_;
    State state_ = State::follower;
    core::Epoch epoch_{0};  // the highest epoch voted in or followed
    core::NodeId master_;   // epoch_'s master, if known (self only as master)
    core::Epoch seen_{0};   // the highest epoch heard of anywhere
    std::uint64_t now_ = 0;
    std::uint64_t election_deadline_ = 0;
    std::uint64_t next_heartbeat_ = 0;
    std::uint64_t quorum_check_ = 0;
    std::optional<std::uint64_t> master_contact_;  // last tick the master was heard
    std::map<core::NodeId, std::uint64_t> heard_;
    core::Epoch standing_{0};  // pre_candidate / candidate: the epoch stood in
    bool forced_ = false;
    std::set<core::NodeId> grants_;    // pre-votes or votes for standing_
    std::uint64_t won_ready_ = 0;      // elected: the Ready holding MasterElected
    std::set<std::uint64_t> writing_;  // Readies taken with events, not yet persisted
    std::uint64_t own_seq_ = 0;        // the last seq of this node's own sub-log
    std::uint64_t ready_seq_ = 0;
    Ready pending_;
};

const char* elector_state_name(Elector::State state);

}  // namespace spirit::topology
