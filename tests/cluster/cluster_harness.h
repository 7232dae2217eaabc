// tests/cluster/cluster_harness.h: N real spiritd processes on loopback,
// each with its own temp dir, client Unix socket and peer port, configured
// as one cluster with a fixed master. Every process is stopped by PID when
// the harness dies.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/integration/daemon_harness.h"

namespace spirit::test {

struct ClusterOptions {
    int nodes = 3;
    std::string master = "node-a";
    std::string extra_cluster_toml;       // added to every node's [cluster]
    std::string extra_toml;               // added to every node's config (after [cluster])
    std::vector<std::string> master_env;  // NAME=VALUE for the master's process only
};

class Cluster {
 public:
    explicit Cluster(ClusterOptions options = {});

    Daemon& node(std::size_t index) { return *nodes_[index]; }
    Daemon& node(const std::string& id);
    std::size_t size() const { return nodes_.size(); }
    std::uint16_t peer_port(std::size_t index) const { return ports_[index]; }
    void start_all();
    // Waits until every node's `spirit status` reports all its peers connected.
    void wait_connected(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
    std::vector<std::unique_ptr<Daemon>> nodes_;
    std::vector<std::string> ids_;
    std::vector<std::uint16_t> ports_;
};

// Polls `stream` on `daemon` until its last seq and hash equal the given
// ones; returns the stream's description as last seen.
core::protocol::StreamDescription wait_for_copy(const Daemon& daemon, const std::string& stream,
                                                core::Seq last_seq, const core::Digest& last_hash,
                                                std::chrono::milliseconds timeout);

}  // namespace spirit::test
