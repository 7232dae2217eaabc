// Master, serving: verifying every replica's copy against this chain,
// repairing copies that diverged, pushing, counting copies for immediate
// acks and for what consumers may see. Completion is in master_completion.cc.
#include "daemon/cluster/master.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/hash_chain.h"
#include "core/stream_name.h"
#include "daemon/cluster/peer_links.h"
#include "daemon/log.h"
#include "daemon/visibility.h"
#include "topology/quorum.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

// One Replicate frame: at most this many events and bytes.
constexpr std::size_t replicate_events_max = 1024;
constexpr std::size_t replicate_bytes_max = 1u << 20;
// Frames one pump sends to a replica before yielding to other work.
constexpr int frames_per_pump = 16;
// Built frames kept for replicas at the same position.
constexpr std::uint64_t frames_bytes_max = 8u << 20;
// A replica refusing the same seq this often stops that stream, until it
// starts over cluster.reconnect_ms_max later (or on a new link).
constexpr int refusals_max = 3;

core::Error error(errc code, std::string detail) {
    return core::Error{core::make_error_code(code), std::move(detail)};
}

// The last seq of a batch sealed here.
core::Seq last_of(const storage::Sealed& batch) {
    return core::Seq{batch.first_seq.value() + batch.ends.size() - 1};
}

// "seq 7" or "seqs 7 to 103 (15 seqs)", for logs.
std::string seqs_text(const std::vector<core::Seq>& seqs) {
    if (seqs.size() == 1) return fmt::format("seq {}", seqs[0].value());
    if (seqs.empty()) return "no seqs";
    const auto [low, high] = std::minmax_element(seqs.begin(), seqs.end());
    return fmt::format("seqs {} to {} ({} seqs)", low->value(), high->value(), seqs.size());
}

std::string names(const std::vector<core::NodeId>& nodes) {
    std::string out;
    for (const auto& n : nodes) out += (out.empty() ? "" : ", ") + n.value();
    return out;
}

// Events of this master's copy that a replica's copy (nullptr: never
// reported) is not verified to hold.
std::uint64_t lag_of(const topology::Chain& chain, const topology::ReplicaCopy* copy) {
    const core::Seq matched = copy ? copy->matched : core::Seq{0};
    return chain.last_seq > matched ? chain.last_seq.value() - matched.value() : 0;
}

}  // namespace

Master::Master(Context context, core::Epoch epoch)
    : c_(std::move(context)),
      epoch_(epoch),
      tracker_(epoch, c_.replicas, c_.config.cluster.replication_window_bytes) {}

Master::~Master() {
    *alive_ = false;
}

void Master::abandon(const core::Error& why) {
    *alive_ = false;
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& [stream, list] : waiters) {
        for (Waiter& w : list) w.ready(core::Unexpected{why});
    }
    auto awaiters = std::move(awaiters_);
    awaiters_.clear();
    for (auto& [stream, list] : awaiters) {
        for (auto& [seq, a] : list) a.done(core::Unexpected{why});
    }
}

void Master::forget(const std::string& stream, const core::Error& why) {
    tracker_.forget(stream);
    policies_.erase(stream);
    awaiting_confirmation_.erase(stream);
    history_.erase(stream);
    declared_.erase(stream);
    sealed_.erase(stream);
    drop_frame(stream);
    std::erase_if(refusals_, [&](const auto& r) { return r.first.second == stream; });
    auto waiters = std::move(waiters_[stream]);
    waiters_.erase(stream);
    for (Waiter& w : waiters) w.ready(core::Unexpected{why});
    auto awaiters = std::move(awaiters_[stream]);
    awaiters_.erase(stream);
    for (auto& [seq, a] : awaiters) a.done(core::Unexpected{why});
}

void Master::policy_changed(const std::string& stream, const core::StreamPolicy& policy) {
    policies_.insert_or_assign(stream, policy);
    drop_frame(stream);
}

void Master::drop_frame(const std::string& stream) {
    if (auto f = frames_.find(stream); f != frames_.end()) {
        frames_bytes_ -= f->second.bytes.size();
        frames_.erase(f);
    }
}

