#include "tests/cluster/cluster_harness.h"

#include <catch2/catch.hpp>
#include <thread>

#include <fmt/format.h>

namespace spirit::test {

Cluster::Cluster(ClusterOptions options) {
    std::vector<std::uint16_t> ports;
    for (int i = 0; i < options.nodes; ++i) {
        ids_.push_back(fmt::format("node-{}", static_cast<char>('a' + i)));
        ports.push_back(free_tcp_port());
    }
    for (int i = 0; i < options.nodes; ++i) {
        std::string toml = fmt::format(
            "[cluster]\nname = \"test\"\nlisten = \"127.0.0.1:{}\"\nmaster = \"{}\"\n"
            "heartbeat_ms = 100\npeer_timeout_ms = 1000\nreconnect_ms_min = 20\n"
            "reconnect_ms_max = 300\nack_timeout_ms = 2000\n{}\n",
            ports[static_cast<std::size_t>(i)], options.master, options.extra_cluster_toml);
        for (int j = 0; j < options.nodes; ++j) {
            if (j == i) continue;
            toml +=
                fmt::format("[[cluster.peers]]\nid = \"{}\"\naddress = \"127.0.0.1:{}\"\n",
                            ids_[static_cast<std::size_t>(j)], ports[static_cast<std::size_t>(j)]);
        }
        toml += options.extra_toml;
        DaemonOptions daemon{.node_id = ids_[static_cast<std::size_t>(i)], .extra_toml = toml};
        if (ids_[static_cast<std::size_t>(i)] == options.master) daemon.env = options.master_env;
        nodes_.push_back(std::make_unique<Daemon>(daemon));
    }
    ports_ = ports;
}

Daemon& Cluster::node(const std::string& id) {
    for (std::size_t i = 0; i < ids_.size(); ++i) {
        if (ids_[i] == id) return *nodes_[i];
    }
    FAIL("no node " << id);
    return *nodes_[0];
}

void Cluster::start_all() {
    for (auto& n : nodes_) n->start();
}

void Cluster::wait_connected(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (auto& n : nodes_) {
        while (true) {
            auto client = n->client();
            auto s = client->status();
            REQUIRE(s);
            bool all = !s->peers.empty();
            for (const auto& p : s->peers) all = all && p.connected;
            if (all) break;
            if (std::chrono::steady_clock::now() > deadline) {
                FAIL("peers of " << s->node_id << " not all connected:\n" << n->log());
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
}

core::protocol::StreamDescription wait_for_copy(const Daemon& daemon, const std::string& stream,
                                                core::Seq last_seq, const core::Digest& last_hash,
                                                std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    core::protocol::StreamDescription d;
    auto client = daemon.client();
    while (std::chrono::steady_clock::now() < deadline) {
        auto info = client->stream_info(stream);
        if (info) {
            d = *info;
            if (d.last_seq == last_seq && d.last_hash == last_hash) return d;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("stream " << stream << " did not reach seq " << last_seq.value() << " (at "
                   << d.last_seq.value() << ")\n"
                   << daemon.log());
    return d;
}

}  // namespace spirit::test
