// Run options (options.h): the swarm draw of a seed, the election-storm
// profile, and the names of the broken rules.
#include "tests/sim/options.h"

#include <fmt/format.h>

#include <utility>
#include <vector>

#include "topology/prng.h"

namespace spirit::sim {

namespace {

struct MutationName {
    const char* name;
    bool Mutations::*flag;
    bool topology::BrokenRules::*broken;
};

const std::vector<MutationName>& mutation_names() {
    static const std::vector<MutationName> names{
        {"votes-twice", nullptr, &topology::BrokenRules::votes_twice_per_epoch},
        {"any-candidate", nullptr, &topology::BrokenRules::any_candidate_any_epoch},
        {"no-check-quorum", nullptr, &topology::BrokenRules::no_check_quorum},
        {"completion-from-self", &Mutations::completion_from_self, nullptr},
        {"rank-by-last-epoch", &Mutations::rank_by_last_epoch, nullptr},
        {"slave-exposes-unconfirmed", &Mutations::slave_exposes_unconfirmed, nullptr},
        {"slave-confirms-early", &Mutations::slave_confirms_early, nullptr},
    };
    return names;
}

bool& flag_of(Mutations& m, const MutationName& n) {
    return n.flag != nullptr ? m.*(n.flag) : m.broken.*(n.broken);
}

// A chance in thousandths: zero half the time (swarm testing: each fault
// kind is off in some runs, so the others get room), else up to `max`.
std::uint64_t maybe(topology::Prng& prng, std::uint64_t max) {
    return prng.uniform(0, 1) == 0 ? 0 : prng.uniform(1, max);
}

}  // namespace

const char* shape_name(Shape shape) {
    switch (shape) {
        case Shape::three_data:
            return "3 data";
        case Shape::five_data:
            return "5 data";
        case Shape::two_data_witness:
            return "2 data + witness";
    }
    return "?";
}

const char* partition_name(std::uint8_t kind) {
    static constexpr const char* names[] = {"split", "one-way", "bridge", "isolate", "flap"};
    return kind < partition_kinds ? names[kind] : "?";
}

bool Mutations::any() const {
    return !text().empty();
}

std::string Mutations::text() const {
    std::string out;
    Mutations copy = *this;
    for (const MutationName& n : mutation_names()) {
        if (flag_of(copy, n)) out += (out.empty() ? "" : ",") + std::string(n.name);
    }
    return out;
}

bool parse_mutations(const std::string& text, Mutations& out) {
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        const std::string name = text.substr(start, end - start);
        bool found = false;
        for (const MutationName& n : mutation_names()) {
            if (name == n.name) {
                flag_of(out, n) = true;
                found = true;
            }
        }
        if (!found) return false;
        start = end + 1;
    }
    return true;
}

WorldOptions swarm_options(std::uint64_t seed) {
    WorldOptions o;
    o.seed = seed;
    topology::Prng prng(seed ^ 0x5eedf00d5eedf00dULL);
    o.shape = static_cast<Shape>(prng.uniform(0, 2));
    FaultPlan& f = o.faults;
    f.network.delay_min = 0;
    f.network.delay_max = prng.uniform(0, 4);
    f.network.loss_permille = maybe(prng, 80);
    f.network.dup_permille = maybe(prng, 50);
    for (std::uint8_t k = 0; k < partition_kinds; ++k) {
        if (prng.uniform(0, 1) == 1) f.partition_kinds |= 1u << k;
    }
    f.partition_permille = f.partition_kinds != 0 ? prng.uniform(5, 30) : 0;
    f.partition_ticks_max = prng.uniform(20, 200);
    f.crash_permille = maybe(prng, 15);
    f.down_max = o.shape == Shape::five_data ? prng.uniform(1, 3) : prng.uniform(1, 2);
    f.down_ticks_max = prng.uniform(10, 150);
    f.pause_permille = maybe(prng, 10);
    f.pause_ticks_max = prng.uniform(10, 60);
    f.jump_permille = maybe(prng, 10);
    f.jump_ticks_max = prng.uniform(5, 40);
    f.skew = prng.uniform(0, 1) == 1;
    f.disk_delay_max = prng.uniform(0, 3);
    f.slow_disk_permille = maybe(prng, 50);
    f.slow_disk_ticks_max = prng.uniform(5, 30);
    f.transfer_permille = maybe(prng, 5);
    o.safety_ticks = prng.uniform(500, 2500);
    o.publish_permille = prng.uniform(100, 1500);
    o.retry_permille = prng.uniform(0, 900);
    return o;
}

WorldOptions election_storm_options(std::uint64_t seed) {
    WorldOptions o = swarm_options(seed);
    FaultPlan& f = o.faults;
    f.network = NetworkFaults{1, 4, 0, 0};
    f.partition_kinds = (1u << partition_bridge) | (1u << partition_isolate);
    f.partition_permille = 40;
    f.partition_ticks_max = 40;
    f.crash_permille = 20;
    f.down_max = 1;
    f.down_ticks_max = 30;
    f.pause_permille = 0;
    f.jump_permille = 0;
    f.bridge_at_start = true;
    return o;
}

std::string describe(const WorldOptions& o) {
    const FaultPlan& f = o.faults;
    std::string kinds;
    for (std::uint8_t k = 0; k < partition_kinds; ++k) {
        if ((f.partition_kinds & (1u << k)) != 0) {
            kinds += (kinds.empty() ? "" : "+") + std::string(partition_name(k));
        }
    }
    return fmt::format(
        "seed {} shape {}, {} ticks: delay 0..{} loss {}/1000 dup {}/1000 partitions [{}] {}/1000 "
        "up to {} ticks; crash {}/1000 down<={} up to {} ticks; pause {}/1000 up to {}; "
        "jump {}/1000 up to {}; transfer {}/1000; skew {}; disk 0..{} slow {}/1000 up to {}; "
        "publish {}/1000 retry {}/1000{}",
        o.seed, shape_name(o.shape), o.safety_ticks, f.network.delay_max, f.network.loss_permille,
        f.network.dup_permille, kinds, f.partition_permille, f.partition_ticks_max,
        f.crash_permille, f.down_max, f.down_ticks_max, f.pause_permille, f.pause_ticks_max,
        f.jump_permille, f.jump_ticks_max, f.transfer_permille, f.skew ? "on" : "off",
        f.disk_delay_max, f.slow_disk_permille, f.slow_disk_ticks_max, o.publish_permille,
        o.retry_permille, o.mutations.any() ? "; broken: " + o.mutations.text() : "");
}

}  // namespace spirit::sim
