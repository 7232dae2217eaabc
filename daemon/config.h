// daemon/config.h: spiritd's configuration, read from a TOML file with
// toml++. Every key is validated: an unknown key, a wrong type or an
// impossible value stops start-up with an error naming the file, the line
// and the key. Defaults live here (member initialisers) and are mirrored,
// with every key explained, in conf/spirit.toml.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/identity.h"
#include "core/limits.h"
#include "core/result.h"
#include "core/stream_pattern.h"
#include "core/stream_policy.h"
#include "storage/store.h"
#include "topology/members.h"

namespace spirit::daemon {

// A host:port to listen on or connect to. IPv4 ("127.0.0.1:7700"), IPv6 in
// brackets ("[::1]:7700"), or a name ("localhost:7700").
struct HostPort {
    std::string host;
    std::uint16_t port = 0;
    friend bool operator==(const HostPort&, const HostPort&) = default;
};

// Parses "host:port"; errc::config_invalid naming the text. An IPv6 host is
// stored without its brackets.
[[nodiscard]] core::Result<HostPort> parse_host_port(std::string_view text);

// Per-stream defaults for streams whose name matches `pattern`, applied when
// a stream is created by its first publish. First match wins.
// Patterns are '.'-separated tokens: '*' matches exactly one token, '>' (last
// token only) matches one or more tokens; "orders.*" matches "orders.eu".
struct StreamDefaults {
    std::string pattern;
    core::StreamPolicy policy;
    friend bool operator==(const StreamDefaults&, const StreamDefaults&) = default;
};

struct Config {
    // Where the config was read from (for messages); empty for defaults.
    std::filesystem::path source;

    struct Node {
        std::string id = "node-1";  // 1..64 bytes of [A-Za-z0-9_.-]
        std::filesystem::path data_dir = "./data";
        // The node's Ed25519 identity (spirit keygen); required in a cluster.
        // spiritd refuses a file that others can read.
        std::filesystem::path key_file;
        friend bool operator==(const Node&, const Node&) = default;
    } node;

    struct Client {
        // TCP listener; disabled when unset (key absent or "").
        std::optional<HostPort> listen = HostPort{"127.0.0.1", 7700};
        // Unix socket listener; disabled when empty. Relative paths are
        // relative to the working directory.
        std::filesystem::path unix_socket = "./data/spirit.sock";
        // Client tokens with every right. With neither tokens nor grants,
        // no token is needed.
        std::vector<std::string> tokens;
        // Tokens with rights limited to streams matching patterns.
        struct Grant {
            std::string token;
            std::vector<std::string> publish;    // patterns it may publish to
            std::vector<std::string> subscribe;  // patterns it may subscribe to (and ack)
            bool admin = false;                  // stream create and delete, verify
            friend bool operator==(const Grant&, const Grant&) = default;
        };
        std::vector<Grant> grants;
        bool requires_token() const { return !tokens.empty() || !grants.empty(); }
        friend bool operator==(const Client&, const Client&) = default;
    } client;

    struct Limits {
        std::uint32_t connections_max = 1024;
        std::uint64_t frame_bytes_max = core::limits::frame_bytes_max;    // <= compile-time max
        std::uint32_t batch_events_max = core::limits::batch_events_max;  // <= compile-time max
        std::uint32_t subscriptions_per_connection_max = 64;
        // Bytes queued for sending on one connection before its
        // subscriptions pause (their catch-up reads wait for the socket).
        std::uint64_t pending_bytes_per_connection_max = std::uint64_t{8} << 20;
        // Bytes of publishes of one connection waiting for their acks before
        // the daemon stops reading from it (back-pressure, not an error).
        std::uint64_t publish_bytes_in_flight_max = std::uint64_t{32} << 20;
        // Time a new connection has to send Hello.
        std::uint32_t hello_timeout_ms = 5000;
        friend bool operator==(const Limits&, const Limits&) = default;
    } limits;

    struct Storage {
        storage::SyncMode sync = storage::SyncMode::always;
        std::uint32_t sync_period_ms = 100;                 // 1..60000; used by sync = "periodic"
        std::uint64_t map_bytes = std::uint64_t{16} << 30;  // 1 MiB .. 1 TiB
        std::uint64_t preallocate_bytes = std::uint64_t{8} << 20;  // 0 .. 1 GiB
        std::uint64_t dedup_window_ms = 120'000;                   // 1 .. 86'400'000
        std::uint64_t dedup_events_max = 500'000;                  // 1..100'000'000
        friend bool operator==(const Storage&, const Storage&) = default;
    } storage;

