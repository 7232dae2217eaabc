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

#include "core/limits.h"
#include "core/result.h"
#include "core/stream_policy.h"
#include "storage/store.h"

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

    std::vector<StreamDefaults> streams;

    // Replication between nodes. Without peers the node runs alone.
    struct Peer {
        std::string id;    // the peer's node.id
        HostPort address;  // its cluster.listen
        friend bool operator==(const Peer&, const Peer&) = default;
    };
    struct Cluster {
        std::string name = "spirit";     // peers of another cluster are refused
        std::optional<HostPort> listen;  // peer listener; required when there are peers
        std::string master;  // the node that orders writes (until elections); empty: node.id
        std::vector<Peer> peers;
        std::uint32_t ack_timeout_ms = 5000;    // immediate publishes fail after this, 1..600000
        std::uint32_t heartbeat_ms = 250;       // 10..60000
        std::uint32_t peer_timeout_ms = 2000;   // silent this long: unreachable; > heartbeat_ms
        std::uint32_t reconnect_ms_min = 50;    // backoff between connection attempts, 1..60000
        std::uint32_t reconnect_ms_max = 2000;  // >= reconnect_ms_min
        // Replicated bytes in flight to one slave before the master waits for acks.
        std::uint64_t replication_window_bytes = std::uint64_t{8} << 20;  // 64KiB..1GiB
        friend bool operator==(const Cluster&, const Cluster&) = default;
    } cluster;

    // Nodes holding every stream: this one and its peers.
    std::size_t replicas() const { return 1 + cluster.peers.size(); }
    // The master's node id (cluster.master, or node.id when unset).
    const std::string& master() const { return cluster.master.empty() ? node.id : cluster.master; }
    bool is_master() const { return master() == node.id; }
    // Copies an immediate publish of a stream with `acks` waits for.
    std::size_t copies_required(const core::Acks& acks) const;

    // The policy for a new stream called `name`: the first matching
    // StreamDefaults, else eventual redundancy, majority acks, no retention.
    core::StreamPolicy policy_for(std::string_view name) const;

    // StoreOptions from node.data_dir and [storage].
    storage::StoreOptions store_options() const;

    friend bool operator==(const Config&, const Config&) = default;
};

// Whether a stream name matches a pattern (see StreamDefaults).
bool pattern_matches(std::string_view pattern, std::string_view name);
// Whether every name `inner` (a name or a pattern) matches also matches
// `outer`: "orders.>" covers "orders.*.eu" and "orders.eu", not "orders".
bool pattern_covers(std::string_view outer, std::string_view inner);
// Validates a pattern: tokens of stream-name characters, '*' tokens, '>' last.
[[nodiscard]] core::Result<void> validate_pattern(std::string_view pattern);

// Reads and validates a config file. Errors are errc::config_invalid with a
// detail like "conf/spirit.toml:12:1: storage.sync: expected one of always,
// periodic, none, got \"sometimes\"".
[[nodiscard]] core::Result<Config> load_config(const std::filesystem::path& path);
// The same for text already in memory; `source` names it in messages.
[[nodiscard]] core::Result<Config> parse_config(std::string_view text, std::string_view source);

}  // namespace spirit::daemon