const core::StreamPolicy& Master::policy_of(const std::string& stream) {
    auto it = policies_.find(stream);
    if (it != policies_.end()) return it->second;
    // This copy's record, else what `$topology` says, else the config's.
    core::StreamPolicy policy = c_.config.policy_for(stream);
    if (auto state = c_.stream_state ? c_.stream_state(stream) : std::nullopt;
        state && state->exists && state->policy) {
        policy = *state->policy;
    }
    if (auto info = c_.store.stream_info(stream); info && *info) policy = (*info)->policy;
    return policies_.emplace(stream, policy).first->second;
}

core::Seq Master::history_of(const std::string& stream) const {
    auto it = history_.find(stream);
    return it == history_.end() ? core::Seq{0} : it->second;
}

core::Result<std::optional<core::Digest>> Master::hash_here(const std::string& stream,
                                                            core::Seq seq) const {
    if (auto it = sealed_.find(stream); it != sealed_.end()) {
        for (const storage::Sealed& batch : it->second) {
            const std::uint64_t i = seq.value() - batch.first_seq.value();
            if (seq >= batch.first_seq && i < batch.hashes.size()) return batch.hashes[i];
        }
    }
    auto hashes = c_.store.hashes_at(stream, std::vector<core::Seq>{seq});
    if (!hashes) return core::Unexpected{hashes.error()};
    if (hashes->size() != 1) {
        return core::Unexpected{
            error(errc::internal,
                  fmt::format("stream {}: no answer for the hash at seq {}", stream, seq.value()))};
    }
    return (*hashes)[0];
}

void Master::read_failed(const core::NodeId& peer, const std::string& stream, std::string_view what,
                         const core::Error& why) {
    // Guessing would be worse: a claim taken for diverged, or a search that
    // ends too low, quarantines events both copies hold. Both sides start
    // over on a new link instead, and the error stays in the log.
    spdlog::error(
        "stream {}: reading this master's copy ({}) failed: {}; closing the link to {} "
        "so that both sides start over",
        stream, what, why.message(), peer.value());
    c_.links.close(peer, why);
}

void Master::load_own(const std::string& stream) {
    auto info = c_.store.stream_info(stream);
    if (!info || !*info) return;
    const storage::StreamInfo& i = **info;
    policies_.insert_or_assign(stream, i.policy);
    tracker_.own(stream, topology::Chain{i.first_seq, i.base_hash, i.last_seq, i.last_hash},
                 i.confirmed_epoch);
}

std::vector<core::NodeId> Master::linked_replicas() const {
    std::vector<core::NodeId> out;
    for (const core::NodeId& peer : c_.replicas) {
        if (c_.links.linked(peer)) out.push_back(peer);
    }
    return out;
}

void Master::link_up(const core::NodeId& peer) {
    (void)peer;  // the peer reports its Positions itself
    if (completion_) {
        const auto linked = linked_replicas();
        completion_->set_reachable({linked.begin(), linked.end()});
    }
}

void Master::link_down(const core::NodeId& peer) {
    tracker_.link_down(peer);
    reports_.erase(peer);
    for (auto it = refusals_.begin(); it != refusals_.end();) {
        it = it->first.first == peer ? refusals_.erase(it) : std::next(it);
    }
    if (completion_) {
        const auto linked = linked_replicas();
        completion_->set_reachable({linked.begin(), linked.end()});
    }
    if (phase_ == Phase::adopting) {
        for (const auto& [stream, a] : adoptions_) {
            if (a.choice.source == peer) {
                return restart_completion(fmt::format(
                    "the link to {}, whose copy was being adopted, closed", peer.value()));
            }
        }
    }
}

void Master::on_positions(const core::NodeId& peer, const proto::Positions& positions) {
    if (std::find(c_.replicas.begin(), c_.replicas.end(), peer) == c_.replicas.end()) return;
    PeerReport& report = reports_[peer];
    if (report.complete) report = PeerReport{};  // a new report starts over
    report.fresh = positions.fresh;
    for (const proto::CopyPosition& c : positions.streams) {
        if (!core::is_system_stream(c.stream)) report.copies.push_back(c);  // never replicated
    }
    if (positions.more) return;
    report.complete = true;
    if (phase_ == Phase::gathering) {
        std::vector<topology::CopyReport> copies;
        copies.reserve(report.copies.size());
        for (const auto& c : report.copies) {
            copies.push_back(topology::CopyReport{
                c.stream, topology::Position{c.confirmed, c.last_seq, c.last_hash}, c.policy});
        }
        completion_->report(
            peer,
            report.fresh ? topology::CopyFreshness::fresh : topology::CopyFreshness::caught_up,
            std::move(copies));
        return check_gathered();
    }
    if (phase_ == Phase::serving) verify_peer(peer);
}

