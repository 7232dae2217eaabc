// spirit_sim: replays and soaks the deterministic simulator (tests/sim).
//
//   spirit_sim --seed N [--trace] [--messages] [--break RULES]
//       replays one run exactly; --trace prints its trace as it goes,
//       --messages adds every delivered message
//   spirit_sim --seeds A-B [--break RULES]
//       runs seeds A..B and prints one line per failure, then a summary
//   spirit_sim --soak-minutes M [--start S]
//       runs random seeds (drawn from S, default: the clock) until M
//       minutes are up; prints every failing seed, the seeds covered and
//       how often each fault kind happened
//   spirit_sim --figure8 [--trace] [--break rank-by-last-epoch]
//   --keep-going: a run goes on after a violation and collects them all
//   --storm: election_storm_options (options.h) instead of swarm_options
//       the scripted schedule of Raft's figure 8 (tests/sim/figure8.h)
//
// RULES: votes-twice, any-candidate, no-check-quorum, completion-from-self,
// rank-by-last-epoch, slave-exposes-unconfirmed, slave-confirms-early
// (comma separated). A
// failure prints its seed, tick, invariant, the last trace lines and the
// replay command; the exit status is 1 if any run failed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "tests/sim/runner.h"
#include "tests/sim/scripts.h"
#include "topology/prng.h"

namespace {

using namespace spirit::sim;

struct Args {
    std::optional<std::uint64_t> seed;
    std::optional<std::pair<std::uint64_t, std::uint64_t>> seeds;
    std::optional<std::uint64_t> soak_minutes;
    std::optional<std::uint64_t> start;
    bool trace = false;
    bool messages = false;
    bool figure8 = false;
    bool catch_up = false;
    bool keep_going = false;
    bool storm = false;
    Mutations mutations;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "spirit_sim: %s\nusage: spirit_sim --seed N [--trace] [--messages] [--break "
                 "RULES]\n       spirit_sim --seeds A-B [--break RULES]\n       spirit_sim "
                 "--soak-minutes M [--start S]\n       spirit_sim --figure8 | --catch-up [--trace] "
                 "[--break RULES]\n",
                 why);
    std::exit(2);
}

std::uint64_t number(const std::string& text) {
    std::size_t used = 0;
    const std::uint64_t v = std::stoull(text, &used);
    if (used != text.size()) usage(("not a number: " + text).c_str());
    return v;
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage((arg + " needs a value").c_str());
            return argv[++i];
        };
        if (arg == "--seed") {
            a.seed = number(value());
        } else if (arg == "--seeds") {
            const std::string v = value();
            const auto dash = v.find('-');
            if (dash == std::string::npos) usage("--seeds takes A-B");
            a.seeds = std::pair{number(v.substr(0, dash)), number(v.substr(dash + 1))};
        } else if (arg == "--soak-minutes") {
            a.soak_minutes = number(value());
        } else if (arg == "--start") {
            a.start = number(value());
        } else if (arg == "--trace") {
            a.trace = true;
        } else if (arg == "--messages") {
            a.trace = a.messages = true;
        } else if (arg == "--storm") {
            a.storm = true;
        } else if (arg == "--keep-going") {
            a.keep_going = true;
        } else if (arg == "--figure8") {
            a.figure8 = true;
        } else if (arg == "--catch-up") {
            a.catch_up = true;
        } else if (arg == "--break") {
            if (!parse_mutations(value(), a.mutations)) usage("unknown rule to break");
        } else {
            usage(("unknown argument " + arg).c_str());
        }
    }
    return a;
}

void print_line(const std::string& line) {
    std::printf("%s\n", line.c_str());
}

WorldOptions options_for(std::uint64_t seed, const Args& a) {
    WorldOptions o = a.storm ? election_storm_options(seed) : swarm_options(seed);
    o.mutations = a.mutations;
    o.stop_on_first = !a.keep_going;
    return o;
}

int replay(const Args& a) {
    const WorldOptions o = options_for(*a.seed, a);
    std::printf("%s\n", describe(o).c_str());
    const Outcome out = run_seed(o, a.trace ? print_line : nullptr, a.messages);
    std::printf(
        "seed %llu: %llu ticks, %llu acks, %llu masters, trace digest %016llx\n",
        static_cast<unsigned long long>(out.seed), static_cast<unsigned long long>(out.ticks),
        static_cast<unsigned long long>(out.acks), static_cast<unsigned long long>(out.masters),
        static_cast<unsigned long long>(out.digest));
    if (out.ok()) return 0;
    std::printf("%s", failure_report(out, o).c_str());
    return 1;
}

struct Tally {
    std::uint64_t runs = 0;
    std::uint64_t failed = 0;
    std::uint64_t ticks = 0;
    std::uint64_t acks = 0;
    std::map<std::string, std::uint64_t> faults;
    std::map<std::string, std::uint64_t> shapes;
    std::map<std::string, std::uint64_t> violated;          // invariant -> runs
    std::map<std::uint64_t, std::uint64_t> heal_to_master;  // ticks -> runs
    std::uint64_t stale_ack_ticks_max = 0;

