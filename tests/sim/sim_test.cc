// The deterministic simulator's tests (tests/sim/world.h). What they prove:
// - Random runs: thousands of seeds, each drawing its cluster shape, its
//   faults (partitions of five kinds, loss, duplication, delays, crashes,
//   restarts, pauses, clock skew and jumps, slow disks) and its client
//   load, keep every invariant of checkers.h after every step, and in the
//   final liveness phase elect a master, complete the streams and converge.
//   The seed range is split into chunks so ctest runs them in parallel;
//   sanitizer builds run a tenth. Every seed of seeds.txt runs too.
// - Replay: the same seed gives the same run, byte for byte (the digest of
//   the whole trace).
// - Mutations: each invariant catches a rule broken on purpose. Breaking
//   both vote rules (two votes per epoch, any candidate in any epoch) makes
//   two masters of one epoch, and breaking either alone does not (ballots
//   and single votes each suffice); no check-quorum lets a stale master
//   keep acknowledging; completing from too few copies loses an acked
//   write; ranking copies by their last event's epoch loses one on the
//   figure-8 schedule, where (confirmed epoch, seq) loses none; a slave
//   that exposes unconfirmed events shows consumers an event later
//   quarantined.
// A failure prints the seed, tick, invariant, last trace lines and the
// replay command (spirit_sim --seed N --trace).
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "tests/sim/runner.h"
#include "tests/sim/scripts.h"

using namespace spirit::sim;

namespace {

// A sanitizer build (Debug, ASan+UBSan or TSan) runs a seed about a hundred
// times slower: it runs a fiftieth of the seeds, and fewer mutation runs.
#ifdef SPIRIT_SANITIZED
constexpr std::uint64_t random_seeds = 40;
constexpr std::uint64_t mutation_seeds_clean = 5;
#else
constexpr std::uint64_t random_seeds = 2000;
constexpr std::uint64_t mutation_seeds_clean = 30;
#endif
constexpr std::uint64_t chunks = 8;

// Runs `options` and fails the test case (but not at once) if it broke an invariant.
bool check_run(const WorldOptions& options) {
    const Outcome out = run_seed(options);
    if (out.ok()) return true;
    FAIL_CHECK(failure_report(out, options));
    return false;
}

void run_chunk(std::uint64_t chunk) {
    const std::uint64_t first = 1 + chunk * random_seeds / chunks;
    const std::uint64_t last = (chunk + 1) * random_seeds / chunks;
    std::uint64_t failed = 0;
    for (std::uint64_t seed = first; seed <= last; ++seed) {
        if (!check_run(swarm_options(seed))) ++failed;
    }
    INFO("seeds " << first << ".." << last);
    CHECK(failed == 0);
}

// Runs seeds 1..count with `mutations` (options from `options_of`) until one
// breaks `invariant`; returns that seed, or 0 if none did.
std::uint64_t first_violating(const Mutations& mutations, const std::string& invariant,
                              std::uint64_t count, WorldOptions (*options_of)(std::uint64_t)) {
    for (std::uint64_t seed = 1; seed <= count; ++seed) {
        WorldOptions o = options_of(seed);
        o.mutations = mutations;
        o.stop_on_first = false;  // another checker may fire first
        if (violates(run_seed(o), invariant)) return seed;
    }
    return 0;
}

// A mutation shows in some seed of 1..count; the replay command of the first.
void expect_caught(const Mutations& mutations, const std::string& invariant, std::uint64_t count,
                   WorldOptions (*options_of)(std::uint64_t), const char* profile = "") {
    const std::uint64_t seed = first_violating(mutations, invariant, count, options_of);
    INFO("broken: " << mutations.text() << "; expected: " << invariant);
    CHECK(seed != 0);
    if (seed != 0) {
        INFO("spirit_sim --seed " << seed << profile << " --keep-going --break "
                                  << mutations.text());
        SUCCEED("caught");
    }
}

}  // namespace

TEST_CASE("random seeds keep every invariant, chunk 1 of 8", "[sim]") {
    run_chunk(0);
}
TEST_CASE("random seeds keep every invariant, chunk 2 of 8", "[sim]") {
    run_chunk(1);
}
TEST_CASE("random seeds keep every invariant, chunk 3 of 8", "[sim]") {
    run_chunk(2);
}
TEST_CASE("random seeds keep every invariant, chunk 4 of 8", "[sim]") {
    run_chunk(3);
}
TEST_CASE("random seeds keep every invariant, chunk 5 of 8", "[sim]") {
    run_chunk(4);
}
TEST_CASE("random seeds keep every invariant, chunk 6 of 8", "[sim]") {
    run_chunk(5);
}
TEST_CASE("random seeds keep every invariant, chunk 7 of 8", "[sim]") {
    run_chunk(6);
}
TEST_CASE("random seeds keep every invariant, chunk 8 of 8", "[sim]") {
    run_chunk(7);
}