void Master::verify_peer(const core::NodeId& peer) {
    auto it = reports_.find(peer);
    if (it == reports_.end() || !it->second.complete) return;
    tracker_.link_down(peer);  // whatever was in flight belongs to the old report
    std::set<std::string> reported;
    for (const proto::CopyPosition& c : it->second.copies) {
        reported.insert(c.stream);
        if (tracker_.own_chain(c.stream) == nullptr) {
            // A stream this master does not hold: a copy only that replica kept
            // (of an older epoch's master). It goes to quarantine there.
            spdlog::warn(
                "node {} holds stream {}, which the master of epoch {} does not; it "
                "will move that copy to quarantine",
                peer.value(), c.stream, epoch_.value());
            c_.links.send(
                peer, proto::Truncate{epoch_, c.stream, core::Seq{0}, core::genesis_hash, true});
            continue;
        }
        if (!check_claim(peer, c.stream, topology::Position{c.confirmed, c.last_seq, c.last_hash},
                         topology::Tracker::Claim::durable)) {
            return;  // the link is closing
        }
    }
    for (const std::string& stream : tracker_.streams()) {
        if (reported.contains(stream)) continue;
        // It holds nothing of it yet.
        if (!check_claim(peer, stream,
                         topology::Position{core::Epoch{0}, core::Seq{0}, core::genesis_hash},
                         topology::Tracker::Claim::durable)) {
            return;
        }
    }
    pump(peer);
    // A copy that needs nothing is caught up now: say so at once, so that a
    // fresh node counts in the next completion as soon as it can.
    if (caught_up(peer) && c_.announce) c_.announce(peer);
}

bool Master::check_claim(const core::NodeId& peer, const std::string& stream,
                         const topology::Position& claim, topology::Tracker::Claim kind) {
    auto here = hash_here(stream, claim.seq);
    if (!here) {
        read_failed(
            peer, stream,
            fmt::format("the hash at seq {}, to check {}'s claim", claim.seq.value(), peer.value()),
            here.error());
        return false;
    }
    verdict(peer, stream, tracker_.claim(peer, stream, claim, *here, kind));
    return true;
}

void Master::verdict(const core::NodeId& peer, const std::string& stream, topology::Verdict v) {
    switch (v) {
        case topology::Verdict::verified:
            break;
        case topology::Verdict::diverged:
            spdlog::warn(
                "node {}'s copy of stream {} (seq {}) differs from this master's; "
                "searching for the last seq they share",
                peer.value(), stream, tracker_.copy(peer, stream)->claim.seq.value());
            c_.links.send(peer, proto::Probe{epoch_, stream, tracker_.probes(peer, stream)});
            break;
        case topology::Verdict::cannot_continue:
            spdlog::error("replication of stream {} to {}: {}", stream, peer.value(),
                          tracker_.copy(peer, stream)->why);
            break;
    }
    copies_changed(stream);
}

void Master::on_probe_reply(const core::NodeId& peer, const proto::ProbeReply& reply) {
    if (phase_ == Phase::adopting) {
        auto it = adoptions_.find(reply.stream);
        if (it != adoptions_.end() && it->second.choice.source == peer &&
            (it->second.step == Adoption::Step::probe ||
             it->second.step == Adoption::Step::search)) {
            adoption_moved_ms_ = c_.loop.now_ms();
            adoption_probed(it->second, reply);
        }
        return;
    }
    if (phase_ == Phase::serving) tracker_probed(peer, reply);
}

