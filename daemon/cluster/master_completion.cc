// Master, completion: gathering every copy's position, adopting the highest
// copy of each stream (probe, search, cut, fetch, confirm), then serving.
#include <fmt/format.h>

#include "core/assert.h"
#include "core/hash_chain.h"
#include "core/stream_name.h"
#include "daemon/cluster/master.h"
#include "daemon/cluster/peer_links.h"
#include "daemon/log.h"
#include "daemon/visibility.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

topology::CopyReport report_of(const proto::CopyPosition& c) {
    return topology::CopyReport{c.stream, topology::Position{c.confirmed, c.last_seq, c.last_hash},
                                c.policy};
}

}  // namespace

void Master::start() {
    started_ms_ = c_.loop.now_ms();
    spdlog::info("master of epoch {}: completing every stream before it takes writes",
                 epoch_.value());
    restart_completion("");
}

void Master::restart_completion(std::string_view why) {
    if (!why.empty()) spdlog::warn("epoch {}: completing again: {}", epoch_.value(), why);
    ++completion_generation_;
    adoptions_.clear();
    phase_ = Phase::gathering;
    const std::uint64_t grace = std::max<std::uint64_t>(
        1, c_.config.cluster.peer_timeout_ms / c_.config.cluster.heartbeat_ms);
    completion_.emplace(
        topology::Completion::Options{
            .self = c_.self, .replicas = group_size(), .grace_ticks = grace},
        epoch_);
    report_own();
    for (const auto& [peer, report] : reports_) {
        if (!report.complete) continue;
        std::vector<topology::CopyReport> copies;
        copies.reserve(report.copies.size());
        for (const auto& c : report.copies) copies.push_back(report_of(c));
        completion_->report(
            peer,
            report.fresh ? topology::CopyFreshness::fresh : topology::CopyFreshness::caught_up,
            std::move(copies));
    }
    const auto linked = linked_replicas();
    completion_->set_reachable({linked.begin(), linked.end()});
    check_gathered();
}

void Master::report_own() {
    auto streams = c_.store.list_streams();
    if (!streams) {
        spdlog::error("epoch {}: reading this node's copies: {}", epoch_.value(),
                      streams.error().message());
        return;  // not reported: the gather waits; tick() tries again
    }
    // `$topology` is each node's own: never completed or replicated.
    std::erase_if(*streams, [](const auto& s) { return core::is_system_stream(s.name); });
    std::vector<topology::CopyReport> copies;
    copies.reserve(streams->size());
    for (const storage::StreamInfo& info : *streams) {
        copies.push_back(topology::CopyReport{
            info.name, topology::Position{info.confirmed_epoch, info.last_seq, info.last_hash},
            info.policy});
        policies_.insert_or_assign(info.name, info.policy);
    }
    completion_->report(c_.self, c_.freshness, std::move(copies));
}

void Master::topology_advanced() {
    check_gathered();
}

void Master::check_gathered() {
    if (phase_ != Phase::gathering || !completion_ || !completion_->gathered()) return;
    if (c_.topology_current && !c_.topology_current()) {
        spdlog::debug("epoch {}: copies gathered; waiting for $topology from a majority",
                      epoch_.value());
        return;
    }
    auto choices = completion_->choices();
    // A stream `$topology` says was deleted, with no copy newer than the
    // delete, is not completed: its copies go as each node learns of it.
    std::erase_if(choices, [&](const topology::Choice& choice) {
        const auto state = c_.stream_state ? c_.stream_state(choice.stream) : std::nullopt;
        if (!state || state->exists || choice.target.confirmed > state->epoch) return false;
        spdlog::info("stream {}: deleted in epoch {}; not completed", choice.stream,
                     state->epoch.value());
        return true;
    });
    phase_ = Phase::adopting;
    adoption_moved_ms_ = c_.loop.now_ms();
    spdlog::info("epoch {}: heard enough copies; completing {} streams", epoch_.value(),
                 choices.size());
    for (const topology::Choice& choice : choices) adopt(choice);
    if (adoptions_.empty() && phase_ == Phase::adopting) finish_completion();
}

