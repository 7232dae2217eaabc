// daemon/cli/topology_format.h: how `spirit topology` prints a
// TopologyReply (lines and tables for people, one JSON object for scripts)
// and how `spirit topology --follow` prints each `$topology` event (one line,
// or one JSON object). docs/topology.md, "Reading spirit topology", lists
// every field. Pure functions, unit-tested (tests/daemon/topology_format_test.cc).
#pragma once

#include <string>

#include "core/protocol.h"
#include "core/topology_event.h"

namespace spirit::daemon::cli {

// The lines, each ending in a newline:
//   node            node-b (slave, epoch 7)
//   master          node-a
//   state           following node-a
//   group           default: master node-a, elected in epoch 7
//
//   MEMBER          ROLE     ADDRESS                HEARD     INCARNATION  VOTED  LINK
//   node-a          data     127.0.0.1:7801         12 ms     2            7      connected
//   ...
//
//   POSITIONS       the master's view of every copy (6)
//   STREAM          NODE            SEQ          CONFIRMED  LAG          STATE
//   orders          node-a          1000         7          0            master
//   ...
//
//   $topology       42 events, 0 refused
//   node-a          ~0123456789abcdef  15 events, the last at 2026-...Z
std::string topology_text(const core::protocol::TopologyReply& t);

// One JSON object, without a newline.
std::string topology_json(const core::protocol::TopologyReply& t);

// One `$topology` event as stored at `seq` of this node's `$topology`
// stream, without a newline:
//   text  "     7  2026-...Z  node-b/3  master_elected  group=default epoch=4 voters=node-a,node-b"
//   json  {"seq":7,"ts":"2026-...Z","author":"node-b","instance":"0123456789abcdef",
//          "author_seq":3,"kind":"master_elected","group":"default","epoch":4,
//          "voters":["node-a","node-b"]}
std::string topology_event_text(core::Seq seq, const core::TopologyEvent& event);
std::string topology_event_json(core::Seq seq, const core::TopologyEvent& event);

}  // namespace spirit::daemon::cli