TEST_CASE("every pinned seed of seeds.txt keeps every invariant", "[sim]") {
    const auto pinned = read_pinned_seeds(SPIRIT_SIM_SEEDS);
    REQUIRE_FALSE(pinned.empty());
    for (const PinnedSeed& p : pinned) {
        INFO("seed " << p.seed << ": " << p.why);
        CHECK(check_run(swarm_options(p.seed)));
    }
}

TEST_CASE("the same seed gives the same run, byte for byte", "[sim]") {
    for (std::uint64_t seed : {3u, 17u, 101u}) {
        std::string first_trace;
        std::string second_trace;
        const Outcome first = run_seed(
            swarm_options(seed), [&](const std::string& line) { first_trace += line + "\n"; });
        const Outcome second = run_seed(
            swarm_options(seed), [&](const std::string& line) { second_trace += line + "\n"; });
        INFO("seed " << seed);
        CHECK(first.digest == second.digest);
        CHECK(first_trace == second_trace);
        CHECK(first.ticks == second.ticks);
        CHECK(first.acks == second.acks);
        CHECK(first.faults == second.faults);
    }
}

TEST_CASE("two votes per epoch and any candidate in any epoch make two masters of one epoch",
          "[sim][mutation]") {
    Mutations both;
    both.broken.votes_twice_per_epoch = true;
    both.broken.any_candidate_any_epoch = true;
    // Runs where the first election happens under a bridge partition: two
    // sides that do not hear each other stand at once, the bridge hears both.
    expect_caught(both, "one-master-per-epoch", 30, election_storm_options, " --storm");
}

TEST_CASE("either vote rule alone keeps one master per epoch", "[sim][mutation]") {
    Mutations twice;
    twice.broken.votes_twice_per_epoch = true;
    CHECK(first_violating(twice, "one-master-per-epoch", mutation_seeds_clean,
                          election_storm_options) == 0);
    Mutations any;
    any.broken.any_candidate_any_epoch = true;
    CHECK(first_violating(any, "one-master-per-epoch", mutation_seeds_clean,
                          election_storm_options) == 0);
}

TEST_CASE("without check-quorum a stale master keeps acknowledging", "[sim][mutation]") {
    Mutations m;
    m.broken.no_check_quorum = true;
    expect_caught(m, "stale-master-silent", 40, swarm_options);
}

TEST_CASE("completing from too few copies loses an acknowledged immediate write",
          "[sim][mutation]") {
    Mutations m;
    m.completion_from_self = true;
    expect_caught(m, "acked-imm-kept", 40, swarm_options);
}

TEST_CASE("a slave exposing unconfirmed events shows an event later quarantined",
          "[sim][mutation]") {
    Mutations m;
    m.slave_exposes_unconfirmed = true;
    expect_caught(m, "exposed-not-quarantined", 60, swarm_options);
}

namespace {

std::string script_report(const ScriptResult& r, const std::string& replay) {
    std::string out = r.summary + "\n";
    for (const Violation& v : r.outcome.violations) {
        out += "  t=" + std::to_string(v.tick) + " " + v.invariant + ": " + v.message + "\n";
    }
    out += "the last trace lines:\n";
    for (const std::string& line : r.outcome.last_trace) out += "  " + line + "\n";
    out += "replay: " + replay + "\n";
    return out;
}

}  // namespace

TEST_CASE("figure 8: (confirmed epoch, seq) loses nothing, the last event's epoch loses a write",
          "[sim][mutation]") {
    const ScriptResult right = run_figure8(false);
    INFO(script_report(right, "spirit_sim --figure8 --trace"));
    CHECK(right.on_script);
    CHECK(right.outcome.ok());
    const ScriptResult wrong = run_figure8(true);
    INFO(script_report(wrong, "spirit_sim --figure8 --trace --break rank-by-last-epoch"));
    CHECK(wrong.on_script);
    CHECK(violates(wrong.outcome, "acked-imm-kept"));
}

TEST_CASE("a slave that confirms an epoch before it holds the master's history loses a write",
          "[sim][mutation]") {
    const ScriptResult right = run_catch_up(false);
    INFO(script_report(right, "spirit_sim --catch-up --trace"));
    CHECK(right.on_script);
    CHECK(right.outcome.ok());
    const ScriptResult wrong = run_catch_up(true);
    INFO(script_report(wrong, "spirit_sim --catch-up --trace --break slave-confirms-early"));
    CHECK(wrong.on_script);
    CHECK(violates(wrong.outcome, "acked-imm-kept"));
}