void Master::adopt(const topology::Choice& choice) {
    Adoption a;
    a.choice = choice;
    auto info = c_.store.stream_info(choice.stream);
    if (!info) {
        failed_[choice.stream] = info.error().message();
        return;
    }
    if (*info) {
        a.own = topology::Position{(*info)->confirmed_epoch, (*info)->last_seq, (*info)->last_hash};
        a.own_first = (*info)->first_seq;
        policies_.insert_or_assign(choice.stream, (*info)->policy);
    } else {
        a.own = topology::Position{core::Epoch{0}, core::Seq{0}, core::genesis_hash};
        policies_.insert_or_assign(choice.stream, choice.policy);
    }
    const std::string stream = choice.stream;
    const bool has_it = a.own.seq == choice.target.seq && a.own.hash == choice.target.hash;
    adoptions_.insert_or_assign(stream, std::move(a));
    Adoption& adoption = adoptions_.at(stream);
    if (choice.source == c_.self || has_it) {
        adoption.step = Adoption::Step::confirm;
        return confirm_own(stream);
    }
    spdlog::info(
        "stream {}: adopting the copy of {} (confirmed epoch {}, seq {}); this copy "
        "ends at seq {}",
        stream, choice.source.value(), choice.target.confirmed.value(), choice.target.seq.value(),
        adoption.own.seq.value());
    if (adoption.own.seq == core::Seq{0}) {
        adoption.step = Adoption::Step::fetch;  // the genesis agrees everywhere
        return fetch(adoption);
    }
    adoption.step = Adoption::Step::probe;
    probe_source(adoption, {adoption.own.seq});
}

void Master::probe_source(Adoption& adoption, std::vector<core::Seq> seqs) {
    if (!c_.links.send(adoption.choice.source,
                       proto::Probe{epoch_, adoption.choice.stream, std::move(seqs)})) {
        restart_completion(fmt::format("the link to {} closed", adoption.choice.source.value()));
    }
}

void Master::adoption_probed(Adoption& adoption, const proto::ProbeReply& reply) {
    std::vector<core::Seq> seqs;
    for (const auto& h : reply.hashes) seqs.push_back(h.seq);
    auto here = c_.store.hashes_at(adoption.choice.stream, seqs);
    if (here && here->size() != seqs.size()) {
        here = core::Unexpected{
            core::Error{core::make_error_code(errc::internal), "fewer hashes than seqs were read"}};
    }
    if (!here) {
        // The link's end restarts the completion (link_down).
        return read_failed(adoption.choice.source, adoption.choice.stream,
                           "hashes to compare with the copy being adopted", here.error());
    }
    if (adoption.step == Adoption::Step::probe) {
        const bool same = !reply.hashes.empty() && reply.hashes[0].hash &&
                          *reply.hashes[0].hash == adoption.own.hash;
        if (same) {
            adoption.step = Adoption::Step::fetch;
            return fetch(adoption);
        }
        const core::Seq floor = adoption.own_first.prev();
        if (floor >= adoption.own.seq) {
            failed_[adoption.choice.stream] = fmt::format(
                "this copy and {}'s share no seq this copy keeps", adoption.choice.source.value());
            adoptions_.erase(adoption.choice.stream);
            if (adoptions_.empty()) finish_completion();
            return;
        }
        adoption.step = Adoption::Step::search;
        adoption.search.emplace(floor, adoption.own.seq);
    } else {
        for (std::size_t i = 0; i < reply.hashes.size(); ++i) {
            const auto& theirs = reply.hashes[i].hash;
            const auto& ours = (*here)[i];
            adoption.search->answer(reply.hashes[i].seq, theirs && ours && *theirs == *ours);
        }
    }
    if (adoption.search->done()) return cut_own(adoption, adoption.search->common());
    if (adoption.search->unrepairable()) {
        failed_[adoption.choice.stream] = "this copy and the highest share no seq";
        adoptions_.erase(adoption.choice.stream);
        if (adoptions_.empty()) finish_completion();
        return;
    }
    probe_source(adoption, adoption.search->probes());
}

