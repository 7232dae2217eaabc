// tests/sim/scripts.h: schedules scripted step by step (not drawn at
// random) because each needs a precise order of events to show a rule.
//
// run_figure8: the schedule of Raft's "figure 8" on five data nodes a..e
// (n1..n5):
//   1. a masters epoch e1 and writes seq 1 everywhere (acked);
//   2. cut off from c, d, e, a writes X at seq 2 on a and b only (not
//      acked: imm needs 3 of 5), then crashes;
//   3. c masters a higher epoch with d and e (b is cut off), completes at
//      seq 1, and, cut off in turn, writes Y at seq 2 on its own copy
//      only, then crashes;
//   4. a comes back and masters a higher epoch still with b and d (e is
//      cut off), completes, and confirms its epoch on a majority without a
//      new event; the client's retry of X is then acked;
//   5. a crashes; c comes back and stands with d and e (b is cut off).
// Ranking copies by (confirmed epoch, seq), a adopts d's copy in step 4
// (confirmed in c's epoch), cuts X into quarantine and acks the retry as a
// new event; in step 5 d's copy (confirmed in a's second epoch) outranks
// c's and c cuts Y: nothing acked is lost. Ranking by the last event's
// epoch, a keeps X (epoch e1, seq 2 beats seq 1) and acks the retry there;
// in step 5 c's Y (epoch of c) outranks X (epoch e1) and the acked write is
// lost: checker acked-imm-kept fires.
#pragma once

#include <functional>
#include <string>

#include "tests/sim/world.h"

namespace spirit::sim {

//
// run_catch_up: when may a slave record a new epoch as confirmed? Three
// data nodes a, b, c:
//   1. c is cut off; a masters e1 and writes 100 imm events on a and b
//      (acked: 2 of 3);
//   2. a crashes; b masters e2 with c (c's copy is empty), completes at
//      seq 100, and pushes; c is cut off again after its first frames (80
//      events), then b crashes;
//   3. a comes back and masters e3 with c.
// A slave that records e2 as confirmed as soon as it appends from b (or is
// cut by b) reports (e2, 80), which outranks a's (e1, 100): a cuts events
// 81..100, all acked, into quarantine. A slave that records e2 only once it
// holds b's history (its copy at completion, seq 100) reports (e1, 80): a
// keeps its copy and c catches up. Nothing acked is lost.
struct ScriptResult {
    Outcome outcome;
    bool on_script = false;  // every step happened as the schedule says
    std::string summary;
};

ScriptResult run_figure8(bool rank_by_last_epoch,
                         const std::function<void(const std::string&)>& sink = {});
ScriptResult run_catch_up(bool slave_confirms_early,
                          const std::function<void(const std::string&)>& sink = {});

}  // namespace spirit::sim
