// tests/sim/faults.h: the fault driver of a random run ("swarm" faults).
// Each tick of the safety phase it may start a partition (of a kind the
// seed enabled) and heal it later, crash a node and restart it later, pause
// a node (SIGSTOP: no ticks, messages held) and resume it, give a node a
// burst of ticks (a clock jump); per-node clock rates are set once. Every
// fault is traced and counted. heal_all() ends them for the liveness
// phase, leaving at most a minority of voters (and of data nodes) down.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tests/sim/options.h"

namespace spirit::sim {

class World;

class FaultDriver {
 public:
    FaultDriver(World& world, FaultPlan plan);

    void tick();
    void heal_all();

 private:
    void maybe_partition();
    void start_partition(std::uint8_t kind);
    void end_partition();
    void flap();
    void maybe_crash();
    void maybe_pause();
    void maybe_jump();
    void maybe_transfer();
    void bring_back();
    bool chance(std::uint64_t permille);
    std::size_t down() const;
    std::vector<std::size_t> shuffled();

    World& world_;
    FaultPlan plan_;
    std::optional<std::uint64_t> partition_until_;
    std::optional<std::pair<std::size_t, std::size_t>> flapping_;
    std::uint64_t next_flap_ = 0;
    std::vector<std::uint64_t> restart_at_;  // 0: not crashed by the driver
    std::vector<std::uint64_t> resume_at_;   // 0: not paused
};

}  // namespace spirit::sim