void Master::cut_own(Adoption& adoption, core::Seq common) {
    adoption.step = Adoption::Step::cut;
    const std::string stream = adoption.choice.stream;
    spdlog::warn(
        "stream {}: this copy differs from {}'s after seq {}; its events after it go to "
        "quarantine",
        stream, adoption.choice.source.value(), common.value());
    std::weak_ptr<bool> alive = alive_;
    const std::uint64_t generation = completion_generation_;
    const std::uint64_t removed = adoption.own.seq.value() - common.value();
    auto queued = c_.store.truncate_after(stream, common, [=, this](core::Result<void> r) {
        if (alive.expired() || !*alive.lock() || generation != completion_generation_) return;
        adoption_moved_ms_ = c_.loop.now_ms();
        if (!r) return restart_completion(r.error().message());
        c_.visibility.cut(stream, common);
        c_.record(core::topo::SuffixQuarantined{stream, epoch_, common, removed});
        auto it = adoptions_.find(stream);
        if (it == adoptions_.end()) return;
        auto hashes = c_.store.hashes_at(stream, std::vector<core::Seq>{common});
        if (!hashes || hashes->empty() || !(*hashes)[0]) {
            return restart_completion("reading the hash at the cut");
        }
        it->second.own = topology::Position{it->second.own.confirmed, common, *(*hashes)[0]};
        it->second.step = Adoption::Step::fetch;
        fetch(it->second);
    });
    if (!queued) restart_completion(queued.error().message());
}

void Master::fetch(Adoption& adoption) {
    adoption.step = Adoption::Step::fetch;
    if (adoption.own.seq >= adoption.choice.target.seq) {
        adoption.step = Adoption::Step::confirm;
        return confirm_own(adoption.choice.stream);
    }
    const proto::Fetch request{epoch_, adoption.choice.stream, adoption.own.seq.next(),
                               adoption.choice.target.seq};
    if (!c_.links.send(adoption.choice.source, request)) {
        restart_completion(fmt::format("the link to {} closed", adoption.choice.source.value()));
    }
}

void Master::on_fetch_reply(const core::NodeId& peer, const proto::FetchReply& reply) {
    if (phase_ != Phase::adopting) return;
    auto it = adoptions_.find(reply.stream);
    if (it == adoptions_.end() || it->second.choice.source != peer ||
        it->second.step != Adoption::Step::fetch) {
        return;
    }
    Adoption& a = it->second;
    adoption_moved_ms_ = c_.loop.now_ms();
    if (reply.code != 0 || reply.envelopes.empty()) {
        return restart_completion(fmt::format("fetching stream {} from {}: {}", reply.stream,
                                              peer.value(), reply.message));
    }
    std::weak_ptr<bool> alive = alive_;
    const std::uint64_t generation = completion_generation_;
    const std::string stream = reply.stream;
    // This copy takes the new epoch as confirmed only once it holds all of
    // the adopted copy (a part of it may lack an acknowledged write).
    auto queued = c_.store.append_replicated(
        {.stream = stream,
         .policy = a.choice.policy,
         .epoch = epoch_,
         .prev_seq = reply.prev_seq,
         .prev_hash = reply.prev_hash,
         .envelopes = reply.envelopes,
         .history = a.choice.target.seq},
        [=, this](core::Result<storage::AppendResult> r) {
            if (alive.expired() || !*alive.lock() || generation != completion_generation_) return;
            adoption_moved_ms_ = c_.loop.now_ms();
            if (!r) return restart_completion(r.error().message());
            auto adoption = adoptions_.find(stream);
            if (adoption == adoptions_.end()) return;
            adoption->second.own.seq = r->last_seq;
            adoption->second.own.hash = r->last_hash;
            fetch(adoption->second);
        });
    if (!queued) {
        restart_completion(fmt::format("the copy of {} sent by {} does not continue this one: {}",
                                       stream, peer.value(), queued.error().message()));
    }
}