    struct Log {
        std::string level = "info";  // trace, debug, info, warn, error
        friend bool operator==(const Log&, const Log&) = default;
    } log;

    // The operations listener (daemon/ops/): Prometheus metrics at
    // /metrics, and /health and /ready for supervisors and load balancers.
    struct Metrics {
        // HTTP listener; off when unset (key absent or "").
        std::optional<HostPort> listen;
        // Streams that get series of their own in per-stream metrics, the
        // first ones seen; the others are summed under stream="_other".
        std::uint32_t stream_labels_max = 100;  // 0..10000
        // Durable consumers (consumer and stream) with a lag series of their
        // own, the slowest; the others are summed under consumer="_other".
        std::uint32_t consumer_labels_max = 100;  // 0..10000
        // /health fails once the event loop has not turned for this long.
        std::uint32_t health_stall_ms = 5000;  // 1000..600000
        friend bool operator==(const Metrics&, const Metrics&) = default;
    } metrics;

    std::vector<StreamDefaults> streams;

    // A cluster: every member, this node included. Without members the
    // node runs alone.
    struct Member {
        std::string id;              // its node.id
        HostPort address;            // its cluster.listen
        core::PublicKey public_key;  // of its key file (spirit keygen prints it)
        topology::MemberRole role = topology::MemberRole::data;
        friend bool operator==(const Member&, const Member&) = default;
    };
    struct Peer {
        std::string id;
        HostPort address;
        friend bool operator==(const Peer&, const Peer&) = default;
    };
    struct Cluster {
        std::string name = "spirit";     // peers of another cluster are refused
        std::optional<HostPort> listen;  // peer listener; required in a cluster
        std::vector<Member> members;
        // The members other than this node (derived from members when read).
        std::vector<Peer> peers;
        std::uint32_t ack_timeout_ms = 5000;  // immediate publishes fail after this, 1..600000
        std::uint32_t heartbeat_ms = 100;     // 10..60000
        // A data node that hears no master for a time drawn from [this, 2 x
        // this) stands for election; a master that hears no majority of
        // voters for this long steps down. >= 3 x heartbeat_ms.
        std::uint32_t election_timeout_ms = 1000;
        std::uint32_t peer_timeout_ms = 1000;   // silent this long: unreachable; > heartbeat_ms
        std::uint32_t reconnect_ms_min = 50;    // backoff between connection attempts, 1..60000
        std::uint32_t reconnect_ms_max = 2000;  // >= reconnect_ms_min
        // Replicated bytes in flight to one slave before the master waits for acks.
        std::uint64_t replication_window_bytes = std::uint64_t{8} << 20;  // 64KiB..1GiB
        friend bool operator==(const Cluster&, const Cluster&) = default;
    } cluster;

    bool in_cluster() const { return !cluster.members.empty(); }
    // This node's member entry. REQUIRES: in_cluster().
    const Member& self_member() const;
    // Whether this node is a witness (votes, holds no data streams).
    bool is_witness() const;
    // The group's members for elections. REQUIRES: in_cluster().
    topology::Members group() const;
    // Nodes holding every stream: the data members (1 for a node alone).
    std::size_t replicas() const;
    // Copies an immediate publish of a stream with `acks` waits for.
    std::size_t copies_required(const core::Acks& acks) const;

    // The policy for a new stream called `name`: the first matching
    // StreamDefaults, else eventual redundancy, majority acks, no retention.
    core::StreamPolicy policy_for(std::string_view name) const;

    // StoreOptions from node.data_dir and [storage].
    storage::StoreOptions store_options() const;

    friend bool operator==(const Config&, const Config&) = default;
};

// The pattern language (pattern_matches, pattern_covers, validate_pattern)
// is core's: core/stream_pattern.h. Config refuses a bad pattern as
// config_invalid naming FILE:LINE:COLUMN: KEY.
using core::pattern_covers;
using core::pattern_matches;
using core::validate_pattern;

// Reads and validates a config file. Errors are errc::config_invalid with a
// detail like "conf/spirit.toml:12:1: storage.sync: expected one of always,
// periodic, none, got \"sometimes\"".
[[nodiscard]] core::Result<Config> load_config(const std::filesystem::path& path);
// The same for text already in memory; `source` names it in messages.
[[nodiscard]] core::Result<Config> parse_config(std::string_view text, std::string_view source);

}  // namespace spirit::daemon