void Master::tracker_probed(const core::NodeId& peer, const proto::ProbeReply& reply) {
    const std::string& stream = reply.stream;
    std::vector<core::Seq> seqs;
    for (const auto& h : reply.hashes) seqs.push_back(h.seq);
    auto here = c_.store.hashes_at(stream, seqs);
    if (here && here->size() != seqs.size()) {
        here = core::Unexpected{error(errc::internal, "fewer hashes than seqs were read")};
    }
    if (!here) {
        return read_failed(peer, stream,
                           "hashes to compare with " + peer.value() + "'s " + seqs_text(seqs),
                           here.error());
    }
    std::vector<std::pair<core::Seq, bool>> same;
    for (std::size_t i = 0; i < reply.hashes.size(); ++i) {
        const auto& theirs = reply.hashes[i].hash;
        const auto& ours = (*here)[i];
        same.emplace_back(reply.hashes[i].seq, theirs && ours && *theirs == *ours);
    }
    if (auto common = tracker_.probed(peer, stream, same)) {
        auto hash = hash_here(stream, *common);
        if (hash && !*hash) {
            hash = core::Unexpected{
                error(errc::not_found, fmt::format("stream {}: this copy holds no seq {} any more",
                                                   stream, common->value()))};
        }
        if (!hash) {
            return read_failed(peer, stream,
                               fmt::format("the hash at seq {}, where {}'s copy will be cut",
                                           common->value(), peer.value()),
                               hash.error());
        }
        spdlog::warn(
            "node {}'s copy of stream {} agrees with this master's up to seq {}; it cuts "
            "the rest into quarantine",
            peer.value(), stream, common->value());
        c_.links.send(peer,
                      proto::Truncate{epoch_, stream, *common, **hash, false, history_of(stream)});
        return;
    }
    if (auto probes = tracker_.probes(peer, stream); !probes.empty()) {
        c_.links.send(peer, proto::Probe{epoch_, stream, std::move(probes)});
    } else if (const auto* copy = tracker_.copy(peer, stream);
               copy && copy->state == topology::CopyState::refused) {
        spdlog::error("replication of stream {} to {}: {}", stream, peer.value(), copy->why);
    }
}

void Master::on_ack(const core::NodeId& peer, const proto::ReplicaAck& ack) {
    if (tracker_.own_chain(ack.stream) == nullptr) return;  // e.g. a copy it was told to drop
    const topology::Position position{ack.confirmed, ack.seq, ack.hash};
    if (tracker_.ack(peer, ack.stream, position)) {
        copies_changed(ack.stream);
    } else {
        // Not the end of a frame in flight (a confirmation, a cut, or a frame
        // sent before a restart): a claim like any other.
        check_claim(peer, ack.stream, position, topology::Tracker::Claim::durable);
    }
    pump(peer);
}

void Master::on_refused(const core::NodeId& peer, const proto::ReplicaRefused& r) {
    if (tracker_.own_chain(r.stream) == nullptr) return;
    Refusals& refusals = refusals_[{peer, r.stream}];
    refusals.count = refusals.seq == r.seq ? refusals.count + 1 : 1;
    refusals.seq = r.seq;
    refusals.retry_ms.reset();
    spdlog::warn("node {} refused stream {} at seq {}: {}", peer.value(), r.stream, r.seq.value(),
                 r.message);
    const auto code = static_cast<errc>(r.code);
    if (code == errc::hash_mismatch || code == errc::malformed || code == errc::corrupt) {
        // Is this master's own copy at fault? Read it with every hash checked.
        auto read = c_.store.read(
            r.stream, {.from_seq = r.seq, .events_max = 1},
            [](const core::EnvelopeView&, core::ByteView) { return storage::Visit::stop; });
        if (!read) {
            spdlog::error(
                "stream {}: this master's copy does not verify at seq {}: {}; run spirit "
                "verify",
                r.stream, r.seq.value(), read.error().message());
            return tracker_.refused(peer, r.stream,
                                    fmt::format("this master's copy does not verify at seq {}: {}",
                                                r.seq.value(), read.error().message()));
        }
    }
    if (refusals.count >= refusals_max) {
        // Not again at once, but not never: both sides may have changed
        // (retry_refused, from tick()).
        const std::uint32_t delay_ms = c_.config.cluster.reconnect_ms_max;
        refusals.retry_ms = c_.loop.now_ms() + delay_ms;
        refusals.resume = topology::Position{epoch_, r.resume_seq, r.resume_hash};
        const std::string why =
            fmt::format("refused at seq {} {} times: {}; tried again every {} ms", r.seq.value(),
                        refusals.count, r.message, delay_ms);
        spdlog::error("replication of stream {} to {} stops: {}", r.stream, peer.value(), why);
        return tracker_.refused(peer, r.stream, why);
    }
    // Start the stream over from where the replica can continue.
    check_claim(peer, r.stream, topology::Position{epoch_, r.resume_seq, r.resume_hash},
                topology::Tracker::Claim::resume);
    pump(peer);
}

