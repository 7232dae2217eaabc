// The simulated network (network.h): delays, loss, duplication, cut links.
#include "tests/sim/network.h"

#include "core/assert.h"

namespace spirit::sim {

Network::Network(std::size_t nodes, topology::Prng& prng)
    : prng_(prng), cut_(nodes, std::vector<bool>(nodes, false)) {}

void Network::send(std::uint64_t now, Envelope envelope) {
    SPIRIT_ASSERT(envelope.from != envelope.to);
    ++sent_;
    if (cut_[envelope.from][envelope.to]) return;
    if (faults_.loss_permille > 0 && prng_.uniform(0, 999) < faults_.loss_permille) {
        ++lost_;
        return;
    }
    if (faults_.dup_permille > 0 && prng_.uniform(0, 999) < faults_.dup_permille) {
        ++duplicated_;
        enqueue(now, envelope);
    }
    enqueue(now, std::move(envelope));
}

std::size_t Network::park(Envelope envelope) {
    if (free_.empty()) {
        slots_.push_back(std::move(envelope));
        return slots_.size() - 1;
    }
    const std::size_t slot = free_.back();
    free_.pop_back();
    slots_[slot] = std::move(envelope);
    return slot;
}

void Network::requeue(std::uint64_t now, Envelope envelope) {
    queue_.push(Queued{now, order_++, park(std::move(envelope))});
}

void Network::enqueue(std::uint64_t now, Envelope envelope) {
    const std::uint64_t delay = faults_.delay_max > faults_.delay_min
                                    ? prng_.uniform(faults_.delay_min, faults_.delay_max)
                                    : faults_.delay_min;
    queue_.push(Queued{now + delay, order_++, park(std::move(envelope))});
}

std::optional<Envelope> Network::pop_due(std::uint64_t now) {
    while (!queue_.empty() && queue_.top().due <= now) {
        const std::size_t slot = queue_.top().slot;
        queue_.pop();
        Envelope e = std::move(slots_[slot]);
        free_.push_back(slot);
        if (!cut_[e.from][e.to]) return e;  // else cut while in flight
    }
    return std::nullopt;
}

bool Network::any_cut() const {
    for (const auto& row : cut_) {
        for (bool c : row) {
            if (c) return true;
        }
    }
    return false;
}

void Network::heal() {
    for (auto& row : cut_) row.assign(row.size(), false);
}

}  // namespace spirit::sim
