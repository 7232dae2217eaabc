// tests/cluster/cluster_harness.h: N real spiritd processes on loopback,
// each with its own temp dir, identity key, client Unix socket and peer
// port, configured as one cluster whose members elect their master. A test
// that wants a given master asks for it (make_master: a leadership transfer
// through the real daemons). Every process is stopped by PID when the
// harness dies.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/envelope.h"
#include "tests/cluster/tcp_proxy.h"
#include "tests/integration/daemon_harness.h"
#include "tests/support/temp_dir.h"

namespace spirit::test {

// [[streams]] entries for tests: streams named imm.* are immediate with
// acks = "majority" (other streams are eventual).
inline constexpr const char* immediate_streams_toml = R"(
[[streams]]
pattern = "imm.>"
redundancy = "immediate"
acks = "majority"
)";

struct ClusterOptions {
    int nodes = 3;
    // Members that are witnesses (vote, hold no data), named after the data
    // nodes: node-a, node-b, then the witnesses.
    int witnesses = 0;
    // The master start_all() moves the group to ("": whoever is elected).
    std::string master = "node-a";
    std::uint32_t peer_timeout_ms = 1000;  // cluster.peer_timeout_ms of every node
    std::string extra_cluster_toml;        // added to every node's [cluster]
    std::string extra_toml;                // added to every node's config (after [cluster])
    bool metrics = false;                  // each node's [metrics] listen on a port of its own
    // A node (by index) whose every peer link runs through a TcpProxy, so
    // that cut() partitions it without pausing it; -1: none.
    int proxied = -1;
};

class Cluster {
 public:
    explicit Cluster(ClusterOptions options = {});

    Daemon& node(std::size_t index) { return *nodes_[index]; }
    Daemon& node(const std::string& id);
    std::size_t size() const { return nodes_.size(); }
    std::uint16_t peer_port(std::size_t index) const { return ports_[index]; }
    const std::vector<std::string>& ids() const { return ids_; }
    // A member's public key, and its key file.
    const std::string& public_key(std::size_t index) const { return keys_[index]; }
    std::filesystem::path key_file(std::size_t index) const;
    // Starts every node; then, if options.master is set, make_master(it).
    // The node's metrics listener (ClusterOptions::metrics); 0 without.
    std::uint16_t metrics_port(std::size_t index) const { return metrics_ports_[index]; }
    void start_all();
    // Waits until some node serves as master; if it is not `id`, asks `id`
    // to stand (spirit cluster set-master) and waits until it serves.
    // Returns the epoch it serves in.
    // `force`: also a node not caught up since its data dir was made.
    std::uint64_t make_master(const std::string& id, bool force = false,
                              std::chrono::milliseconds timeout = std::chrono::seconds(60));
    // The node whose status says it serves as master; nullopt if none does
    // now (nodes not running are skipped).
    std::optional<std::string> serving_master();
    // The proxied node loses (cut) or regains (heal) every peer link.
    // REQUIRES: options.proxied was set.
    void cut();
    void heal();
    // Waits until every node's `spirit status` reports all its peers connected.
    void wait_connected(std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
    ClusterOptions options_;
    TempDir key_dir_;
    std::vector<std::unique_ptr<Daemon>> nodes_;
    std::vector<std::string> ids_;
    std::vector<std::string> keys_;
    std::vector<std::uint16_t> ports_;
    std::vector<std::uint16_t> metrics_ports_;
    std::vector<std::unique_ptr<TcpProxy>> proxies_;
};

// Polls until `done()` or `timeout`; false on timeout.
bool wait_until(const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::seconds(30));

// `spirit status` of a node (REQUIREs an answer).
core::protocol::StatusReply status_of(const Daemon& daemon);

// Waits until `node`'s status says it is master and takes writes ("serving").
void wait_serving(const Daemon& daemon,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Every event of `stream` held by `daemon`, read from the first retained one
// to its last seq (each chain hash checked by the client).
std::vector<core::Envelope> read_all(const Daemon& daemon, const std::string& stream);

// Copies a stopped node's data dir (everything in it) to `to`, replacing it.
void copy_dir(const std::filesystem::path& from, const std::filesystem::path& to);

// A publish whose outcome a test checks later: the ids it carried, and its
// receipt or error.
struct Outcome {
    std::vector<core::EventId> ids;
    std::vector<std::string> payloads;
    std::optional<core::Result<net::PublishReceipt>> result;
    std::chrono::steady_clock::time_point answered;  // when `result` came (publish_until)
};

// Publishes `count` events with ids event_id(first_id + i), `batch` per
// publish, pipelined (at most `in_flight` at once); returns every outcome.
std::vector<Outcome> publish_with_ids(net::Client& client, const std::string& stream,
                                      std::uint64_t first_id, std::uint64_t count,
                                      std::size_t batch = 10, std::size_t in_flight = 16);

// Publishes events with ids event_id(first_id + i) through `client` in
// batches of 5, 8 in flight, until `stop`; returns every outcome. Made to
// run on a thread of its own beside the test: it uses no Catch2 macros
// (they are not thread-safe), and a publish with no answer within 30 s
// leaves its outcome empty (a hang the test then reports). Connect the
// client on the thread that starts that one (capture it): ThreadSanitizer
// sees a socket opened on one thread while another closes one of the same
// number as a race. `answered`, when set, is called on that thread with
// each outcome as it comes (for a test that watches the load live).
// `pause`: after each publish is sent, the client's loop runs this long
// before the next (a paced load; zero: as fast as 8 in flight allow).
std::vector<Outcome> publish_until(std::unique_ptr<net::Client> client, const std::string& stream,
                                   std::uint64_t first_id, const std::atomic<bool>& stop,
                                   const std::function<void(const Outcome&)>& answered = {},
                                   std::chrono::milliseconds pause = {});

// Checks that every acknowledged event of `outcomes` is in `events` exactly
// once, at the seq its receipt named (an `accepted` one at any seq), and
// that no id appears twice.
void check_acked_present(const std::vector<Outcome>& outcomes,
                         const std::vector<core::Envelope>& events);

// Every event `daemon` holds in quarantine, of every stream (all pages).
std::vector<core::Envelope> quarantined(const Daemon& daemon);

// Checks that no acknowledged event of `outcomes` is in `quarantine`.
void check_acked_not_quarantined(const std::vector<Outcome>& outcomes,
                                 const std::vector<core::Envelope>& quarantine);

// Waits until `daemon` names `master` as the master and its link to it is
// connected.
void wait_following(const Daemon& daemon, const std::string& master,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Polls `stream` on `daemon` until its last seq and hash equal the given
// ones; returns the stream's description as last seen.
core::protocol::StreamDescription wait_for_copy(const Daemon& daemon, const std::string& stream,
                                                core::Seq last_seq, const core::Digest& last_hash,
                                                std::chrono::milliseconds timeout);

}  // namespace spirit::test
