// The figure-8 schedule (scripts.h), step by step on an instant network
// and instant disks: partitions and operator transfers (World::stand) make
// each step's master the one the schedule names.
#include <fmt/format.h>

#include "tests/sim/script.h"

namespace spirit::sim {

namespace {

constexpr std::size_t a = 0, b = 1, c = 2, d = 3, e = 4;
constexpr std::uint64_t id_first = 1, id_x = 2, id_y = 3;
constexpr std::uint64_t ticks_max = Script::ticks_max;

// 1 and 2: a masters e1, writes seq 1 everywhere, then X on a and b only.
bool old_master_writes_on_two(Script& s) {
    if (!s.elect(a)) return false;
    s.w.publish(a, imm, id_first);
    if (!s.expect(s.w.run_until([&] { return s.w.acked(id_first); }, ticks_max),
                  "seq 1 was not acked")) {
        return false;
    }
    s.w.run_ticks(5);
    for (std::size_t n : {c, d, e}) s.cut_both(a, n);
    s.w.trace("script: a is cut off from c, d, e and writes X at seq 2");
    s.w.publish(a, imm, id_x);
    const bool two = s.w.run_until(
        [&] { return s.durable_seq(a) == Seq{2} && s.durable_seq(b) == Seq{2}; }, ticks_max);
    if (!s.expect(two && !s.w.acked(id_x), "X is not on exactly a and b, unacked")) return false;
    s.w.crash(a);
    return true;
}

// 3: c masters a higher epoch with d and e, then writes Y on its own copy only.
bool second_master_writes_on_one(Script& s) {
    s.w.heal();
    for (std::size_t n : {c, d, e}) s.cut_both(b, n);
    s.w.trace("script: b is cut off; c stands with d and e");
    if (!s.elect(c)) return false;
    s.w.isolate(c);
    s.w.trace("script: c is cut off and writes Y at seq 2");
    s.w.publish(c, imm, id_y);
    if (!s.expect(s.w.run_until([&] { return s.durable_seq(c) == Seq{2}; }, ticks_max),
                  "Y is not durable on c")) {
        return false;
    }
    s.w.crash(c);
    return true;
}

// 4: a returns, masters with b and d, and the retry of X is acked.
bool first_returns_and_acks_retry(Script& s) {
    s.w.heal();
    s.w.isolate(e);
    s.w.restart(a);
    s.w.trace("script: a restarts; e is cut off; a stands with b and d");
    if (!s.elect(a)) return false;
    s.w.publish(a, imm, id_x);
    return s.expect(s.w.run_until([&] { return s.w.acked(id_x); }, ticks_max),
                    "the retry of X was not acked");
}

// 5: a crashes; c returns and stands with d and e.
void other_seq_two_stands(Script& s) {
    s.w.crash(a);
    s.w.heal();
    for (std::size_t n : {c, d, e}) s.cut_both(b, n);
    s.w.restart(c);
    s.w.trace("script: a crashes; c restarts; b is cut off; c stands with d and e");
    (void)s.elect(c);
}

}  // namespace

ScriptResult run_figure8(bool rank_by_last_epoch,
                         const std::function<void(const std::string&)>& sink) {
    WorldOptions o = script_options(8, Shape::five_data);
    o.mutations.rank_by_last_epoch = rank_by_last_epoch;
    World w(o);
    if (sink) w.trace().set_sink(sink);
    w.set_publishing(false);
    Script s{w, {}};
    if (old_master_writes_on_two(s) && second_master_writes_on_one(s) &&
        first_returns_and_acks_retry(s)) {
        other_seq_two_stands(s);
        w.heal();
        w.run_ticks(60);
        w.report(w.checkers().final_copies());
    }
    return s.result("an acknowledged write was lost", "nothing acknowledged was lost");
}

}  // namespace spirit::sim
