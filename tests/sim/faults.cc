// The swarm fault driver (faults.h): partitions, crashes, pauses, clock
// jumps and skew drawn from the run's PRNG, and the heal of the liveness phase.
#include "tests/sim/faults.h"

#include <fmt/format.h>

#include "tests/sim/world.h"
#include "topology/quorum.h"

namespace spirit::sim {

FaultDriver::FaultDriver(World& world, FaultPlan plan)
    : world_(world), plan_(plan), restart_at_(world.size(), 0), resume_at_(world.size(), 0) {
    world_.network().set_faults(plan_.network);
    if (!plan_.skew) return;
    for (std::size_t i = 0; i < world_.size(); ++i) {
        const std::uint64_t rate = world_.prng().uniform(750, 1250);
        world_.set_rate(i, rate);
        world_.trace(fmt::format("{} ticks at {}/1000 of the world's rate",
                                 world_.node(i).id().value(), rate));
    }
    world_.count("clock skew");
}

bool FaultDriver::chance(std::uint64_t permille) {
    return permille > 0 && world_.prng().uniform(0, 999) < permille;
}

std::size_t FaultDriver::down() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < world_.size(); ++i) {
        if (!world_.node(i).up() || world_.node(i).paused()) ++n;
    }
    return n;
}

std::vector<std::size_t> FaultDriver::shuffled() {
    std::vector<std::size_t> order(world_.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (std::size_t i = order.size(); i > 1; --i) {
        std::swap(order[i - 1], order[world_.prng().uniform(0, i - 1)]);
    }
    return order;
}

void FaultDriver::tick() {
    bring_back();
    maybe_partition();
    flap();
    maybe_crash();
    maybe_pause();
    maybe_jump();
    maybe_transfer();
}

void FaultDriver::bring_back() {
    const std::uint64_t now = world_.now();
    for (std::size_t i = 0; i < world_.size(); ++i) {
        if (restart_at_[i] != 0 && now >= restart_at_[i]) {
            restart_at_[i] = 0;
            world_.restart(i);
            world_.count("restart");
        }
        if (resume_at_[i] != 0 && now >= resume_at_[i]) {
            resume_at_[i] = 0;
            world_.resume(i);
        }
    }
}

void FaultDriver::maybe_partition() {
    if (plan_.bridge_at_start && world_.now() == 0) {
        partition_until_ = world_.prng().uniform(30, 60);
        return start_partition(partition_bridge);
    }
    if (partition_until_) {
        if (world_.now() >= *partition_until_) end_partition();
        return;
    }
    if (plan_.partition_kinds == 0 || !chance(plan_.partition_permille)) return;
    std::vector<std::uint8_t> kinds;
    for (std::uint8_t k = 0; k < partition_kinds; ++k) {
        if ((plan_.partition_kinds & (1u << k)) != 0) kinds.push_back(k);
    }
    const std::uint8_t kind = kinds[world_.prng().uniform(0, kinds.size() - 1)];
    partition_until_ = world_.now() + world_.prng().uniform(5, plan_.partition_ticks_max);
    start_partition(kind);
}

void FaultDriver::start_partition(std::uint8_t kind) {
    const std::vector<std::size_t> order = shuffled();
    const std::size_t n = order.size();
    auto name = [&](std::size_t i) { return world_.node(order[i]).id().value(); };
    auto cut_groups = [&](std::size_t from, std::size_t split, std::size_t to) {
        for (std::size_t a = from; a < split; ++a) {
            for (std::size_t b = split; b < to; ++b) {
                world_.cut(order[a], order[b]);
                world_.cut(order[b], order[a]);
            }
        }
    };
    std::string text;
    if (kind == partition_split) {
        const std::size_t k = world_.prng().uniform(1, n - 1);
        cut_groups(0, k, n);
        for (std::size_t i = 0; i < k; ++i) text += " " + name(i);
        text = "split:" + text + " | the rest";
    } else if (kind == partition_one_way) {
        const bool deaf = world_.prng().uniform(0, 1) == 1;
        for (std::size_t i = 1; i < n; ++i) {
            deaf ? world_.cut(order[i], order[0]) : world_.cut(order[0], order[i]);
        }
        text = fmt::format("one-way: {} {} no one", name(0), deaf ? "hears" : "is heard by");
    } else if (kind == partition_bridge) {
        const std::size_t k = world_.prng().uniform(2, n - 1);  // order[0] bridges
        cut_groups(1, k, n);
        text = fmt::format("bridge: {} hears and is heard by both sides", name(0));
    } else if (kind == partition_isolate) {
        world_.isolate(order[0]);
        text = "isolate: " + name(0);
    } else {
        flapping_ = std::pair{order[0], order[1]};
        next_flap_ = world_.now();
        text = fmt::format("flap: the link {} - {} goes down and up", name(0), name(1));
    }
    world_.trace("partition " + text);
    world_.count(std::string("partition ") + partition_name(kind));
}

void FaultDriver::end_partition() {
    partition_until_.reset();
    flapping_.reset();
    world_.heal();
    world_.trace("the network heals");
}

void FaultDriver::flap() {
    if (!flapping_ || world_.now() < next_flap_) return;
    const auto [a, b] = *flapping_;
    const bool down = !world_.network().cut(a, b);
    world_.network().set_cut(a, b, down);
    world_.network().set_cut(b, a, down);
    next_flap_ = world_.now() + world_.prng().uniform(1, 6);
}

void FaultDriver::maybe_crash() {
    if (!chance(plan_.crash_permille) || down() >= plan_.down_max) return;
    const std::vector<std::size_t> order = shuffled();
    for (std::size_t i : order) {
        if (!world_.node(i).up()) continue;
        world_.crash(i);
        restart_at_[i] = world_.now() + world_.prng().uniform(1, plan_.down_ticks_max);
        resume_at_[i] = 0;
        world_.count("crash");
        return;
    }
}

void FaultDriver::maybe_pause() {
    if (!chance(plan_.pause_permille) || down() >= plan_.down_max) return;
    for (std::size_t i : shuffled()) {
        if (!world_.node(i).up() || world_.node(i).paused()) continue;
        world_.pause(i);
        resume_at_[i] = world_.now() + world_.prng().uniform(1, plan_.pause_ticks_max);
        world_.count("pause");
        return;
    }
}

void FaultDriver::maybe_jump() {
    if (!chance(plan_.jump_permille)) return;
    const std::size_t i = world_.prng().uniform(0, world_.size() - 1);
    if (!world_.node(i).up() || world_.node(i).paused()) return;
    world_.jump(i, world_.prng().uniform(1, plan_.jump_ticks_max));
    world_.count("clock jump");
}

void FaultDriver::maybe_transfer() {
    if (!chance(plan_.transfer_permille)) return;
    const std::size_t asked = world_.prng().uniform(0, world_.size() - 1);
    const auto& data = world_.data_nodes();
    const std::size_t target = data[world_.prng().uniform(0, data.size() - 1)];
    if (!world_.node(asked).up() || world_.node(asked).paused()) return;
    world_.trace(fmt::format("{}: an operator asks it to make {} master",
                             world_.node(asked).id().value(), world_.node(target).id().value()));
    world_.node(asked).transfer(world_.node(target).id());
    world_.count("transfer");
}

void FaultDriver::heal_all() {
    end_partition();
    world_.network().set_faults(NetworkFaults{0, 1, 0, 0});
    world_.set_disk(1, 0);
    for (std::size_t i = 0; i < world_.size(); ++i) {
        world_.set_rate(i, 1000);
        resume_at_[i] = 0;
        world_.resume(i);
    }
    // A minority may stay down: of the voters, and of the data nodes (imm
    // needs a majority of these to take writes).
    const topology::Members& m = world_.members();
    std::size_t voters_down = 0;
    std::size_t data_down = 0;
    const std::size_t voters_max = m.voters() - m.majority();
    const std::size_t data_max = m.data().size() - topology::majority(m.data().size());
    for (std::size_t i = 0; i < world_.size(); ++i) {
        restart_at_[i] = 0;
        if (world_.node(i).up()) continue;
        const bool data = world_.node(i).data();
        const bool may_stay = voters_down < voters_max && (!data || data_down < data_max);
        if (may_stay && world_.prng().uniform(0, 1) == 1) {
            ++voters_down;
            data_down += data ? 1 : 0;
            world_.trace(world_.node(i).id().value() + " stays down");
            continue;
        }
        world_.restart(i);
    }
}

}  // namespace spirit::sim