void Master::confirm_own(const std::string& stream) {
    auto it = adoptions_.find(stream);
    SPIRIT_ASSERT(it != adoptions_.end());
    const topology::Choice& choice = it->second.choice;
    std::weak_ptr<bool> alive = alive_;
    const std::uint64_t generation = completion_generation_;
    auto queued = c_.store.confirm_epoch(
        {.stream = stream,
         .policy = policy_of(stream),
         .epoch = epoch_,
         .seq = choice.target.seq,
         .hash = choice.target.hash},
        [=, this](core::Result<void> r) {
            if (alive.expired() || !*alive.lock() || generation != completion_generation_) return;
            adoption_moved_ms_ = c_.loop.now_ms();
            if (!r) return restart_completion(r.error().message());
            adopted(stream);
        });
    if (!queued) restart_completion(queued.error().message());
}

void Master::adopted(const std::string& stream) {
    auto it = adoptions_.find(stream);
    if (it == adoptions_.end()) return;
    history_.insert_or_assign(stream, it->second.choice.target.seq);
    const auto state = c_.stream_state ? c_.stream_state(stream) : std::nullopt;
    if (it->second.choice.source != c_.self || (state && !state->exists)) {
        // Completed from another copy: worth a line in `$topology`. Or a copy
        // newer than a delete `$topology` holds: the stream exists in this epoch.
        c_.record(core::topo::StreamCompleted{stream, epoch_, it->second.choice.target.seq});
    }
    if (it->second.choice.target.seq > core::Seq{0} &&
        policy_of(stream).redundancy == core::Redundancy::immediate) {
        // Its history must be on `acks` copies of this epoch before new writes.
        awaiting_confirmation_.insert(stream);
    }
    adoptions_.erase(it);
    load_own(stream);
    if (adoptions_.empty() && phase_ == Phase::adopting) finish_completion();
}

void Master::finish_completion() {
    // A retry of an event a previous master stored must get its original
    // seq: this copy learns those ids from its events now, before any write.
    const std::uint64_t rebuild_started_ms = c_.loop.now_ms();
    if (auto rebuilt = c_.store.rebuild_id_window(); !rebuilt) {
        return restart_completion("rebuilding the idempotency window: " +
                                  rebuilt.error().message());
    }
    spdlog::info("epoch {}: idempotency window rebuilt from the events in {} ms", epoch_.value(),
                 c_.loop.now_ms() - rebuild_started_ms);
    phase_ = Phase::serving;
    completion_.reset();
    spdlog::info("epoch {}: every stream is complete after {} ms; taking writes", epoch_.value(),
                 c_.loop.now_ms() - started_ms_);
    for (const auto& [stream, why] : failed_) {
        spdlog::error("stream {}: could not be completed in epoch {}: {}", stream, epoch_.value(),
                      why);
    }
    if (c_.freshness == topology::CopyFreshness::fresh) {
        c_.freshness = topology::CopyFreshness::caught_up;
        c_.caught_up();
    }
    if (auto streams = c_.store.list_streams()) {
        for (const auto& info : *streams) {
            if (!core::is_system_stream(info.name)) load_own(info.name);
        }
    }
    for (const auto& [peer, report] : reports_) {
        if (report.complete && c_.links.linked(peer)) verify_peer(peer);
    }
    std::vector<std::string> waiting;
    for (const auto& [stream, w] : waiters_) waiting.push_back(stream);
    for (const auto& stream : waiting) resolve_waiters(stream);
}

}  // namespace spirit::daemon
