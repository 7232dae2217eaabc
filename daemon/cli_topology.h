// daemon/cli_topology.h: the spirit commands about the cluster's members:
// `spirit keygen` (a node identity key file) and `spirit topology` (what a
// node knows of members, masters and copies; --follow decodes `$topology`
// as it grows; docs/topology.md, "Reading spirit topology").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "daemon/cli_common.h"

namespace spirit::daemon::cli {

// Their arguments, and which ran.
struct TopologyCommands {
    std::string out = "node.key";
    CLI::App* keygen_cmd = nullptr;
    struct {
        bool json = false;
        bool follow = false;
        bool from_now = false;  // --follow: only events appended from now on
        FollowLimits limits;    // --follow: --count, --idle-exit-ms
    } topology;
    CLI::App* topology_cmd = nullptr;
};

// REQUIRES: `c` outlives the parse of `app` (CLI11 writes into it).
void add_topology_commands(CLI::App& app, TopologyCommands& c);
// The exit code of the command that was parsed; nullopt if none was.
std::optional<int> run_topology_command(const Global& g, const TopologyCommands& c);

}  // namespace spirit::daemon::cli