void Master::retry_refused(std::uint64_t now) {
    std::vector<std::pair<core::NodeId, std::string>> due;
    for (const auto& [key, refusals] : refusals_) {
        if (refusals.retry_ms && *refusals.retry_ms <= now) due.push_back(key);
    }
    for (const auto& key : due) {
        const auto& [peer, stream] = key;
        auto it = refusals_.find(key);
        const topology::Position resume = it->second.resume;
        refusals_.erase(it);  // counted afresh
        const topology::ReplicaCopy* copy = tracker_.copy(peer, stream);
        if (phase_ != Phase::serving || !c_.links.linked(peer) || copy == nullptr ||
            copy->state != topology::CopyState::refused) {
            continue;  // started over already (a new report, a new link)
        }
        spdlog::info("replication of stream {} to {}: starting over after seq {}", stream,
                     peer.value(), resume.seq.value());
        if (check_claim(peer, stream, resume, topology::Tracker::Claim::resume)) pump(peer);
    }
}

void Master::on_writable(const core::NodeId& peer) {
    pump(peer);
}

void Master::pump(const core::NodeId& peer) {
    if (phase_ != Phase::serving || !c_.links.linked(peer)) return;
    const auto streams = tracker_.streams();
    for (int frames = 0; frames < frames_per_pump;) {
        bool sent = false;
        for (const std::string& stream : streams) {
            if (!c_.links.writable(peer)) return;
            if (pump_stream(peer, stream)) {
                sent = true;
                if (++frames >= frames_per_pump) return;
            }
        }
        if (!sent) return;
    }
}

bool Master::pump_stream(const core::NodeId& peer, const std::string& stream) {
    auto range = tracker_.next_send(peer, stream);
    if (!range) return false;
    const BuiltFrame* frame = build_frame(peer, stream, *range);
    if (frame == nullptr) return false;
    c_.links.send_frame(peer, frame->bytes);
    tracker_.sent(peer, stream, frame->last, frame->last_hash, frame->bytes.size());
    return true;
}

const Master::BuiltFrame* Master::build_frame(const core::NodeId& peer, const std::string& stream,
                                              const topology::SendRange& range) {
    const std::uint64_t room = c_.config.cluster.replication_window_bytes -
                               std::min<std::uint64_t>(c_.config.cluster.replication_window_bytes,
                                                       tracker_.bytes_in_flight(peer));
    const auto bytes_max =
        static_cast<std::size_t>(std::min<std::uint64_t>(replicate_bytes_max, room));
    // Another replica at the same position may have had this frame built.
    if (auto built = frames_.find(stream);
        range.from <= range.to && built != frames_.end() && built->second.first == range.from &&
        built->second.last <= range.to && built->second.bytes.size() <= bytes_max + 4096) {
        return &built->second;
    }
    core::Bytes out;
    proto::ReplicateFrameBuilder frame(out, epoch_, stream, policy_of(stream), range.from.prev(),
                                       range.prev_hash, history_of(stream),
                                       c_.visibility.visible(stream));
    core::Digest last_hash = range.prev_hash;
    core::Seq last = range.from.prev();
    if (range.from <= range.to) {
        std::size_t events_max = static_cast<std::size_t>(std::min<std::uint64_t>(
            replicate_events_max, range.to.value() - range.from.value() + 1));
        std::size_t bytes_left = bytes_max;
        // What this copy holds durably is read from the store; what it has
        // sealed beyond that and is committing, from memory.
        const topology::Chain* chain = tracker_.own_chain(stream);
        const core::Seq durable = chain != nullptr ? chain->last_seq : core::Seq{0};
        if (range.from <= durable) {
            // Not verified here: the replica checks every link before it
            // stores, and a rotted envelope shows there as a refusal.
            std::size_t read_bytes = 0;
            auto read = c_.store.read(stream,
                                      {.from_seq = range.from,
                                       .events_max = events_max,
                                       .bytes_max = bytes_max,
                                       .verification = storage::Verification::none},
                                      [&](const core::EnvelopeView& e, core::ByteView encoded) {
                                          frame.add(encoded);
                                          read_bytes += encoded.size();
                                          last_hash = e.hash;
                                          last = e.seq;
                                          return storage::Visit::next;
                                      });
            if (!read || read->events == 0) {
                if (!read) {
                    spdlog::error("replication of {} to {}: {}", stream, peer.value(),
                                  read.error().message());
                    tracker_.refused(peer, stream, read.error().message());
                }
                return nullptr;
            }
            events_max -= std::min<std::size_t>(events_max, read->events);
            bytes_left -= std::min(bytes_left, read_bytes);
        }
        if (last >= durable && last < range.to && events_max > 0) {
            add_sealed(frame, stream, last.next(), range.to, events_max, bytes_left, last,
                       last_hash);
        }
        if (last < range.from) return nullptr;  // sealed, but no longer here: wait for the commit
    }
    frame.finish();
    if (range.from > range.to) {
        // An align frame is for one replica only: not kept.
        align_frame_ = BuiltFrame{range.from, last, last_hash, std::move(out)};
        return &align_frame_;
    }
    if (auto old = frames_.find(stream); old != frames_.end()) {
        frames_bytes_ -= old->second.bytes.size();
    }
    if (frames_bytes_ + out.size() > frames_bytes_max) {
        frames_.clear();
        frames_bytes_ = 0;
    }
    frames_bytes_ += out.size();
    BuiltFrame& built = frames_[stream];
    built = BuiltFrame{range.from, last, last_hash, std::move(out)};
    return &built;
}

