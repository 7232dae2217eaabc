// The simulated master: completion (gather, adopt: probe, search, cut,
// fetch, confirm), then serving (claims verified by the Tracker, repair,
// push, acks by topology::watermark, the visible watermark). Mirrors
// daemon/cluster/master.cc and master_completion.cc.
#include "tests/sim/master.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/assert.h"
#include "tests/sim/node.h"
#include "tests/sim/world.h"
#include "topology/quorum.h"

namespace spirit::sim {

namespace {

constexpr std::uint64_t window_bytes = 4096;       // in flight to one slave
constexpr std::size_t replicate_entries_max = 16;  // per Replicate
constexpr std::uint64_t entry_bytes = 48;
constexpr std::uint64_t frame_bytes = 64;
constexpr std::uint64_t grace_ticks = 5;    // the gather waits for reachable peers
constexpr std::uint64_t solicit_ticks = 5;  // silence before asking again
constexpr std::uint64_t adoption_retry_ticks = 6;
constexpr int adoption_retries_max = 3;
constexpr std::uint64_t ack_timeout_ticks = 50;

core::NodeId id_of(World& world, std::size_t index) {
    return world.node(index).id();
}

topology::Chain chain_of(const Copy& c) {
    return topology::Chain{Seq{1}, digest_of(genesis_hash), c.last_seq(), digest_of(c.last_hash())};
}

std::optional<core::Digest> digest_at(const Copy& c, Seq seq) {
    auto h = c.hash_at(seq);
    if (!h) return std::nullopt;
    return digest_of(*h);
}

}  // namespace

Master::Master(Node& node, Epoch epoch)
    : node_(node),
      world_(node.world()),
      epoch_(epoch),
      tracker_(
          epoch,
          [&] {
              std::vector<core::NodeId> ids;
              for (std::size_t i : node.world().data_nodes()) {
                  if (i != node.index()) ids.push_back(node.world().node(i).id());
              }
              return ids;
          }(),
          window_bytes) {
    for (std::size_t i : world_.data_nodes()) {
        if (i != node_.index()) peers_.push_back(i);
    }
}

void Master::trace(const std::string& text) const {
    node_.trace(fmt::format("master {}: {}", epoch_.value(), text));
}

std::size_t Master::stream_index(const std::string& name) const {
    return name == stream_name(imm) ? imm : ev;
}

std::size_t Master::acks_required(std::size_t stream) const {
    return topology::copies_required(stream_policy(stream), world_.data_nodes().size());
}

void Master::start() {
    trace("completing every stream before it takes writes");
    restart_completion("");
}

void Master::abandon() {
    for (auto& list : awaiters_) list.clear();
    ++generation_;
}

// ---- Completion ----------------------------------------------------------

void Master::restart_completion(const std::string& why) {
    if (!why.empty()) trace("completing again: " + why);
    ++generation_;
    phase_ = Phase::gathering;
    for (auto& a : adoptions_) a.reset();
    const bool alone = world_.options().mutations.completion_from_self;
    completion_.emplace(
        topology::Completion::Options{.self = node_.id(),
                                      .replicas = alone ? 1 : world_.data_nodes().size(),
                                      .grace_ticks = grace_ticks},
        epoch_);
    own_reported_ = false;
    for (const auto& [peer, m] : reports_) report(peer, m);
    // Its own copies once every write queued before is durable.
    const std::uint64_t generation = generation_;
    node_.barrier(node_.guarded([this, generation] {
        if (generation != generation_) return;
        report_own();
        check_gathered();
    }));
    for (std::size_t peer : peers_) {
        if (!reports_.contains(peer)) solicit(peer);
    }
}

std::vector<topology::CopyReport> Master::copies_of(const std::array<topology::Position, 2>& at,
                                                    const std::array<Epoch, 2>& last_epoch) const {
    std::vector<topology::CopyReport> out;
    for (std::size_t s = 0; s < stream_count; ++s) {
        topology::Position p = at[s];
        // The figure-8 trap, on purpose: rank by the last event's epoch.
        if (world_.options().mutations.rank_by_last_epoch) p.confirmed = last_epoch[s];
        out.push_back(topology::CopyReport{stream_name(s), p, stream_policy(s)});
    }
    return out;
}

void Master::report_own() {
    std::array<topology::Position, 2> at;
    std::array<Epoch, 2> last_epoch{};
    for (std::size_t s = 0; s < stream_count; ++s) {
        const Copy& d = node_.durable(s);
        at[s] = d.position();
        last_epoch[s] = d.entries.empty() ? Epoch{0} : d.entries.back().epoch;
    }
    completion_->report(node_.id(), topology::CopyFreshness::caught_up, copies_of(at, last_epoch));
    own_reported_ = true;
}

void Master::report(std::size_t peer, const PositionsMsg& m) {
    if (world_.options().mutations.completion_from_self) return;
    completion_->report(id_of(world_, peer), topology::CopyFreshness::caught_up,
                        copies_of(m.at, m.last_epoch));
}

void Master::check_gathered() {
    if (phase_ != Phase::gathering || !own_reported_ || !completion_->gathered()) return;
    const std::vector<topology::Choice> choices = completion_->choices();
    phase_ = Phase::adopting;
    std::string text;
    for (const topology::Choice& c : choices) {
        text += fmt::format(" {} from {} (confirmed {}, seq {})", c.stream, c.source.value(),
                            c.target.confirmed.value(), c.target.seq.value());
    }
    trace("heard enough copies; adopting" + text);
    for (const topology::Choice& c : choices) adopt(c);
}

void Master::adopt(const topology::Choice& choice) {
    const std::size_t s = stream_index(choice.stream);
    adoptions_[s] = Adoption{choice, Adoption::Step::probe, std::nullopt, ticks_, 0};
    const topology::Position own = node_.head(s).position();
    if (choice.source == node_.id() ||
        (own.seq == choice.target.seq && own.hash == choice.target.hash)) {
        return confirm_own(s);
    }
    if (own.seq == Seq{0}) return fetch(s);  // the genesis agrees everywhere
    probe_source(s, {own.seq});
}

void Master::probe_source(std::size_t stream, std::vector<Seq> seqs) {
    Adoption& a = *adoptions_[stream];
    a.asked_at = ticks_;
    node_.send(world_.index_of(a.choice.source), ProbeMsg{epoch_, stream, std::move(seqs)});
}

void Master::adoption_probed(std::size_t stream, const ProbeReplyMsg& m) {
    Adoption& a = *adoptions_[stream];
    const Copy& own = node_.head(stream);
    if (a.step == Adoption::Step::probe) {
        if (!m.hashes.empty() && m.hashes[0].second == own.last_hash()) return fetch(stream);
        a.step = Adoption::Step::search;
        a.search.emplace(Seq{0}, own.last_seq());
    } else {
        for (const auto& [seq, theirs] : m.hashes) {
            const auto ours = own.hash_at(seq);
            a.search->answer(seq, theirs && ours && *theirs == *ours);
        }
    }
    if (a.search->done()) return cut_own(stream, a.search->common());
    probe_source(stream, a.search->probes());
}

void Master::cut_own(std::size_t stream, Seq common) {
    Adoption& a = *adoptions_[stream];
    a.step = Adoption::Step::cut;
    const std::uint64_t count = node_.head(stream).last_seq().value() - common.value();
    trace(fmt::format("{}: its copy differs from {}'s after seq {}; cuts {} events into quarantine",
                      stream_name(stream), a.choice.source.value(), common.value(), count));
    const std::uint64_t generation = generation_;
    node_.truncate(stream, common, node_.guarded([this, generation, stream, common, count] {
        if (generation != generation_) return;
        node_.note(core::topo::SuffixQuarantined{stream_name(stream), epoch_, common, count});
        fetch(stream);
    }));
}

void Master::fetch(std::size_t stream) {
    Adoption& a = *adoptions_[stream];
    a.step = Adoption::Step::fetch;
    const Seq own = node_.head(stream).last_seq();
    if (own >= a.choice.target.seq) return confirm_own(stream);
    a.asked_at = ticks_;
    node_.send(world_.index_of(a.choice.source),
               FetchMsg{epoch_, stream, own.next(), a.choice.target.seq});
}

void Master::receive(std::size_t from, const FetchReplyMsg& m) {
    answered(from, m.stream);
    auto& slot = adoptions_[m.stream];
    if (phase_ != Phase::adopting || !slot || slot->step != Adoption::Step::fetch ||
        world_.index_of(slot->choice.source) != from) {
        return;
    }
    const Copy& own = node_.head(m.stream);
    if (m.prev_seq != own.last_seq()) return;  // an answer to an earlier request
    if (!m.ok || m.entries.empty() || m.prev_hash != own.last_hash() ||
        !chains(m.prev_hash, m.entries)) {
        return restart_completion(fmt::format("{}'s copy of {} does not continue this one",
                                              slot->choice.source.value(), stream_name(m.stream)));
    }
    if (slot->writing) return;  // a duplicate answer
    std::vector<Entry> entries = m.entries;
    const std::uint64_t room = slot->choice.target.seq.value() - own.last_seq().value();
    if (entries.size() > room) entries.resize(room);
    const std::uint64_t generation = generation_;
    const std::size_t s = m.stream;
    slot->writing = true;
    // The copy takes the source's confirmed epoch once it holds all of the
    // source's copy, not before: a part of it may lack that epoch's history
    // (the daemon's store records it with the first fetched event).
    const bool whole = own.last_seq().value() + entries.size() >= slot->choice.target.seq.value();
    node_.append(s, std::move(entries), whole ? slot->choice.target.confirmed : Epoch{0},
                 node_.guarded([this, generation, s] {
                     if (generation != generation_) return;
                     adoptions_[s]->writing = false;
                     fetch(s);
                 }));
}

void Master::confirm_own(std::size_t stream) {
    Adoption& a = *adoptions_[stream];
    a.step = Adoption::Step::confirm;
    if (node_.head(stream).last_hash() != hash_of(a.choice.target.hash)) {
        return restart_completion(fmt::format("{}: the adopted copy changed", stream_name(stream)));
    }
    const std::uint64_t generation = generation_;
    node_.confirm(stream, epoch_, node_.guarded([this, generation, stream] {
        if (generation == generation_) adopted(stream);
    }));
}

void Master::adopted(std::size_t stream) {
    SPIRIT_ASSERT(adoptions_[stream] && adoptions_[stream]->step == Adoption::Step::confirm);
    const topology::Choice choice = adoptions_[stream]->choice;
    adoptions_[stream].reset();
    if (stream == imm && choice.target.seq > Seq{0}) awaiting_confirmation_[stream] = true;
    trace(fmt::format("{}: complete at seq {} ({})", stream_name(stream), choice.target.seq.value(),
                      short_hash(hash_of(choice.target.hash))));
    node_.note(core::topo::StreamCompleted{stream_name(stream), epoch_, choice.target.seq});
    world_.report(world_.checkers().completed(node_, stream));
    if (std::none_of(adoptions_.begin(), adoptions_.end(), [](const auto& a) { return a; })) {
        finish_completion();
    }
}

void Master::finish_completion() {
    phase_ = Phase::serving;
    completion_.reset();
    trace("every stream is complete; serving");
    for (std::size_t s = 0; s < stream_count; ++s) {
        history_[s] = node_.head(s).last_seq();
        tracker_.own(stream_name(s), chain_of(node_.head(s)), node_.durable(s).confirmed);
    }
    for (std::size_t peer : peers_) {
        if (reports_.contains(peer)) verify_peer(peer);
    }
    for (std::size_t s = 0; s < stream_count; ++s) copies_changed(s);
}

void Master::retry_adoptions() {
    for (std::size_t s = 0; s < stream_count; ++s) {
        auto& a = adoptions_[s];
        if (!a || a->writing || ticks_ - a->asked_at < adoption_retry_ticks) continue;
        if (a->step != Adoption::Step::probe && a->step != Adoption::Step::search &&
            a->step != Adoption::Step::fetch) {
            continue;  // waiting for its own disk
        }
        if (++a->retries > adoption_retries_max) {
            const std::size_t source = world_.index_of(a->choice.source);
            reports_.erase(source);
            return restart_completion(fmt::format("{} does not answer", a->choice.source.value()));
        }
        if (a->step == Adoption::Step::fetch) {
            fetch(s);
        } else if (a->step == Adoption::Step::probe) {
            probe_source(s, {node_.head(s).last_seq()});
        } else {
            probe_source(s, a->search->probes());
        }
    }
}

// ---- Serving -------------------------------------------------------------

void Master::receive(std::size_t from, const PositionsMsg& m) {
    for (std::size_t s = 0; s < stream_count; ++s) answered(from, s);
    reports_.insert_or_assign(from, m);
    if (phase_ == Phase::gathering) {
        report(from, m);
        return check_gathered();
    }
    if (phase_ == Phase::serving) verify_peer(from);
}

void Master::verify_peer(std::size_t peer) {
    const PositionsMsg& m = reports_.at(peer);
    tracker_.link_down(id_of(world_, peer));  // what was in flight belongs to the old report
    for (std::size_t s = 0; s < stream_count; ++s) {
        check_claim(peer, s, m.at[s], topology::Tracker::Claim::durable);
    }
    pump(peer);
}

void Master::check_claim(std::size_t peer, std::size_t stream, const topology::Position& claim,
                         topology::Tracker::Claim kind) {
    const std::string name = stream_name(stream);
    const core::NodeId id = id_of(world_, peer);
    const topology::Verdict v =
        tracker_.claim(id, name, claim, digest_at(node_.head(stream), claim.seq), kind);
    if (v == topology::Verdict::diverged) {
        trace(fmt::format("{}: {}'s copy (seq {}) differs; searching for the last common seq", name,
                          id.value(), claim.seq.value()));
        node_.send(peer, ProbeMsg{epoch_, stream, tracker_.probes(id, name)});
    } else if (v == topology::Verdict::cannot_continue) {
        trace(fmt::format("{}: {}: {}", name, id.value(), tracker_.copy(id, name)->why));
    }
    copies_changed(stream);
}

void Master::receive(std::size_t from, const ProbeReplyMsg& m) {
    answered(from, m.stream);
    if (phase_ == Phase::adopting) {
        auto& a = adoptions_[m.stream];
        if (a && world_.index_of(a->choice.source) == from &&
            (a->step == Adoption::Step::probe || a->step == Adoption::Step::search)) {
            adoption_probed(m.stream, m);
        }
        return;
    }
    if (phase_ == Phase::serving) tracker_probed(from, m);
}

void Master::tracker_probed(std::size_t peer, const ProbeReplyMsg& m) {
    const std::string name = stream_name(m.stream);
    const core::NodeId id = id_of(world_, peer);
    const Copy& own = node_.head(m.stream);
    const topology::ReplicaCopy* copy = tracker_.copy(id, name);
    if (copy == nullptr || copy->claim.seq != m.at.seq || copy->claim.hash != m.at.hash) {
        return;  // about a copy other than the one searched
    }
    std::vector<std::pair<Seq, bool>> same;
    for (const auto& [seq, theirs] : m.hashes) {
        const auto ours = own.hash_at(seq);
        same.emplace_back(seq, theirs && ours && *theirs == *ours);
    }
    if (auto common = tracker_.probed(id, name, same)) {
        trace(fmt::format("{}: {}'s copy agrees up to seq {}; it cuts the rest", name, id.value(),
                          common->value()));
        node_.send(peer, TruncateMsg{epoch_, m.stream, *common, *own.hash_at(*common), m.at,
                                     history_[m.stream]});
        return;
    }
    if (auto probes = tracker_.probes(id, name); !probes.empty()) {
        node_.send(peer, ProbeMsg{epoch_, m.stream, std::move(probes)});
    }
}

void Master::receive(std::size_t from, const AckMsg& m) {
    answered(from, m.stream);
    if (phase_ != Phase::serving) return;
    if (tracker_.ack(id_of(world_, from), stream_name(m.stream), m.at)) {
        copies_changed(m.stream);
    } else {
        // Not the end of a frame in flight (a cut, a resent frame): a claim.
        check_claim(from, m.stream, m.at, topology::Tracker::Claim::durable);
    }
    pump(from);
}

void Master::receive(std::size_t from, const RefusedMsg& m) {
    answered(from, m.stream);
    if (phase_ != Phase::serving) return;
    check_claim(from, m.stream, topology::Position{epoch_, m.resume_seq, digest_of(m.resume_hash)},
                topology::Tracker::Claim::resume);
    pump(from);
}

void Master::pump(std::size_t peer) {
    if (phase_ != Phase::serving) return;
    const core::NodeId id = id_of(world_, peer);
    for (int round = 0; round < 64; ++round) {
        bool sent = false;
        for (std::size_t s = 0; s < stream_count; ++s) {
            const std::string name = stream_name(s);
            const auto range = tracker_.next_send(id, name);
            if (!range) continue;
            const Copy& own = node_.head(s);
            ReplicateMsg m;
            m.epoch = epoch_;
            m.stream = s;
            m.prev_seq = range->from.prev();
            m.prev_hash = hash_of(range->prev_hash);
            m.visible = visible_[s];
            m.history = history_[s];
            for (Seq q = range->from; q <= range->to && m.entries.size() < replicate_entries_max;
                 q = q.next()) {
                m.entries.push_back(own.at(q));
            }
            const Seq last{m.prev_seq.value() + m.entries.size()};
            const std::uint64_t last_hash = m.entries.empty() ? m.prev_hash : m.entries.back().hash;
            const std::uint64_t bytes = frame_bytes + entry_bytes * m.entries.size();
            node_.send(peer, std::move(m));
            tracker_.sent(id, name, last, digest_of(last_hash), bytes);
            sent = true;
        }
        if (!sent) return;
    }
}

bool Master::writable(std::size_t stream) const {
    return phase_ == Phase::serving && !awaiting_confirmation_[stream];
}

bool Master::publish(std::size_t stream, std::uint64_t id) {
    if (!writable(stream)) return false;
    if (auto at = node_.head(stream).find(id)) {
        // An idempotent retry: acked at its first seq, once that is settled.
        await(stream, *at, id);
        return true;
    }
    const Copy& own = node_.head(stream);
    const Entry e{epoch_, id, chain_hash(own.last_hash(), epoch_, id)};
    const std::uint64_t generation = generation_;
    node_.append(stream, {e}, epoch_, node_.guarded([this, generation, stream] {
        if (generation == generation_) copies_changed(stream);
    }));
    own_changed(stream);
    await(stream, node_.head(stream).last_seq(), id);
    return true;
}

void Master::own_changed(std::size_t stream) {
    // Sealed events go to the slaves at once, in parallel with this write.
    tracker_.own(stream_name(stream), chain_of(node_.head(stream)), epoch_);
    for (std::size_t peer : peers_) pump(peer);
}

Seq Master::settled(std::size_t stream) const {
    const Seq own = node_.durable(stream).last_seq();
    if (stream == ev) return own;
    // Only verified durable copies count; this one once it is durable.
    std::vector<Seq> positions{own};
    for (std::size_t peer : peers_) {
        const auto* c = tracker_.copy(world_.node(peer).id(), stream_name(stream));
        positions.push_back(c != nullptr ? c->matched : Seq{0});
    }
    return topology::watermark(positions, acks_required(stream));
}

void Master::copies_changed(std::size_t stream) {
    if (phase_ != Phase::serving) return;
    const Seq settled_seq = settled(stream);
    auto& list = awaiters_[stream];
    while (!list.empty() && list.begin()->first <= settled_seq) {
        auto node = list.extract(list.begin());
        ack(stream, node.key(), node.mapped().id);
    }
    if (awaiting_confirmation_[stream] &&
        tracker_.confirmed_copies(stream_name(stream)) >= acks_required(stream)) {
        awaiting_confirmation_[stream] = false;
        trace(fmt::format("{}: {} copies confirmed epoch {}; takes writes", stream_name(stream),
                          acks_required(stream), epoch_.value()));
    }
    // Until `acks` copies confirmed this epoch, the adopted history is not
    // settled: a later completion may rank a copy without it higher
    // (soak seed 2089251384911072028), so nothing more is shown.
    if (awaiting_confirmation_[stream]) return;
    if (settled_seq > visible_[stream]) {
        visible_[stream] = settled_seq;
        for (std::size_t peer : peers_) {
            const auto* c = tracker_.copy(world_.node(peer).id(), stream_name(stream));
            if (c != nullptr && c->state == topology::CopyState::replicating) {
                node_.send(peer, VisibleMsg{epoch_, stream, settled_seq});
            }
        }
    }
    node_.expose(stream, visible_[stream]);
}

void Master::await(std::size_t stream, Seq seq, std::uint64_t id) {
    if (settled(stream) >= seq) return ack(stream, seq, id);
    awaiters_[stream].emplace(seq, Awaiter{id, ticks_ + ack_timeout_ticks});
}

void Master::ack(std::size_t stream, Seq seq, std::uint64_t id) {
    const Copy& own = node_.head(stream);
    SPIRIT_ASSERT(seq <= own.last_seq());
    world_.record_ack(
        AckRecord{stream, seq, id, own.at(seq).hash, epoch_, world_.now(), node_.index()});
}

void Master::tick() {
    ++ticks_;
    if (phase_ == Phase::gathering && completion_) {
        completion_->tick();
        std::set<core::NodeId> reachable;
        for (std::size_t peer : peers_) {
            if (node_.reachable(peer)) reachable.insert(world_.node(peer).id());
        }
        completion_->set_reachable(std::move(reachable));
        check_gathered();
    }
    if (phase_ == Phase::adopting) retry_adoptions();
    for (std::size_t peer : peers_) {
        if (needs_answer(peer)) solicit(peer);
    }
    expire();
}

void Master::answered(std::size_t peer, std::size_t stream) {
    last_answer_[{peer, stream}] = ticks_;
}

// Whether a stream of `peer` waits for an answer that has not come for a
// while: the network may have lost the request or the answer.
bool Master::needs_answer(std::size_t peer) const {
    if (auto it = last_solicit_.find(peer);
        it != last_solicit_.end() && ticks_ - it->second < solicit_ticks) {
        return false;
    }
    auto quiet = [&](std::size_t s) {
        auto it = last_answer_.find({peer, s});
        return it == last_answer_.end() || ticks_ - it->second >= solicit_ticks;
    };
    if (phase_ == Phase::gathering) return !reports_.contains(peer) && quiet(imm) && quiet(ev);
    if (phase_ != Phase::serving) return false;
    if (!reports_.contains(peer)) return quiet(imm) && quiet(ev);
    for (std::size_t s = 0; s < stream_count; ++s) {
        const auto* c = tracker_.copy(world_.node(peer).id(), stream_name(s));
        const bool waits = c == nullptr || c->state != topology::CopyState::replicating ||
                           !c->in_flight.empty() || c->confirmed < epoch_;
        if (waits && quiet(s)) return true;
    }
    return false;
}

void Master::solicit(std::size_t peer) {
    last_solicit_[peer] = ticks_;
    node_.send(peer, SolicitMsg{epoch_});
}

void Master::expire() {
    for (auto& list : awaiters_) {
        for (auto it = list.begin(); it != list.end();) {
            it = it->second.deadline <= ticks_ ? list.erase(it) : std::next(it);
        }
    }
}

std::string Master::state() const {
    switch (phase_) {
        case Phase::gathering:
            return "gathering: " + (completion_ ? completion_->waiting_for() : std::string());
        case Phase::adopting:
            return "adopting";
        case Phase::serving:
            return awaiting_confirmation_[imm] ? "serving; imm waits for confirmations" : "serving";
    }
    return "?";
}

}  // namespace spirit::sim
