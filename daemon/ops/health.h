// daemon/ops/health.h: whether a node is ready to serve, as /ready and
// `spirit status` say it: a pure function of what the loop thread sees.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace spirit::daemon::ops {

// What readiness depends on, sampled on the loop thread.
struct HealthInputs {
    std::optional<std::string> storage_error;  // set once the store refuses writes
    bool in_cluster = false;
    std::string role;                   // "single", "master", "slave", "witness", "electing"
    std::string state;                  // the cluster's state text (for the detail)
    std::optional<std::string> master;  // the master this node knows
    bool serving = false;               // a master: completed, taking writes
    bool master_linked = false;         // a slave: its link to the master is up
    bool caught_up = false;             // a slave: the master said its copies caught up
    std::size_t group_size = 1;         // nodes in the group, this one included
    std::size_t peers_linked = 0;
};

struct Readiness {
    bool ready = false;
    std::string detail;  // why not; "" when ready
};

// Ready when the store accepts writes and, in a cluster, a majority of the
// group is reachable, a master is known and: this node, if master, has
// completed its streams (it takes writes); if slave, is linked to the
// master and the master said its copies have caught up.
Readiness readiness(const HealthInputs& in);

}  // namespace spirit::daemon::ops
