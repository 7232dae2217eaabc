#include "topology/tracker.h"

#include <algorithm>
#include <string>

#include "core/assert.h"
#include "topology/quorum.h"

namespace spirit::topology {

const char* copy_state_name(CopyState state) {
    switch (state) {
        case CopyState::unverified:
            return "unverified";
        case CopyState::diverged:
            return "diverged";
        case CopyState::repairing:
            return "repairing";
        case CopyState::replicating:
            return "replicating";
        case CopyState::refused:
            return "refused";
    }
    return "unknown";
}

Tracker::Tracker(core::Epoch epoch, std::vector<core::NodeId> replicas, std::uint64_t window_bytes)
    : epoch_(epoch), replicas_(std::move(replicas)), window_bytes_(window_bytes) {
    SPIRIT_ASSERT(epoch_ > core::Epoch{0});
    SPIRIT_ASSERT(window_bytes_ > 0);
    std::sort(replicas_.begin(), replicas_.end());
}

Tracker::Stream& Tracker::stream_of(const std::string& stream) {
    return streams_[stream];
}

ReplicaCopy& Tracker::copy_of(const core::NodeId& replica, const std::string& stream) {
    SPIRIT_ASSERT(std::binary_search(replicas_.begin(), replicas_.end(), replica));
    return stream_of(stream).copies[replica];
}

void Tracker::own(const std::string& stream, const Chain& chain, core::Epoch confirmed) {
    SPIRIT_ASSERT(confirmed <= epoch_);
    Stream& s = stream_of(stream);
    if (chain.last_seq < s.chain.last_seq) {
        // This copy was cut (completion repaired it): nothing checked against
        // the old chain beyond the cut holds any more.
        for (auto& [replica, copy] : s.copies) {
            release(replica, copy);
            copy.search.reset();
            copy.state = CopyState::unverified;
            copy.matched = std::min(copy.matched, chain.last_seq);
        }
    }
    // A cut drops what was sealed beyond it too; a commit overtakes it.
    if (chain.last_seq < s.chain.last_seq || s.sealed_seq < chain.last_seq) {
        s.sealed_seq = chain.last_seq;
    }
    s.chain = chain;
    s.confirmed = confirmed;
}

void Tracker::sealed(const std::string& stream, core::Seq last) {
    auto it = streams_.find(stream);
    if (it != streams_.end() && last > it->second.sealed_seq) it->second.sealed_seq = last;
}

core::Seq Tracker::sendable(const std::string& stream) const {
    auto it = streams_.find(stream);
    if (it == streams_.end()) return core::Seq{0};
    return std::max(it->second.chain.last_seq, it->second.sealed_seq);
}

const Chain* Tracker::own_chain(const std::string& stream) const {
    auto it = streams_.find(stream);
    return it == streams_.end() ? nullptr : &it->second.chain;
}

void Tracker::link_down(const core::NodeId& replica) {
    for (auto& [name, s] : streams_) {
        auto it = s.copies.find(replica);
        if (it == s.copies.end()) continue;
        release(replica, it->second);
        it->second.search.reset();
        it->second.state = CopyState::unverified;
        it->second.counts = false;
        it->second.why.clear();
    }
    bytes_in_flight_.erase(replica);
}

void Tracker::forget(const std::string& stream) {
    auto it = streams_.find(stream);
    if (it == streams_.end()) return;
    for (auto& [replica, copy] : it->second.copies) release(replica, copy);
    streams_.erase(it);
}

void Tracker::release(const core::NodeId& replica, ReplicaCopy& copy) {
    std::uint64_t& total = bytes_in_flight_[replica];
    for (const InFlight& f : copy.in_flight) total -= std::min(total, f.bytes);
    copy.in_flight.clear();
}

void Tracker::verify(ReplicaCopy& copy, const Position& claim, const Chain& chain, Claim kind) {
    copy.state = CopyState::replicating;
    copy.counts = true;
    if (kind == Claim::durable) {
        copy.matched = claim.seq;
        copy.confirmed = claim.confirmed;
    }
    copy.target = chain.last_seq;
    copy.next = claim.seq.next();
    copy.next_prev_hash = claim.hash;
    copy.aligned = false;
    copy.why.clear();
}

Verdict Tracker::claim(const core::NodeId& replica, const std::string& stream,
                       const Position& claim, const std::optional<core::Digest>& here, Claim kind) {
    ReplicaCopy& c = copy_of(replica, stream);
    const Chain& chain = stream_of(stream).chain;
    release(replica, c);
    c.search.reset();
    c.claim = claim;
    // It holds no more than it says, whatever was verified before.
    c.matched = std::min(c.matched, claim.seq);
    if (here && *here == claim.hash) {
        verify(c, claim, chain, kind);
        return Verdict::verified;
    }
    const core::Seq floor = chain.first_seq.prev();
    const core::Seq differs = claim.seq <= chain.last_seq ? claim.seq : chain.last_seq.next();
    if (claim.seq < floor || differs <= floor) {
        c.state = CopyState::refused;
        c.why = claim.seq < floor ? "its copy ends at seq " + std::to_string(claim.seq.value()) +
                                        ", before this master's first retained seq " +
                                        std::to_string(chain.first_seq.value())
                                  : "its copy differs at seq " + std::to_string(floor.value()) +
                                        ", the first this master can compare";
        return Verdict::cannot_continue;
    }
    c.state = CopyState::diverged;
    c.matched = core::Seq{0};
    c.counts = false;
    c.search.emplace(floor, differs);
    return Verdict::diverged;
}

bool Tracker::ack(const core::NodeId& replica, const std::string& stream,
                  const Position& position) {
    ReplicaCopy& c = copy_of(replica, stream);
    if (c.state != CopyState::replicating) return false;
    auto it = std::find_if(c.in_flight.begin(), c.in_flight.end(),
                           [&](const InFlight& f) { return f.last == position.seq; });
    if (it == c.in_flight.end() || it->last_hash != position.hash) return false;
    std::uint64_t& total = bytes_in_flight_[replica];
    while (!c.in_flight.empty() && c.in_flight.front().last <= position.seq) {
        total -= std::min(total, c.in_flight.front().bytes);
        c.in_flight.pop_front();
    }
    c.matched = std::max(c.matched, position.seq);
    c.confirmed = std::max(c.confirmed, position.confirmed);
    return true;
}

void Tracker::refused(const core::NodeId& replica, const std::string& stream, std::string why) {
    ReplicaCopy& c = copy_of(replica, stream);
    release(replica, c);
    c.search.reset();
    c.state = CopyState::refused;
    c.why = std::move(why);
}

std::vector<core::Seq> Tracker::probes(const core::NodeId& replica,
                                       const std::string& stream) const {
    const ReplicaCopy* c = copy(replica, stream);
    if (c == nullptr || c->state != CopyState::diverged || !c->search) return {};
    return c->search->probes();
}

std::optional<core::Seq> Tracker::probed(const core::NodeId& replica, const std::string& stream,
                                         const std::vector<std::pair<core::Seq, bool>>& same) {
    ReplicaCopy& c = copy_of(replica, stream);
    if (c.state != CopyState::diverged || !c.search) return std::nullopt;
    for (const auto& [seq, agrees] : same) c.search->answer(seq, agrees);
    if (c.search->unrepairable()) {
        c.state = CopyState::refused;
        c.why = "its copy shares no seq with this master's";
        c.search.reset();
        return std::nullopt;
    }
    if (!c.search->done()) return std::nullopt;
    const core::Seq common = c.search->common();
    c.search.reset();
    c.state = CopyState::repairing;
    c.matched = common;
    return common;
}

std::optional<SendRange> Tracker::next_send(const core::NodeId& replica,
                                            const std::string& stream) const {
    const ReplicaCopy* c = copy(replica, stream);
    if (c == nullptr || c->state != CopyState::replicating) return std::nullopt;
    if (bytes_in_flight(replica) >= window_bytes_) return std::nullopt;
    const Stream& s = streams_.at(stream);
    const core::Seq last = std::max(s.chain.last_seq, s.sealed_seq);
    if (c->next <= last) return SendRange{c->next, c->next_prev_hash, last};
    if ((c->confirmed < epoch_ || !c->aligned) && c->in_flight.empty()) {
        return SendRange{c->next, c->next_prev_hash, c->next.prev()};  // align
    }
    return std::nullopt;
}

void Tracker::sent(const core::NodeId& replica, const std::string& stream, core::Seq last,
                   const core::Digest& last_hash, std::uint64_t bytes) {
    ReplicaCopy& c = copy_of(replica, stream);
    SPIRIT_ASSERT(c.state == CopyState::replicating);
    SPIRIT_ASSERT(last.next() >= c.next);
    c.in_flight.push_back(InFlight{last, last_hash, bytes});
    c.aligned = true;
    bytes_in_flight_[replica] += bytes;
    if (last >= c.next) {
        c.next = last.next();
        c.next_prev_hash = last_hash;
    }
}

std::uint64_t Tracker::bytes_in_flight(const core::NodeId& replica) const {
    auto it = bytes_in_flight_.find(replica);
    return it == bytes_in_flight_.end() ? 0 : it->second;
}

core::Seq Tracker::watermark(const std::string& stream, std::size_t copies) const {
    auto it = streams_.find(stream);
    if (it == streams_.end()) return core::Seq{0};
    std::vector<core::Seq> positions{it->second.chain.last_seq};
    for (const auto& [replica, c] : it->second.copies) {
        positions.push_back(c.counts ? c.matched : core::Seq{0});
    }
    return topology::watermark(positions, copies);
}

std::vector<core::NodeId> Tracker::holders(const std::string& stream, core::Seq seq,
                                           const core::NodeId& self) const {
    std::vector<core::NodeId> out;
    auto it = streams_.find(stream);
    if (it == streams_.end()) return out;
    if (it->second.chain.last_seq >= seq) out.push_back(self);
    for (const auto& [replica, c] : it->second.copies) {
        if (c.counts && c.matched >= seq) out.push_back(replica);
    }
    return out;
}

std::size_t Tracker::confirmed_copies(const std::string& stream) const {
    auto it = streams_.find(stream);
    if (it == streams_.end()) return 0;
    std::size_t n = it->second.confirmed == epoch_ ? 1 : 0;
    for (const auto& [replica, c] : it->second.copies) {
        if (c.counts && c.confirmed == epoch_) ++n;
    }
    return n;
}

bool Tracker::caught_up(const core::NodeId& replica) const {
    for (const auto& [name, s] : streams_) {
        auto it = s.copies.find(replica);
        if (it == s.copies.end()) return false;
        const ReplicaCopy& c = it->second;
        if (c.state != CopyState::replicating || c.matched < c.target) return false;
    }
    return true;
}

const ReplicaCopy* Tracker::copy(const core::NodeId& replica, const std::string& stream) const {
    auto it = streams_.find(stream);
    if (it == streams_.end()) return nullptr;
    auto c = it->second.copies.find(replica);
    return c == it->second.copies.end() ? nullptr : &c->second;
}

std::vector<std::string> Tracker::streams() const {
    std::vector<std::string> out;
    out.reserve(streams_.size());
    for (const auto& [name, s] : streams_) out.push_back(name);
    return out;
}

}  // namespace spirit::topology