void Master::add_sealed(proto::ReplicateFrameBuilder& frame, const std::string& stream,
                        core::Seq from, core::Seq to, std::size_t events_max, std::size_t bytes_max,
                        core::Seq& last, core::Digest& last_hash) const {
    auto it = sealed_.find(stream);
    if (it == sealed_.end()) return;
    std::size_t added = 0;
    std::size_t bytes = 0;
    core::Seq seq = from;
    for (const storage::Sealed& batch : it->second) {
        if (last_of(batch) < seq) continue;
        if (batch.first_seq > seq) break;  // a gap: never sent past it
        for (std::size_t i = seq.value() - batch.first_seq.value(); i < batch.ends.size(); ++i) {
            const std::uint32_t begin = i == 0 ? 0 : batch.ends[i - 1];
            const std::size_t size = batch.ends[i] - begin;
            if (seq > to || added == events_max || (added > 0 && bytes + size > bytes_max)) return;
            frame.add(core::ByteView{batch.data.data() + begin, size});
            bytes += size;
            last = seq;
            last_hash = batch.hashes[i];
            seq = seq.next();
            ++added;
        }
    }
}

void Master::sealed(const std::string& stream, storage::Sealed sealed) {
    if (sealed.ends.empty()) return;
    auto& batches = sealed_[stream];
    const core::Seq known = batches.empty()
                                ? tracker_.sendable(stream)
                                : std::max(tracker_.sendable(stream), last_of(batches.back()));
    if (sealed.first_seq <= known) {
        own_commit_failed_ = fmt::format(
            "its own commit failed: stream {} was sealed again from seq {} after it was sent",
            stream, sealed.first_seq.value());
        spdlog::error("{}", *own_commit_failed_);
        if (batches.empty()) sealed_.erase(stream);
        return;
    }
    batches.push_back(std::move(sealed));
    extend_sendable(stream);
}

void Master::extend_sendable(const std::string& stream) {
    // Sent only on top of this copy's own chain (a stream new in this epoch
    // has one once its first commit landed), and without gaps.
    auto it = sealed_.find(stream);
    if (it == sealed_.end() || tracker_.own_chain(stream) == nullptr) return;
    const core::Seq before = tracker_.sendable(stream);
    core::Seq end = before;
    for (const storage::Sealed& batch : it->second) {
        if (batch.first_seq > end.next()) break;
        end = std::max(end, last_of(batch));
    }
    if (end == before) return;
    tracker_.sealed(stream, end);
    for (const core::NodeId& peer : c_.replicas) {
        if (c_.links.writable(peer)) pump_stream(peer, stream);
    }
}

bool Master::writable(const std::string& stream) const {
    return phase_ == Phase::serving && !awaiting_confirmation_.contains(stream) &&
           !failed_.contains(stream) && !own_commit_failed_;
}

void Master::when_writable(const std::string& stream, Ready ready) {
    if (writable(stream)) return ready({});
    waiters_[stream].push_back(
        Waiter{c_.loop.now_ms() + c_.config.cluster.ack_timeout_ms, std::move(ready)});
}

void Master::resolve_waiters(const std::string& stream) {
    if (!writable(stream)) return;
    auto it = waiters_.find(stream);
    if (it == waiters_.end()) return;
    auto list = std::move(it->second);
    waiters_.erase(it);
    for (Waiter& w : list) w.ready({});
}

