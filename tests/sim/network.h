// tests/sim/network.h: the simulated network between nodes. Each message
// gets a random delay in ticks (so messages reorder), may be lost or
// duplicated, and is dropped if the link from its sender to its receiver is
// cut when it is sent or when it arrives. Links are one-way, so partitions
// can be symmetric, one-way, a bridge, or one node isolated. Delivery order
// is (due tick, send order): deterministic.
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

#include "tests/sim/messages.h"
#include "topology/prng.h"

namespace spirit::sim {

struct Envelope {
    std::size_t from = 0;
    std::size_t to = 0;
    std::uint64_t to_life = 0;  // the receiver's life (restarts) when sent
    Message message;
};

struct NetworkFaults {
    std::uint64_t delay_min = 0;  // ticks
    std::uint64_t delay_max = 0;
    std::uint64_t loss_permille = 0;
    std::uint64_t dup_permille = 0;
};

class Network {
 public:
    Network(std::size_t nodes, topology::Prng& prng);

    void set_faults(const NetworkFaults& faults) { faults_ = faults; }
    const NetworkFaults& faults() const { return faults_; }

    void send(std::uint64_t now, Envelope envelope);
    // Queues `envelope` due at `now`, with no fault (a paused node's held messages).
    void requeue(std::uint64_t now, Envelope envelope);
    // The next message due at or before `now`, in (due, send order).
    std::optional<Envelope> pop_due(std::uint64_t now);
    bool empty() const { return queue_.empty(); }

    bool cut(std::size_t from, std::size_t to) const { return cut_[from][to]; }
    void set_cut(std::size_t from, std::size_t to, bool cut) { cut_[from][to] = cut; }
    bool any_cut() const;
    void heal();

    std::uint64_t sent() const { return sent_; }
    std::uint64_t lost() const { return lost_; }
    std::uint64_t duplicated() const { return duplicated_; }

 private:
    // The heap orders small keys; envelopes wait in slots (cheap to sift).
    struct Queued {
        std::uint64_t due;
        std::uint64_t order;
        std::size_t slot;
    };
    struct Later {
        bool operator()(const Queued& a, const Queued& b) const {
            return a.due != b.due ? a.due > b.due : a.order > b.order;
        }
    };
    void enqueue(std::uint64_t now, Envelope envelope);

    topology::Prng& prng_;
    NetworkFaults faults_;
    std::vector<std::vector<bool>> cut_;
    std::priority_queue<Queued, std::vector<Queued>, Later> queue_;
    std::vector<Envelope> slots_;
    std::vector<std::size_t> free_;
    std::size_t park(Envelope envelope);
    std::uint64_t order_ = 0;
    std::uint64_t sent_ = 0;
    std::uint64_t lost_ = 0;
    std::uint64_t duplicated_ = 0;
};

}  // namespace spirit::sim
