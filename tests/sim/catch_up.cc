// The catch-up schedule (scripts.h): when a slave may record its master's
// epoch as confirmed. Messages take one tick, disks are instant, so the
// script can cut c off between its first frames and the rest.
#include <fmt/format.h>

#include "tests/sim/script.h"

namespace spirit::sim {

namespace {

constexpr std::size_t a = 0, b = 1, c = 2;
constexpr std::uint64_t events = 100;

// 1: c is cut off; a masters e1 and writes 100 imm events on a and b.
bool first_master_writes_on_two(Script& s) {
    s.w.isolate(c);
    s.w.trace("script: c is cut off; a stands with b and writes 100 events");
    if (!s.elect(a)) return false;
    for (std::uint64_t id = 1; id <= events; ++id) s.w.publish(a, imm, id);
    return s.expect(s.w.run_until([&] { return s.w.acked(events); }, Script::ticks_max),
                    "the 100 events were not acked");
}

// 2: a crashes; b masters e2 with c, which gets its first frames only.
bool second_master_pushes_a_little(Script& s) {
    s.w.heal();
    s.w.crash(a);
    s.w.trace("script: a crashes; b stands with c");
    if (!s.elect(b, false)) return false;
    if (!s.expect(s.w.run_until([&] { return s.durable_seq(c) > Seq{0}; }, Script::ticks_max),
                  "c got nothing from b")) {
        return false;
    }
    s.w.isolate(c);
    s.w.trace(fmt::format("script: c is cut off at seq {} of b's {}; b crashes",
                          s.durable_seq(c).value(), events));
    s.w.crash(b);
    return s.expect(s.durable_seq(c) < Seq{events}, "c caught up before it was cut off");
}

// 3: a comes back and masters e3 with c.
void first_returns(Script& s) {
    s.w.heal();
    s.w.restart(a);
    s.w.trace("script: a restarts and stands with c");
    (void)s.elect(a);
    s.w.restart(b);
    s.w.run_ticks(60);
    s.w.report(s.w.checkers().final_copies());
}

}  // namespace

ScriptResult run_catch_up(bool slave_confirms_early,
                          const std::function<void(const std::string&)>& sink) {
    WorldOptions o = script_options(5, Shape::three_data);
    o.faults.network = NetworkFaults{1, 1, 0, 0};
    o.mutations.slave_confirms_early = slave_confirms_early;
    World w(o);
    if (sink) w.trace().set_sink(sink);
    w.set_publishing(false);
    Script s{w, {}};
    if (first_master_writes_on_two(s) && second_master_pushes_a_little(s)) first_returns(s);
    return s.result("an acknowledged write was lost", "nothing acknowledged was lost");
}

}  // namespace spirit::sim