void Master::committed(const std::string& stream, const core::StreamPolicy& policy, core::Seq last,
                       const core::Digest& hash) {
    policies_.insert_or_assign(stream, policy);
    const topology::Chain* chain = tracker_.own_chain(stream);
    if (chain == nullptr) {
        load_own(stream);  // a stream this epoch created
        for (const core::NodeId& peer : c_.replicas) {
            if (!c_.links.linked(peer) || !reports_.contains(peer)) continue;
            check_claim(peer, stream,
                        topology::Position{core::Epoch{0}, core::Seq{0}, core::genesis_hash},
                        topology::Tracker::Claim::durable);
        }
    } else if (last > chain->last_seq) {
        topology::Chain next = *chain;
        next.last_seq = last;
        next.last_hash = hash;
        tracker_.own(stream, next, epoch_);
    }
    if (auto it = sealed_.find(stream); it != sealed_.end()) {
        auto& batches = it->second;
        while (!batches.empty() && last_of(batches.front()) <= last) batches.pop_front();
        if (batches.empty()) {
            sealed_.erase(it);
        } else {
            extend_sendable(stream);
        }
    }
    for (const core::NodeId& peer : c_.replicas) {
        if (c_.links.writable(peer)) pump_stream(peer, stream);
    }
    copies_changed(stream);
}

void Master::await_copies(const std::string& stream, core::Seq seq, std::size_t copies,
                          CopiesDone done) {
    if (tracker_.watermark(stream, copies) >= seq) {
        return done(tracker_.holders(stream, seq, c_.self));
    }
    awaiters_[stream].emplace(
        seq, Awaiter{copies, c_.loop.now_ms() + c_.config.cluster.ack_timeout_ms, std::move(done)});
}

void Master::copies_changed(const std::string& stream) {
    const core::StreamPolicy& policy = policy_of(stream);
    const std::size_t copies = topology::copies_required(policy, group_size());
    const core::Seq copies_watermark = tracker_.watermark(stream, copies);
    if (auto it = awaiters_.find(stream); it != awaiters_.end()) {
        auto& list = it->second;
        while (!list.empty() && list.begin()->first <= copies_watermark) {
            auto node = list.extract(list.begin());
            node.mapped().done(tracker_.holders(stream, node.key(), c_.self));
        }
        if (list.empty()) awaiters_.erase(it);
    }
    if (awaiting_confirmation_.contains(stream) && tracker_.confirmed_copies(stream) >= copies) {
        awaiting_confirmation_.erase(stream);
        resolve_waiters(stream);
    }
    // Until `acks` copies confirmed this epoch, the history this master
    // adopted is not settled (a later completion may rank a copy without it
    // higher): consumers see no more of an immediate stream meanwhile.
    if (policy.redundancy == core::Redundancy::immediate && phase_ == Phase::serving &&
        !awaiting_confirmation_.contains(stream)) {
        // Replicas may hold what this copy is still committing: consumers
        // see nothing before it is durable here too.
        const topology::Chain* chain = tracker_.own_chain(stream);
        const core::Seq watermark =
            std::min(copies_watermark, chain != nullptr ? chain->last_seq : core::Seq{0});
        c_.visibility.advance(stream, watermark);
        // The replicas show their consumers as much (docs/replication.md).
        if (core::Seq& declared = declared_[stream]; watermark > declared) {
            declared = watermark;
            for (const core::NodeId& peer : linked_replicas()) {
                c_.links.send(peer, proto::Visible{epoch_, stream, watermark});
            }
        }
    }
}

void Master::tick() {
    if (completion_ && phase_ == Phase::gathering) {
        completion_->tick();
        if (!completion_->gathered()) {
            // A store that could not be read before is read again.
            report_own();
        }
        check_gathered();
    }
    if (phase_ == Phase::adopting && !adoptions_.empty() &&
        c_.loop.now_ms() - adoption_moved_ms_ > adoption_patience_ms()) {
        restart_completion(fmt::format("no progress adopting {} streams for {} ms",
                                       adoptions_.size(), adoption_patience_ms()));
    }
    expire(c_.loop.now_ms());
    retry_refused(c_.loop.now_ms());
}

std::uint64_t Master::adoption_patience_ms() const {
    return std::max<std::uint64_t>(c_.config.cluster.peer_timeout_ms,
                                   c_.config.cluster.ack_timeout_ms);
}

