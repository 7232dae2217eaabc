#include "topology/elector.h"

#include <algorithm>
#include <type_traits>

#include "core/assert.h"

namespace spirit::topology {

namespace {

std::string epoch_text(core::Epoch e) {
    return std::to_string(e.value());
}

}  // namespace

const char* elector_state_name(Elector::State state) {
    switch (state) {
        case Elector::State::follower:
            return "follower";
        case Elector::State::pre_candidate:
            return "pre-candidate";
        case Elector::State::candidate:
            return "candidate";
        case Elector::State::elected:
            return "elected";
        case Elector::State::master:
            return "master";
    }
    return "?";
}

const char* step_down_cause_name(StepDownCause cause) {
    switch (cause) {
        case StepDownCause::restarted:
            return "restarted";
        case StepDownCause::check_quorum:
            return "check_quorum";
        case StepDownCause::higher_epoch:
            return "higher_epoch";
        case StepDownCause::transfer:
            return "transfer";
        case StepDownCause::commit_failed:
            return "commit_failed";
    }
    return "?";
}

Elector::Elector(ElectorOptions options, const std::vector<core::TopologyEvent>& restored)
    : options_(std::move(options)), prng_(options_.seed) {
    SPIRIT_ASSERT(options_.members.contains(options_.self));
    SPIRIT_ASSERT(options_.author.node == options_.self);
    SPIRIT_ASSERT(options_.heartbeat_ticks >= 1);
    SPIRIT_ASSERT(options_.election_ticks > options_.heartbeat_ticks);
    for (const core::TopologyEvent& e : restored) {
        view_.add(e);
        if (e.key.author == options_.author) own_seq_ = std::max(own_seq_, e.key.seq);
    }
    const Role recorded = view_.role();
    epoch_ = std::max({recorded.epoch, view_.voted_by(options_.self), options_.epoch_floor});
    seen_ = std::max(epoch_, view_.highest_epoch());
    if (recorded.epoch == epoch_ && recorded.master != options_.self) master_ = recorded.master;
    emit(core::topo::NodeStarted{view_.incarnation(options_.author) + 1,
                                 !options_.members.is_data(options_.self)});
    if (recorded.master == options_.self && !view_.stepped_down(recorded.epoch)) {
        // A restart never resumes an epoch: what the master had in memory
        // is gone. Saying so lets its followers elect at once.
        emit(core::topo::SteppedDown{default_group, recorded.epoch, "restarted"});
        pending_.notes.push_back(
            {ElectionNote::Kind::stepped_down, recorded.epoch, StepDownCause::restarted});
    }
    reset_election_timer();
}

Role Elector::role() const {
    if (state_ == State::master) return Role{epoch_, options_.self};
    if (master_ == options_.self) return Role{epoch_, core::NodeId{}};
    return Role{epoch_, master_};
}

void Elector::tick() {
    ++now_;
    if (now_ >= next_heartbeat_) {
        send_heartbeats();
        next_heartbeat_ = now_ + options_.heartbeat_ticks;
    }
    if (state_ == State::master) {
        if (now_ >= quorum_check_) check_quorum();
        return;
    }
    if (state_ == State::elected) return;  // waiting for MasterElected to be durable
    if (now_ >= election_deadline_ && can_stand()) start_pre_vote();
}

void Elector::heard(const core::NodeId& from) {
    if (from != options_.self && options_.members.contains(from)) heard_[from] = now_;
}

void Elector::step(const core::NodeId& from, const ElectionMessage& message) {
    if (from == options_.self || !options_.members.contains(from)) return;
    heard(from);
    std::visit(
        [&](const auto& m) {
            using T = std::decay_t<decltype(m)>;
            seen_ = std::max(seen_, m.epoch);
            if constexpr (std::is_same_v<T, Heartbeat>) on_heartbeat(from, m);
            if constexpr (std::is_same_v<T, VoteRequest>) on_vote_request(from, m);
            if constexpr (std::is_same_v<T, VoteResponse>) on_vote_response(from, m);
            if constexpr (std::is_same_v<T, TimeoutNow>) {
                if (can_stand() && state_ != State::master && state_ != State::elected) {
                    start_campaign(true);
                }
            }
        },
        message);
}

void Elector::on_heartbeat(const core::NodeId& from, const Heartbeat& h) {
    const bool claims = h.master == from;
    const bool valid_master = !h.master.empty() && options_.members.is_data(h.master) &&
                              (options_.broken.any_candidate_any_epoch ||
                               options_.members.candidate_of(h.epoch) == h.master);
    if (!h.master.empty() && !valid_master) return;  // a claim no member may make
    if (h.epoch < epoch_) {
        // Behind: tell it (a master of an older epoch steps down on hearing this).
        options_.broken.no_check_quorum
            ? void()
            : pending_.send_now.push_back({from, Heartbeat{epoch_, role().master}});
        return;
    }
    if (valid_master && (h.epoch > epoch_ || master_.empty() || master_ == h.master)) {
        if (h.epoch == epoch_ &&
            (state_ == State::candidate || state_ == State::elected || state_ == State::master)) {
            return;  // this epoch is this node's own: a claim to it is false
        }
        if (stepped_down(h.epoch, h.master)) {
            // Hearsay of a master that stepped down, or a late claim of its own (a
            // master never returns to an epoch it left): no master, but the epoch fences.
            if (h.epoch > epoch_) follow(h.epoch, core::NodeId{}, false);
            return;
        }
        // Hearsay of the master this node follows already changes nothing.
        if (claims || h.epoch > epoch_ || master_ != h.master) follow(h.epoch, h.master, claims);
        return;
    }
    if (h.epoch > epoch_ && (state_ == State::master || state_ == State::elected)) {
        // A voter moved on to a higher epoch: someone is standing there.
        give_up(StepDownCause::higher_epoch,
                "node " + from.value() + " knows epoch " + epoch_text(h.epoch));
        return;
    }
    if (h.epoch == epoch_ && h.master.empty() && master_ == from && claims == false) {
        master_ = core::NodeId{};  // the master said it stepped down
        master_contact_.reset();
    }
}

bool Elector::stepped_down(core::Epoch epoch, const core::NodeId& master) const {
    // Only the durable SteppedDown counts: a heartbeat without a master may
    // be a late one from before the election was won.
    return view_.stepped_down(epoch) && view_.master_of(epoch) == master;
}

void Elector::follow(core::Epoch epoch, const core::NodeId& master, bool contact) {
    if (state_ == State::master || state_ == State::elected) {
        // Only a higher epoch's master is followed from these states.
        give_up(StepDownCause::higher_epoch,
                "node " + master.value() + " is master of epoch " + epoch_text(epoch));
    }
    epoch_ = epoch;
    master_ = master;
    state_ = State::follower;
    if (contact) {
        master_contact_ = now_;
        reset_election_timer();
    }
}

bool Elector::may_grant(const core::NodeId& from, const VoteRequest& r) const {
    if (!options_.members.is_data(from)) return false;
    if (!options_.broken.any_candidate_any_epoch &&
        options_.members.candidate_of(r.epoch) != from) {
        return false;
    }
    const bool above = options_.broken.votes_twice_per_epoch ? r.epoch >= epoch_ : r.epoch > epoch_;
    if (!above) return false;
    return r.forced || !master_alive();
}

void Elector::on_vote_request(const core::NodeId& from, const VoteRequest& r) {
    const bool grant = may_grant(from, r);
    if (r.pre || !grant) {
        pending_.send_now.push_back({from, VoteResponse{r.epoch, r.pre, grant, epoch_}});
        return;
    }
    grant_vote(from, r);
}

void Elector::grant_vote(const core::NodeId& from, const VoteRequest& r) {
    if (state_ == State::master || state_ == State::elected) {
        // A live master grants only a forced vote (may_grant): a transfer.
        SPIRIT_ASSERT(r.forced);
        give_up(StepDownCause::transfer,
                "voted for " + from.value() + " in epoch " + epoch_text(r.epoch));
    }
    state_ = State::follower;
    epoch_ = r.epoch;
    master_ = core::NodeId{};
    master_contact_.reset();
    emit(core::topo::Voted{default_group, r.epoch, from});
    pending_.send_after.push_back({from, VoteResponse{r.epoch, false, true, r.epoch}});
    reset_election_timer();
}

void Elector::on_vote_response(const core::NodeId& from, const VoteResponse& r) {
    seen_ = std::max(seen_, r.known);
    if (!r.granted || r.epoch != standing_) return;
    if (r.pre && state_ == State::pre_candidate) {
        grants_.insert(from);
        if (grants_.size() >= options_.members.majority()) start_campaign(false);
    } else if (!r.pre && state_ == State::candidate && epoch_ == standing_) {
        grants_.insert(from);
        if (grants_.size() >= options_.members.majority()) win();
    }
}

core::Epoch Elector::campaign_epoch() const {
    const core::Epoch above = std::max(epoch_, seen_);
    if (options_.broken.any_candidate_any_epoch) return above.next();
    return options_.members.next_epoch(options_.self, above);
}

void Elector::start_pre_vote() {
    SPIRIT_ASSERT(can_stand());
    state_ = State::pre_candidate;
    standing_ = campaign_epoch();
    grants_ = {options_.self};
    reset_election_timer();
    pending_.notes.push_back({ElectionNote::Kind::pre_vote_started, standing_});
    if (grants_.size() >= options_.members.majority()) return start_campaign(false);
    broadcast(VoteRequest{standing_, true, false}, false);
}

void Elector::start_campaign(bool forced) {
    SPIRIT_ASSERT(can_stand());
    if (state_ != State::pre_candidate || standing_ <= epoch_) standing_ = campaign_epoch();
    SPIRIT_ASSERT(standing_ > epoch_);
    state_ = State::candidate;
    forced_ = forced;
    epoch_ = standing_;
    master_ = core::NodeId{};
    master_contact_.reset();
    grants_ = {options_.self};
    emit(core::topo::Voted{default_group, standing_, options_.self});
    pending_.notes.push_back({ElectionNote::Kind::campaign_started, standing_});
    reset_election_timer();
    if (grants_.size() >= options_.members.majority()) return win();
    broadcast(VoteRequest{standing_, false, forced}, true);
}

void Elector::win() {
    SPIRIT_ASSERT(state_ == State::candidate && epoch_ == standing_);
    SPIRIT_ASSERT(grants_.size() >= options_.members.majority());
    state_ = State::elected;
    emit(core::topo::MasterElected{default_group, epoch_,
                                   std::vector<core::NodeId>(grants_.begin(), grants_.end())});
    pending_.notes.push_back({ElectionNote::Kind::won, epoch_});
    won_ready_ = ready_seq_ + 1;  // the id the pending Ready gets
}

void Elector::persisted(std::uint64_t ready_id) {
    // Only a Ready that carried events says what is durable: one without
    // may be persisted at once, while MasterElected is still being written.
    if (!writing_.contains(ready_id)) return;
    writing_.erase(writing_.begin(), writing_.upper_bound(ready_id));
    if (state_ == State::elected && ready_id >= won_ready_) become_master();
}

void Elector::become_master() {
    state_ = State::master;
    master_ = options_.self;
    master_contact_ = now_;
    // Every voter gets a full election timeout to be heard from.
    for (const Member& m : options_.members.all()) heard_[m.id] = now_;
    quorum_check_ = now_ + options_.election_ticks;
    send_heartbeats();
    next_heartbeat_ = now_ + options_.heartbeat_ticks;
}

void Elector::give_up(StepDownCause cause, const std::string& reason) {
    SPIRIT_ASSERT(state_ == State::master || state_ == State::elected);
    emit(core::topo::SteppedDown{default_group, epoch_, reason});
    pending_.notes.push_back({ElectionNote::Kind::stepped_down, epoch_, cause});
    state_ = State::follower;
    master_ = core::NodeId{};
    master_contact_.reset();
    reset_election_timer();
    send_heartbeats();  // followers learn at once that this epoch has no master
}

void Elector::check_quorum() {
    quorum_check_ = now_ + options_.election_ticks;
    if (options_.broken.no_check_quorum) return;
    std::size_t heard = 1;
    for (const Member& m : options_.members.all()) {
        if (m.id == options_.self) continue;
        auto it = heard_.find(m.id);
        if (it != heard_.end() && now_ - it->second < options_.election_ticks) ++heard;
    }
    if (heard >= options_.members.majority()) return;
    give_up(StepDownCause::check_quorum, "heard from " + std::to_string(heard) + " of " +
                                             std::to_string(options_.members.voters()) +
                                             " voters in an election timeout");
}

void Elector::learn(const core::TopologyEvent& event) {
    if (event.key.author == options_.author || !view_.add(event)) return;
    const core::NodeId& author = event.key.author.node;
    if (const auto* m = std::get_if<core::topo::MasterElected>(&event.body)) {
        if (author != options_.self &&
            (m->epoch > epoch_ ||
             (m->epoch == epoch_ && master_.empty() && state_ != State::candidate &&
              state_ != State::elected && state_ != State::master))) {
            follow(m->epoch, author, false);
        }
    } else if (const auto* s = std::get_if<core::topo::SteppedDown>(&event.body)) {
        if (s->epoch == epoch_ && master_ == author && author != options_.self) {
            master_ = core::NodeId{};
            master_contact_.reset();
        }
    } else if (const auto* v = std::get_if<core::topo::Voted>(&event.body)) {
        // A vote this node cast in an earlier instance (before a wipe) binds it too.
        if (author == options_.self && v->epoch > epoch_ && state_ != State::master &&
            state_ != State::elected) {
            epoch_ = v->epoch;
            master_ = core::NodeId{};
        }
    }
    seen_ = std::max(seen_, view_.highest_epoch());
}

void Elector::transfer(const core::NodeId& target) {
    SPIRIT_ASSERT(options_.members.is_data(target));
    if (target != options_.self) {
        pending_.send_now.push_back({target, TimeoutNow{epoch_}});
        return;
    }
    if (state_ != State::master && state_ != State::elected) start_campaign(true);
}

void Elector::step_down(const std::string& reason) {
    if (state_ == State::master || state_ == State::elected) {
        give_up(StepDownCause::commit_failed, reason);
    }
}

core::TopologyKey Elector::note(core::TopologyBody body) {
    emit(std::move(body));
    return core::TopologyKey{options_.author, own_seq_};
}

Ready Elector::take_ready() {
    Ready out = std::move(pending_);
    pending_ = Ready{};
    out.id = ++ready_seq_;
    if (!out.events.empty()) writing_.insert(out.id);
    return out;
}

void Elector::broadcast(const ElectionMessage& message, bool after_durable) {
    for (const Member& m : options_.members.all()) {
        if (m.id == options_.self) continue;
        (after_durable ? pending_.send_after : pending_.send_now).push_back({m.id, message});
    }
}

void Elector::send_heartbeats() {
    broadcast(Heartbeat{epoch_, role().master}, false);
}

void Elector::reset_election_timer() {
    const std::uint64_t t = options_.election_ticks;
    election_deadline_ = now_ + prng_.uniform(t, 2 * t - 1);
}

bool Elector::master_alive() const {
    if (state_ == State::master || state_ == State::elected) return true;
    if (master_.empty() || !master_contact_) return false;
    return now_ - *master_contact_ < options_.election_ticks;
}

bool Elector::can_stand() const {
    return options_.members.is_data(options_.self);
}

void Elector::emit(core::TopologyBody body) {
    core::TopologyEvent event{core::TopologyKey{options_.author, ++own_seq_}, core::TimestampNs{0},
                              std::move(body)};
    view_.add(event);
    pending_.events.push_back(std::move(event));
}

std::string Elector::describe() const {
    std::string out =
        options_.self.value() + " " + elector_state_name(state_) + " epoch " + epoch_text(epoch_);
    const Role r = role();
    out += r.master.empty() ? " master none" : " master " + r.master.value();
    if (state_ == State::pre_candidate || state_ == State::candidate) {
        out += " standing " + epoch_text(standing_) + " with " + std::to_string(grants_.size());
    }
    return out;
}

}  // namespace spirit::topology
