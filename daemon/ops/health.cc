#include "daemon/ops/health.h"

#include <fmt/format.h>

namespace spirit::daemon::ops {

Readiness readiness(const HealthInputs& in) {
    auto not_ready = [](std::string why) { return Readiness{false, std::move(why)}; };
    if (in.storage_error) return not_ready("the store refuses writes: " + *in.storage_error);
    if (!in.in_cluster) return Readiness{true, ""};
    const std::size_t majority = in.group_size / 2 + 1;
    if (1 + in.peers_linked < majority) {
        return not_ready(fmt::format("{} of {} nodes reachable (a majority is {})",
                                     1 + in.peers_linked, in.group_size, majority));
    }
    if (!in.master) return not_ready("no master is known (" + in.state + ")");
    if (in.role == "master") {
        if (!in.serving) return not_ready("the master is completing its streams: " + in.state);
        return Readiness{true, ""};
    }
    if (!in.master_linked) return not_ready("the master " + *in.master + " is unreachable");
    if (!in.caught_up) return not_ready("catching up with the master " + *in.master);
    return Readiness{true, ""};
}

}  // namespace spirit::daemon::ops