    void add(const Outcome& out, const WorldOptions& o) {
        ++runs;
        ticks += out.ticks;
        acks += out.acks;
        ++shapes[shape_name(o.shape)];
        if (out.ok()) ++heal_to_master[out.heal_to_master_ticks];
        stale_ack_ticks_max = std::max(stale_ack_ticks_max, out.stale_ack_ticks_max);
        for (const auto& [kind, n] : out.faults) faults[kind] += n;
        if (out.ok()) return;
        ++failed;
        std::set<std::string> names;
        for (const Violation& v : out.violations) names.insert(v.invariant);
        for (const std::string& name : names) ++violated[name];
        std::printf("%s\n", failure_report(out, o).c_str());
    }

    // Ticks from the heal to a master everyone follows acking both streams: percentiles.
    void print_heal_to_master() const {
        std::uint64_t total = 0;
        for (const auto& [t, n] : heal_to_master) total += n;
        if (total == 0) return;
        std::string text;
        for (double q : {0.5, 0.9, 0.99, 1.0}) {
            std::uint64_t seen = 0;
            for (const auto& [t, n] : heal_to_master) {
                seen += n;
                if (static_cast<double>(seen) >= q * static_cast<double>(total)) {
                    text +=
                        " p" + std::to_string(static_cast<int>(q * 100)) + " " + std::to_string(t);
                    break;
                }
            }
        }
        std::printf("  ticks from the heal to acks by a master all follow:%s\n", text.c_str());
    }

    void print(double seconds) const {
        std::printf("%llu runs, %llu failed, %llu ticks, %llu acks in %.1f s (%.1f seeds/s)\n",
                    static_cast<unsigned long long>(runs), static_cast<unsigned long long>(failed),
                    static_cast<unsigned long long>(ticks), static_cast<unsigned long long>(acks),
                    seconds, seconds > 0 ? static_cast<double>(runs) / seconds : 0.0);
        for (const auto& [shape, n] : shapes) {
            std::printf("  shape %-18s %llu runs\n", shape.c_str(),
                        static_cast<unsigned long long>(n));
        }
        for (const auto& [kind, n] : faults) {
            std::printf("  %-24s %llu\n", kind.c_str(), static_cast<unsigned long long>(n));
        }
        print_heal_to_master();
        std::printf(
            "  the latest ack of a stale master: %llu of its ticks after a higher "
            "epoch's master existed\n",
            static_cast<unsigned long long>(stale_ack_ticks_max));
        for (const auto& [name, n] : violated) {
            std::printf("  violated %-24s in %llu runs\n", name.c_str(),
                        static_cast<unsigned long long>(n));
        }
    }
};

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int range(const Args& a) {
    const auto started = std::chrono::steady_clock::now();
    Tally tally;
    for (std::uint64_t seed = a.seeds->first; seed <= a.seeds->second; ++seed) {
        const WorldOptions o = options_for(seed, a);
        tally.add(run_seed(o), o);
    }
    tally.print(seconds_since(started));
    return tally.failed == 0 ? 0 : 1;
}

int soak(const Args& a) {
    const auto started = std::chrono::steady_clock::now();
    const std::uint64_t start =
        a.start ? *a.start
                : static_cast<std::uint64_t>(
                      std::chrono::system_clock::now().time_since_epoch().count());
    std::printf("soak for %llu minutes; seeds drawn from --start %llu\n",
                static_cast<unsigned long long>(*a.soak_minutes),
                static_cast<unsigned long long>(start));
    spirit::topology::Prng seeds(start);
    Tally tally;
    std::uint64_t first = 0;
    std::uint64_t last = 0;
    while (seconds_since(started) < static_cast<double>(*a.soak_minutes) * 60.0) {
        const std::uint64_t seed = seeds.next();
        if (tally.runs == 0) first = seed;
        last = seed;
        const WorldOptions o = options_for(seed, a);
        tally.add(run_seed(o), o);
    }
    std::printf("seeds covered: the first %llu draws from --start %llu (first %llu, last %llu)\n",
                static_cast<unsigned long long>(tally.runs), static_cast<unsigned long long>(start),
                static_cast<unsigned long long>(first), static_cast<unsigned long long>(last));
    tally.print(seconds_since(started));
    return tally.failed == 0 ? 0 : 1;
}

int script(const Args& a) {
    const auto sink = a.trace ? print_line : nullptr;
    const ScriptResult r = a.figure8 ? run_figure8(a.mutations.rank_by_last_epoch, sink)
                                     : run_catch_up(a.mutations.slave_confirms_early, sink);
    std::printf("%s%s: %s\n", a.figure8 ? "figure 8" : "catch-up",
                a.mutations.any() ? (" (broken: " + a.mutations.text() + ")").c_str() : "",
                r.summary.c_str());
    const auto& vs = r.outcome.violations;
    for (std::size_t i = 0; i < vs.size() && i < 8; ++i) {
        std::printf("  t=%llu %s: %s\n", static_cast<unsigned long long>(vs[i].tick),
                    vs[i].invariant.c_str(), vs[i].message.c_str());
    }
    if (vs.size() > 8) std::printf("  ... and %zu more\n", vs.size() - 8);
    return r.outcome.ok() && r.on_script ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const Args a = parse(argc, argv);
    if (a.figure8 || a.catch_up) return script(a);
    if (a.seed) return replay(a);
    if (a.seeds) return range(a);
    if (a.soak_minutes) return soak(a);
    usage("say --seed, --seeds, --soak-minutes, --figure8 or --catch-up");
}
