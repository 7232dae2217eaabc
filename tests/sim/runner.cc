// Running a seed and reporting a failure (runner.h).
#include "tests/sim/runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>

namespace spirit::sim {

Outcome run_seed(const WorldOptions& options, const std::function<void(const std::string&)>& sink,
                 bool messages) {
    World world(options);
    if (sink) world.trace().set_sink(sink);
    world.trace().set_messages(messages);
    return world.run();
}

std::string replay_command(const WorldOptions& options) {
    std::string out = fmt::format("spirit_sim --seed {} --trace", options.seed);
    if (options.mutations.any()) out += " --break " + options.mutations.text();
    return out;
}

std::string failure_report(const Outcome& o, const WorldOptions& options) {
    if (o.violations.empty()) return "";
    const Violation& first = o.violations.front();
    std::string out = fmt::format("seed {} failed at tick {}: {}: {}\n", o.seed, first.tick,
                                  first.invariant, first.message);
    for (std::size_t i = 1; i < o.violations.size() && i < 5; ++i) {
        out += fmt::format("  then at tick {}: {}: {}\n", o.violations[i].tick,
                           o.violations[i].invariant, o.violations[i].message);
    }
    out += fmt::format("options: {}\nthe last {} trace lines:\n", describe(options),
                       o.last_trace.size());
    for (const std::string& line : o.last_trace) out += "  " + line + "\n";
    out += "replay: " + replay_command(options) + "\n";
    return out;
}

bool violates(const Outcome& outcome, const std::string& invariant) {
    return std::any_of(outcome.violations.begin(), outcome.violations.end(),
                       [&](const Violation& v) { return v.invariant == invariant; });
}

std::vector<PinnedSeed> read_pinned_seeds(const std::string& path) {
    std::vector<PinnedSeed> out;
    std::ifstream in(path);
    std::string line;
    std::string why;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (line[0] == '#') {
            why = line.substr(std::min<std::size_t>(2, line.size()));
            continue;
        }
        out.push_back(PinnedSeed{std::stoull(line), why});
        why.clear();
    }
    return out;
}

}  // namespace spirit::sim