void Master::expire(std::uint64_t now) {
    for (auto it = waiters_.begin(); it != waiters_.end();) {
        auto& list = it->second;
        auto keep = std::partition(list.begin(), list.end(),
                                   [&](const Waiter& w) { return w.deadline_ms > now; });
        std::vector<Waiter> due(std::make_move_iterator(keep), std::make_move_iterator(list.end()));
        list.erase(keep, list.end());
        const std::string stream = it->first;
        it = list.empty() ? waiters_.erase(it) : std::next(it);
        for (Waiter& w : due) {
            w.ready(core::Unexpected{
                error(errc::unavailable,
                      fmt::format("stream {} takes no writes yet: the master {} of epoch {} is {}",
                                  stream, c_.self.value(), epoch_.value(), state()))});
        }
    }
    for (auto it = awaiters_.begin(); it != awaiters_.end();) {
        auto& list = it->second;
        const std::string stream = it->first;
        for (auto a = list.begin(); a != list.end();) {
            if (a->second.deadline_ms > now) {
                ++a;
                continue;
            }
            const auto holders = tracker_.holders(stream, a->first, c_.self);
            auto node = list.extract(a++);
            node.mapped().done(core::Unexpected{error(
                errc::timeout,
                fmt::format("stream {} up to seq {}: {} of {} copies durable after {} ms (on {}); "
                            "the events stay stored and keep replicating",
                            stream, node.key().value(), holders.size(), node.mapped().copies,
                            c_.config.cluster.ack_timeout_ms, names(holders)))});
        }
        it = list.empty() ? awaiters_.erase(it) : std::next(it);
    }
}

std::string Master::state() const {
    switch (phase_) {
        case Phase::gathering:
            return "completing: " + (completion_ ? completion_->waiting_for() : std::string());
        case Phase::adopting:
            return fmt::format("completing: adopting {} streams from other copies",
                               adoptions_.size());
        case Phase::serving:
            if (!awaiting_confirmation_.empty()) {
                return fmt::format(
                    "serving; {} immediate streams wait for their copies to "
                    "confirm epoch {}",
                    awaiting_confirmation_.size(), epoch_.value());
            }
            return "serving";
    }
    return "unknown";
}

bool Master::caught_up(const core::NodeId& peer) const {
    return phase_ == Phase::serving && tracker_.caught_up(peer);
}

std::uint64_t Master::lag_events(const core::NodeId& peer) const {
    std::uint64_t lag = 0;
    for (const std::string& stream : tracker_.streams()) {
        lag += lag_of(*tracker_.own_chain(stream), tracker_.copy(peer, stream));
    }
    return lag;
}

std::vector<proto::TopologyPosition> Master::replica_positions() const {
    std::vector<proto::TopologyPosition> out;
    for (const std::string& stream : tracker_.streams()) {
        const topology::Chain& chain = *tracker_.own_chain(stream);
        for (const core::NodeId& peer : c_.replicas) {
            const topology::ReplicaCopy* copy = tracker_.copy(peer, stream);
            proto::TopologyPosition p;
            p.node_id = peer.value();
            p.stream = stream;
            p.lag_events = lag_of(chain, copy);
            p.state = copy ? topology::copy_state_name(copy->state) : "unreported";
            if (copy) {
                p.seq = copy->matched;
                p.confirmed = copy->confirmed;
            }
            out.push_back(std::move(p));
        }
    }
    return out;
}

std::vector<proto::ReplicationError> Master::errors() const {
    std::vector<proto::ReplicationError> out;
    for (const std::string& stream : tracker_.streams()) {
        for (const core::NodeId& peer : c_.replicas) {
            const topology::ReplicaCopy* copy = tracker_.copy(peer, stream);
            if (copy == nullptr) continue;
            if (copy->state == topology::CopyState::refused) {
                out.push_back({stream, fmt::format("node {}: {}", peer.value(), copy->why)});
            } else if (copy->state == topology::CopyState::diverged ||
                       copy->state == topology::CopyState::repairing) {
                out.push_back({stream, fmt::format("node {}: copy {}", peer.value(),
                                                   topology::copy_state_name(copy->state))});
            }
        }
    }
    for (const auto& [stream, why] : failed_) {
        out.push_back({stream, fmt::format("not completed in epoch {}: {}", epoch_.value(), why)});
    }
    return out;
}

}  // namespace spirit::daemon
