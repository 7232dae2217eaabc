// tests/sim/runner.h: what the test and the replay tool share: running one
// seed, the failure report (seed, tick, invariant, the trace before it, and
// the exact command that replays it), and the pinned seeds of seeds.txt.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tests/sim/options.h"
#include "tests/sim/world.h"

namespace spirit::sim {

// Runs both phases of one seed. `sink`, if set, gets every trace line.
Outcome run_seed(const WorldOptions& options,
                 const std::function<void(const std::string&)>& sink = {}, bool messages = false);

// "spirit_sim --seed 42 --trace" (with --break ... when rules are broken).
std::string replay_command(const WorldOptions& options);

// The report of a failed run: the first violation with its seed and tick,
// the others by name, the last trace lines before it, and the replay command.
std::string failure_report(const Outcome& outcome, const WorldOptions& options);

// Whether `outcome` holds a violation of `invariant`.
bool violates(const Outcome& outcome, const std::string& invariant);

struct PinnedSeed {
    std::uint64_t seed = 0;
    std::string why;  // the comment line above it
};
// seeds.txt: "# what broke" comment lines, then the seed, one per line.
std::vector<PinnedSeed> read_pinned_seeds(const std::string& path);

}  // namespace spirit::sim
