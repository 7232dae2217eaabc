// tests/sim/script.h: what the scripted schedules (scripts.h) share: a
// World with no random faults or clients, driven step by step, and a
// record of the first step that did not happen as the script says.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <string>

#include "tests/sim/master.h"
#include "tests/sim/scripts.h"
#include "tests/sim/world.h"

namespace spirit::sim {

struct Script {
    World& w;
    std::string off;  // why the run left the script ("" while on it)
    static constexpr std::uint64_t ticks_max = 200;

    bool expect(bool ok, const std::string& what) {
        if (!ok && off.empty()) off = what;
        return ok;
    }
    bool serving(std::size_t n) const {
        return w.node(n).up() && w.node(n).master() != nullptr && w.node(n).master()->serving();
    }
    bool takes_imm(std::size_t n) const { return serving(n) && w.node(n).master()->writable(imm); }
    void cut_both(std::size_t x, std::size_t y) {
        w.cut(x, y);
        w.cut(y, x);
    }
    // `n` learns the epochs it missed, then stands and masters a new epoch
    // (and, if `writes`, takes imm writes).
    bool elect(std::size_t n, bool writes = true) {
        w.run_ticks(3);
        w.stand(n);
        return expect(w.run_until([&] { return writes ? takes_imm(n) : serving(n); }, ticks_max),
                      fmt::format("{} did not become a serving master", w.node(n).id().value()));
    }
    Seq durable_seq(std::size_t n) const { return w.node(n).durable(imm).last_seq(); }

    ScriptResult result(const std::string& lost, const std::string& kept) {
        ScriptResult r;
        r.outcome = w.outcome();
        r.on_script = off.empty();
        const bool loss =
            std::any_of(r.outcome.violations.begin(), r.outcome.violations.end(),
                        [](const Violation& v) { return v.invariant == "acked-imm-kept"; });
        r.summary = !r.on_script ? "off script: " + off : loss ? lost : kept;
        return r;
    }
};

// Options of a scripted world: no random faults, no random clients.
inline WorldOptions script_options(std::uint64_t seed, Shape shape) {
    WorldOptions o;
    o.seed = seed;
    o.shape = shape;
    o.publish_permille = 0;
    o.stop_on_first = false;
    return o;
}

}  // namespace spirit::sim
