// Proves that daemon/config.cc reads spiritd's TOML configuration exactly as
// daemon/config.h and conf/spirit.toml document it:
//  - the shipped conf/spirit.toml and an empty text both give the member
//    initialisers of Config, and every key, set to a non-default value (each
//    range bound included), is read into its field;
//  - every kind of bad input (unknown key or table, wrong type, each range
//    bound just outside, bad sizes, enums, acks, patterns, host:port, a
//    cross-field rule, TOML syntax) is refused with config_invalid and a
//    detail "FILE:LINE:COLUMN: KEY: problem", checked against hand-counted
//    positions in a table of inputs;
//  - the helpers (parse_host_port, policy_for, store_options, load_config)
//    behave as documented, each checked on a table of cases including the
//    edges (the pattern language itself: tests/core/stream_pattern_test.cc).
#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>

#include "daemon/config.h"
#include "tests/support/temp_dir.h"

using namespace spirit;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

constexpr std::uint64_t kib = std::uint64_t{1} << 10;
constexpr std::uint64_t mib = std::uint64_t{1} << 20;
constexpr std::uint64_t gib = std::uint64_t{1} << 30;
constexpr std::uint64_t tib = std::uint64_t{1} << 40;

// Every field of two configs but `source` (Config has no operator==).
void check_same_settings(const daemon::Config& got, const daemon::Config& want) {
    CHECK(got.node.id == want.node.id);
    CHECK(got.node.data_dir == want.node.data_dir);
    CHECK(got.client.listen == want.client.listen);
    CHECK(got.client.unix_socket == want.client.unix_socket);
    CHECK(got.client.tokens == want.client.tokens);
    CHECK(got.limits.connections_max == want.limits.connections_max);
    CHECK(got.limits.frame_bytes_max == want.limits.frame_bytes_max);
    CHECK(got.limits.batch_events_max == want.limits.batch_events_max);
    CHECK(got.limits.subscriptions_per_connection_max ==
          want.limits.subscriptions_per_connection_max);
    CHECK(got.limits.pending_bytes_per_connection_max ==
          want.limits.pending_bytes_per_connection_max);
    CHECK(got.limits.publish_bytes_in_flight_max == want.limits.publish_bytes_in_flight_max);
    CHECK(got.limits.hello_timeout_ms == want.limits.hello_timeout_ms);
    CHECK(got.storage.sync == want.storage.sync);
    CHECK(got.storage.sync_period_ms == want.storage.sync_period_ms);
    CHECK(got.storage.map_bytes == want.storage.map_bytes);
    CHECK(got.storage.dedup_window_ms == want.storage.dedup_window_ms);
    CHECK(got.storage.dedup_events_max == want.storage.dedup_events_max);
    CHECK(got.log.level == want.log.level);
    REQUIRE(got.streams.size() == want.streams.size());
    for (std::size_t i = 0; i < got.streams.size(); ++i) {
        CHECK(got.streams[i].pattern == want.streams[i].pattern);
        CHECK(got.streams[i].policy == want.streams[i].policy);
    }
    CHECK(got.cluster == want.cluster);
}

// The detail of the error parse_config gives for `text` named "test.toml".
std::string error_of(const std::string& text) {
    INFO(text);
    auto config = daemon::parse_config(text, "test.toml");
    REQUIRE_FALSE(config);
    CHECK(config.error().is(core::errc::config_invalid));
    return config.error().detail;
}

daemon::Config parse_ok(const std::string& text) {
    INFO(text);
    auto config = daemon::parse_config(text, "test.toml");
    if (!config) FAIL(config.error().detail);
    return *config;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    REQUIRE(in);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

const std::string shipped_conf = SPIRIT_SOURCE_DIR "/conf/spirit.toml";

}  // namespace

TEST_CASE("the shipped conf/spirit.toml loads and equals the defaults", "[daemon][unit]") {
    auto config = daemon::load_config(shipped_conf);
    if (!config) FAIL(config.error().detail);
    CHECK(config->source == std::filesystem::path{shipped_conf});
    check_same_settings(*config, daemon::Config{});
}

TEST_CASE("the commented-out [[streams]] example in conf/spirit.toml is valid", "[daemon][unit]") {
    // Uncomment everything from "# [[streams]]" on: "# key = v" becomes a
    // key, "# # text" stays a comment.
    std::istringstream lines(read_file(shipped_conf));
    std::string line;
    std::string example;
    bool in_example = false;
    while (std::getline(lines, line)) {
        if (line == "# [[streams]]") in_example = true;
        if (in_example && line.starts_with("# ")) example += line.substr(2) + "\n";
    }
    REQUIRE_THAT(example, StartsWith("[[streams]]\n"));
    daemon::Config config = parse_ok(example);
    REQUIRE(config.streams.size() == 1);
    CHECK(config.streams[0].pattern == "audit.>");
    CHECK(config.streams[0].policy.redundancy == core::Redundancy::immediate);
    CHECK(config.streams[0].policy.acks == core::Acks{});
    CHECK(config.streams[0].policy.retention == core::Retention{});
}

TEST_CASE("an empty text gives the defaults", "[daemon][unit]") {
    daemon::Config config = parse_ok("");
    check_same_settings(config, daemon::Config{});
    CHECK(config.source == "test.toml");
    CHECK(parse_ok("# only a comment\n\n").node.id == "node-1");
}

TEST_CASE("empty tables and absent keys keep their defaults", "[daemon][unit]") {
    daemon::Config config =
        parse_ok("[node]\n[client]\n[limits]\nhello_timeout_ms = 100\n[storage]\n[log]\n");
    daemon::Config want;
    want.limits.hello_timeout_ms = 100;
    check_same_settings(config, want);
}

TEST_CASE("every key set to a non-default value is read into its field", "[daemon][unit]") {
    const std::string long_token(256, 't');
    daemon::Config config = parse_ok(R"(
[node]
id = "node-7.eu_west-1"
data_dir = "/var/lib/spirit"
key_file = "/etc/spirit/node.key"

[client]
listen = "[::1]:7801"
unix_socket = "/run/spirit/s.sock"
tokens = ["0123456789abcdef", ")" + long_token +
                                     R"("]

[limits]
connections_max = 100000
frame_bytes_max = "1MiB"
batch_events_max = 100
subscriptions_per_connection_max = 10000
pending_bytes_per_connection_max = 65536
publish_bytes_in_flight_max = "4GiB"
hello_timeout_ms = 600000

[storage]
sync = "periodic"
sync_period_ms = 60000
map_size = "1TiB"
preallocate = "1GiB"
dedup_window_ms = 86400000
dedup_events_max = 100000000

[log]
level = "debug"

[[streams]]
pattern = "audit.>"
redundancy = "immediate"
acks = 3
retention_events_max = 1000
retention_bytes_max = "512KiB"
retention_age_ms = 3600000

[[streams]]
pattern = "orders.*"
redundancy = "eventual"
acks = "all"
retention_bytes_max = 12345

[cluster]
name = "prod-eu"
listen = "0.0.0.0:7900"
ack_timeout_ms = 600000
heartbeat_ms = 10
election_timeout_ms = 600000
peer_timeout_ms = 600000
reconnect_ms_min = 60000
reconnect_ms_max = 600000
replication_window_bytes = "1GiB"
[[cluster.members]]
id = "node-7.eu_west-1"
address = "10.0.0.7:7900"
public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
[[cluster.members]]
id = "node-8"
address = "10.0.0.8:7900"
public_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
role = "data"
[[cluster.members]]
id = "node-9"
address = "node-9.example:7900"
public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
[[cluster.members]]
id = "w"
address = "10.0.0.10:7900"
public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgA="
role = "witness"
)");
    daemon::Config want;
    want.cluster.name = "prod-eu";
    want.cluster.listen = daemon::HostPort{"0.0.0.0", 7900};
    want.cluster.ack_timeout_ms = 600'000;
    want.cluster.heartbeat_ms = 10;
    want.cluster.election_timeout_ms = 600'000;
    want.cluster.peer_timeout_ms = 600'000;
    want.cluster.reconnect_ms_min = 60'000;
    want.cluster.reconnect_ms_max = 600'000;
    want.cluster.replication_window_bytes = gib;
    auto key = [](const char* text) { return *core::parse_public_key(text); };
    using topology::MemberRole;
    want.cluster.members = {
        {"node-7.eu_west-1", daemon::HostPort{"10.0.0.7", 7900},
         key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), MemberRole::data},
        {"node-8", daemon::HostPort{"10.0.0.8", 7900},
         key("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="), MemberRole::data},
        {"node-9", daemon::HostPort{"node-9.example", 7900},
         key("AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="), MemberRole::data},
        {"w", daemon::HostPort{"10.0.0.10", 7900},
         key("AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgA="), MemberRole::witness}};
    want.cluster.peers = {{"node-8", daemon::HostPort{"10.0.0.8", 7900}},
                          {"node-9", daemon::HostPort{"node-9.example", 7900}},
                          {"w", daemon::HostPort{"10.0.0.10", 7900}}};
    want.node.id = "node-7.eu_west-1";
    want.node.data_dir = "/var/lib/spirit";
    want.node.key_file = "/etc/spirit/node.key";
    want.client.listen = daemon::HostPort{"::1", 7801};
    want.client.unix_socket = "/run/spirit/s.sock";
    want.client.tokens = {"0123456789abcdef", long_token};
    want.limits.connections_max = 100'000;
    want.limits.frame_bytes_max = mib;
    want.limits.batch_events_max = 100;
    want.limits.subscriptions_per_connection_max = 10'000;
    want.limits.pending_bytes_per_connection_max = 64 * kib;
    want.limits.publish_bytes_in_flight_max = 4 * gib;
    want.limits.hello_timeout_ms = 600'000;
    want.storage.sync = storage::SyncMode::periodic;
    want.storage.sync_period_ms = 60'000;
    want.storage.map_bytes = tib;
    want.storage.dedup_window_ms = 86'400'000;
    want.storage.dedup_events_max = 100'000'000;
    want.log.level = "debug";
    core::StreamPolicy audit{core::Redundancy::immediate, core::Acks{core::Acks::Kind::count, 3},
                             core::Retention{1000, 512 * kib, 3'600'000}};
    core::StreamPolicy orders{core::Redundancy::eventual, core::Acks{core::Acks::Kind::all, 0},
                              core::Retention{0, 12345, 0}};
    want.streams = {{"audit.>", audit}, {"orders.*", orders}};
    check_same_settings(config, want);
}

TEST_CASE("an empty listen or unix_socket disables that listener", "[daemon][unit]") {
    daemon::Config config = parse_ok("[client]\nlisten = \"\"\nunix_socket = \"\"\n");
    CHECK_FALSE(config.client.listen.has_value());
    CHECK(config.client.unix_socket.empty());
}

TEST_CASE("each range bound itself is accepted", "[daemon][unit]") {
    auto [section, key, value] = GENERATE(table<std::string, std::string, std::string>({
        {"limits", "connections_max", "1"},
        {"limits", "connections_max", "100000"},
        {"limits", "frame_bytes_max", "4096"},
        {"limits", "frame_bytes_max", "\"8256KiB\""},
        {"limits", "batch_events_max", "1"},
        {"limits", "batch_events_max", "4096"},
        {"limits", "subscriptions_per_connection_max", "1"},
        {"limits", "subscriptions_per_connection_max", "10000"},
        {"limits", "pending_bytes_per_connection_max", "\"64KiB\""},
        {"limits", "pending_bytes_per_connection_max", "\"1GiB\""},
        {"limits", "publish_bytes_in_flight_max", "\"4GiB\""},
        {"limits", "hello_timeout_ms", "100"},
        {"limits", "hello_timeout_ms", "600000"},
        {"storage", "sync_period_ms", "1"},
        {"storage", "sync_period_ms", "60000"},
        {"storage", "map_size", "\"1MiB\""},
        {"storage", "map_size", "\"1TiB\""},
        {"storage", "preallocate", "0"},
        {"storage", "preallocate", "\"1GiB\""},
        {"storage", "dedup_window_ms", "1"},
        {"storage", "dedup_window_ms", "86400000"},
        {"storage", "dedup_events_max", "1"},
        {"storage", "dedup_events_max", "100000000"},
        {"node", "id", "\"" + std::string(64, 'n') + "\""},
        {"node", "id", "\"x\""},
        {"client", "tokens", "[\"" + std::string(16, 'k') + "\"]"},
        {"client", "unix_socket", "\"" + std::string(107, 's') + "\""},
    }));
    std::string text = "[" + section + "]\n" + key + " = " + value + "\n";
    INFO(text);
    auto config = daemon::parse_config(text, "test.toml");
    if (!config) FAIL(config.error().detail);
}

TEST_CASE("publish_bytes_in_flight_max may equal frame_bytes_max", "[daemon][unit]") {
    daemon::Config config =
        parse_ok("[limits]\nframe_bytes_max = \"1MiB\"\npublish_bytes_in_flight_max = 1048576\n");
    CHECK(config.limits.publish_bytes_in_flight_max == mib);
}

TEST_CASE("acks accepts majority, all and a count from 1 to 255", "[daemon][unit]") {
    auto [value, want] = GENERATE(table<std::string, core::Acks>({
        {"\"majority\"", core::Acks{core::Acks::Kind::majority, 0}},
        {"\"all\"", core::Acks{core::Acks::Kind::all, 0}},
        {"1", core::Acks{core::Acks::Kind::count, 1}},
        {"255", core::Acks{core::Acks::Kind::count, 255}},
    }));
    daemon::Config config = parse_ok("[[streams]]\npattern = \"x\"\nacks = " + value + "\n");
    REQUIRE(config.streams.size() == 1);
    CHECK(config.streams[0].policy.acks == want);
}

TEST_CASE("the sync and log level names map to their values", "[daemon][unit]") {
    CHECK(parse_ok("[storage]\nsync = \"always\"").storage.sync == storage::SyncMode::always);
    CHECK(parse_ok("[storage]\nsync = \"periodic\"").storage.sync == storage::SyncMode::periodic);
    CHECK(parse_ok("[storage]\nsync = \"none\"").storage.sync == storage::SyncMode::none);
    auto level = GENERATE(as<std::string>{}, "trace", "debug", "info", "warn", "error");
    CHECK(parse_ok("[log]\nlevel = \"" + level + "\"").log.level == level);
}

TEST_CASE("sizes are integers or <integer><unit> strings and overflow is refused",
          "[daemon][unit]") {
    // retention_bytes_max takes any size, so only the size syntax is tested.
    auto [value, want] = GENERATE(table<std::string, std::uint64_t>({
        {"0", 0},
        {"\"0\"", 0},
        {"\"0B\"", 0},
        {"\"0TiB\"", 0},
        {"\"1B\"", 1},
        {"\"1KiB\"", kib},
        {"\"3MiB\"", 3 * mib},
        {"\"2GiB\"", 2 * gib},
        {"\"5TiB\"", 5 * tib},
        {"\"007KiB\"", 7 * kib},
        {"9223372036854775807", std::uint64_t{std::numeric_limits<std::int64_t>::max()}},
        {"\"18446744073709551615\"", std::numeric_limits<std::uint64_t>::max()},
        {"\"18446744073709551615B\"", std::numeric_limits<std::uint64_t>::max()},
        {"\"16777215TiB\"", ((std::uint64_t{1} << 24) - 1) << 40},
        {"\"17179869183GiB\"", ((std::uint64_t{1} << 34) - 1) << 30},
    }));
    daemon::Config config =
        parse_ok("[[streams]]\npattern = \"x\"\nretention_bytes_max = " + value + "\n");
    REQUIRE(config.streams.size() == 1);
    CHECK(config.streams[0].policy.retention.bytes_max == want);
}

TEST_CASE("malformed sizes are refused saying why", "[daemon][unit]") {
    auto [value, why] = GENERATE(table<std::string, std::string>({
        {"\"12XB\"", "bad size \"12XB\": unknown unit \"XB\""},
        {"\"1KB\"", "unknown unit \"KB\""},
        {"\"1kib\"", "unknown unit \"kib\""},
        {"\"1Ki\"", "unknown unit \"Ki\""},
        {"\"1 KiB\"", "unknown unit \" KiB\""},
        {"\"1KiB \"", "unknown unit \"KiB \""},
        {"\" 1KiB\"", "bad size \" 1KiB\""},
        {"\"1.5MiB\"", "unknown unit \".5MiB\""},
        {"\"KiB\"", "bad size \"KiB\""},
        {"\"\"", "bad size \"\""},
        {"\"-1\"", "bad size \"-1\""},
        {"\"+1\"", "bad size \"+1\""},
        {"-1", "bad size -1: a size must not be negative"},
        {"\"99999999999TiB\"", "size \"99999999999TiB\" does not fit in 64 bits"},
        {"\"16777216TiB\"", "does not fit in 64 bits"},
        {"\"18446744073709551616\"", "does not fit in 64 bits"},
        {"\"99999999999999999999999KiB\"", "does not fit in 64 bits"},
        {"1.5", "expected a size (an integer or a string like \"8MiB\"), got the float 1.5"},
        {"true", "got the boolean true"},
    }));
    std::string detail =
        error_of("[[streams]]\npattern = \"x\"\nretention_bytes_max = " + value + "\n");
    CHECK_THAT(detail, StartsWith("test.toml:3:1: streams[0].retention_bytes_max: "));
    CHECK_THAT(detail, Contains(why));
}

TEST_CASE("the error for a bad value reads as documented in config.h", "[daemon][unit]") {
    CHECK(error_of("[node]\n[storage]\nsync = \"sometimes\"\n") ==
          "test.toml:3:1: storage.sync: expected one of always, periodic, none, got "
          "\"sometimes\"");
    CHECK(error_of("[client]\nlistn = \"127.0.0.1:7700\"\n") ==
          "test.toml:2:1: client.listn: unknown key (did you mean listen?)");
}

TEST_CASE("each invalid config is refused naming the line, column, key and problem",
          "[daemon][unit]") {
    const std::string s15(15, 'k');
    const std::string s257(257, 'k');
    // text, "LINE:COLUMN: KEY" (or "LINE:COLUMN" of a syntax error), problem.
    auto [text, where, why] = GENERATE_COPY(table<std::string, std::string, std::string>({
        // Unknown keys, in each table, and unknown tables.
        {"verbose = true\n", "1:1: verbose", "unknown key"},
        {"[node]\nname = \"x\"\n", "2:1: node.name", "unknown key"},
        {"[client]\nlistn = \"127.0.0.1:1\"\n", "2:1: client.listn", "unknown key"},
        {"[limits]\nconnection_max = 5\n", "2:1: limits.connection_max", "unknown key"},
        {"[storage]\nsync_mode = \"none\"\n", "2:1: storage.sync_mode", "unknown key"},
        {"[log]\nlevels = \"info\"\n", "2:1: log.levels", "unknown key"},
        {"[[streams]]\npattern = \"a\"\nack = 1\n", "3:1: streams[0].ack", "unknown key"},
        {"[nodes]\nid = \"x\"\n", "1:2: nodes", "unknown table"},
        {"[[stream]]\npattern = \"a\"\n", "1:3: stream", "unknown table"},
        {"[storage.extra]\n", "1:10: storage.extra", "unknown table"},
        {"[node]\nid.x = 1\n", "2:1: node.id", "expected a string, got a table"},
        // The first problem in document order is the one reported.
        {"[limits]\nzeta = 1\nalpha = 2\n", "2:1: limits.zeta", "unknown key"},
        {"[log]\nlevel = \"loud\"\n[node]\nid = 5\n", "2:1: log.level", "got \"loud\""},
        // Wrong TOML types.
        {"node = 5\n", "1:1: node", "expected a table, got the integer 5"},
        {"[node]\nid = 7\n", "2:1: node.id", "expected a string, got the integer 7"},
        {"[node]\ndata_dir = false\n", "2:1: node.data_dir", "expected a string"},
        {"[limits]\nconnections_max = \"10\"\n", "2:1: limits.connections_max",
         "expected an integer, got the string \"10\""},
        {"[limits]\nhello_timeout_ms = 1.0\n", "2:1: limits.hello_timeout_ms",
         "expected an integer, got the float 1"},
        {"[limits]\nframe_bytes_max = [1]\n", "2:1: limits.frame_bytes_max",
         "expected a size (an integer or a string like \"8MiB\"), got an array"},
        {"[client]\ntokens = \"abc\"\n", "2:1: client.tokens", "expected an array of strings"},
        {"[client]\ntokens = [\"0123456789abcdef\", 5]\n", "2:31: client.tokens[1]",
         "expected a string, got the integer 5"},
        {"[client]\nlisten = 7700\n", "2:1: client.listen", "expected a string"},
        {"[storage]\nsync = 1\n", "2:1: storage.sync",
         "expected one of always, periodic, none, got the integer 1"},
        {"streams = 5\n", "1:1: streams", "expected an array of tables"},
        {"streams = [5]\n", "1:12: streams[0]", "expected a table, got the integer 5"},
        {"[[streams]]\npattern = 5\n", "2:1: streams[0].pattern", "expected a string"},
        // Values out of range: each bound just outside, and bad strings.
        {"[node]\nid = \"\"\n", "2:1: node.id", "expected 1 to 64 bytes, got 0"},
        {"[node]\nid = \"" + std::string(65, 'n') + "\"\n", "2:1: node.id",
         "expected 1 to 64 bytes, got 65"},
        {"[node]\nid = \"node 1\"\n", "2:1: node.id", "has byte 0x20"},
        {"[node]\nid = \"node/1\"\n", "2:1: node.id", "has '/'"},
        {"[node]\ndata_dir = \"\"\n", "2:1: node.data_dir", "must not be empty"},
        {"[node]\ndata_dir = \"a\\u0000b\"\n", "2:1: node.data_dir", "NUL"},
        {"[client]\ntokens = [\"" + s15 + "\"]\n", "2:11: client.tokens[0]",
         "a token has 16 to 256 bytes, got 15"},
        {"[client]\ntokens = [\"" + s257 + "\"]\n", "2:11: client.tokens[0]",
         "a token has 16 to 256 bytes, got 257"},
        {"[client]\nunix_socket = \"" + std::string(108, 's') + "\"\n", "2:1: client.unix_socket",
         "at most 107 bytes, got 108"},
        {"[limits]\nconnections_max = 0\n", "2:1: limits.connections_max",
         "expected an integer from 1 to 100000, got 0"},
        {"[limits]\nconnections_max = 100001\n", "2:1: limits.connections_max",
         "expected an integer from 1 to 100000, got 100001"},
        {"[limits]\nframe_bytes_max = 4095\n", "2:1: limits.frame_bytes_max",
         "expected a size from 4KiB (4096 bytes) to 8256KiB (8454144 bytes), got 4095 bytes"},
        {"[limits]\nframe_bytes_max = 8454145\n", "2:1: limits.frame_bytes_max",
         "got 8454145 bytes"},
        {"[limits]\nbatch_events_max = 0\n", "2:1: limits.batch_events_max",
         "from 1 to 4096, got 0"},
        {"[limits]\nbatch_events_max = 4097\n", "2:1: limits.batch_events_max",
         "from 1 to 4096, got 4097"},
        {"[limits]\nsubscriptions_per_connection_max = 0\n",
         "2:1: limits.subscriptions_per_connection_max", "from 1 to 10000, got 0"},
        {"[limits]\nsubscriptions_per_connection_max = 10001\n",
         "2:1: limits.subscriptions_per_connection_max", "from 1 to 10000, got 10001"},
        {"[limits]\npending_bytes_per_connection_max = 65535\n",
         "2:1: limits.pending_bytes_per_connection_max",
         "from 64KiB (65536 bytes) to 1GiB (1073741824 bytes), got 65535 bytes"},
        {"[limits]\npending_bytes_per_connection_max = 1073741825\n",
         "2:1: limits.pending_bytes_per_connection_max", "got 1073741825 bytes"},
        {"[limits]\npublish_bytes_in_flight_max = 1048575\n",
         "2:1: limits.publish_bytes_in_flight_max",
         "from 1MiB (1048576 bytes) to 4GiB (4294967296 bytes), got 1048575 bytes"},
        {"[limits]\npublish_bytes_in_flight_max = 4294967297\n",
         "2:1: limits.publish_bytes_in_flight_max", "got 4294967297 bytes"},
        {"[limits]\nhello_timeout_ms = 99\n", "2:1: limits.hello_timeout_ms",
         "from 100 to 600000, got 99"},
        {"[limits]\nhello_timeout_ms = 600001\n", "2:1: limits.hello_timeout_ms",
         "from 100 to 600000, got 600001"},
        {"[storage]\nsync_period_ms = 0\n", "2:1: storage.sync_period_ms",
         "from 1 to 60000, got 0"},
        {"[storage]\nsync_period_ms = 60001\n", "2:1: storage.sync_period_ms",
         "from 1 to 60000, got 60001"},
        {"[storage]\nmap_size = 1048575\n", "2:1: storage.map_size",
         "from 1MiB (1048576 bytes) to 1TiB (1099511627776 bytes), got 1048575 bytes"},
        {"[storage]\nmap_size = 1099511627777\n", "2:1: storage.map_size",
         "got 1099511627777 bytes"},
        {"[storage]\nmap_size = \"2TiB\"\n", "2:1: storage.map_size",
         "got 2TiB (2199023255552 bytes)"},
        {"[storage]\npreallocate = \"2GiB\"\n", "2:1: storage.preallocate",
         "from 0 bytes to 1GiB (1073741824 bytes), got 2GiB"},
        {"[storage]\ndedup_window_ms = 0\n", "2:1: storage.dedup_window_ms",
         "from 1 to 86400000, got 0"},
        {"[storage]\ndedup_window_ms = 86400001\n", "2:1: storage.dedup_window_ms",
         "from 1 to 86400000, got 86400001"},
        {"[storage]\ndedup_events_max = 0\n", "2:1: storage.dedup_events_max",
         "from 1 to 100000000, got 0"},
        {"[storage]\ndedup_events_max = 100000001\n", "2:1: storage.dedup_events_max",
         "from 1 to 100000000, got 100000001"},
        {"[[streams]]\npattern = \"a\"\nretention_events_max = -1\n",
         "3:1: streams[0].retention_events_max", "expected an integer >= 0, got -1"},
        {"[[streams]]\npattern = \"a\"\nretention_age_ms = -1\n",
         "3:1: streams[0].retention_age_ms", "expected an integer >= 0, got -1"},
        // Bad sizes.
        {"[limits]\nframe_bytes_max = \"12XB\"\n", "2:1: limits.frame_bytes_max",
         "unknown unit \"XB\""},
        {"[storage]\nmap_size = \"-1\"\n", "2:1: storage.map_size", "bad size \"-1\""},
        {"[storage]\nmap_size = -1\n", "2:1: storage.map_size", "must not be negative"},
        {"[storage]\nmap_size = \"99999999999TiB\"\n", "2:1: storage.map_size",
         "does not fit in 64 bits"},
        // Bad names.
        {"[storage]\nsync = \"sometimes\"\n", "2:1: storage.sync",
         "expected one of always, periodic, none, got \"sometimes\""},
        {"[storage]\nsync = \"Always\"\n", "2:1: storage.sync", "got \"Always\""},
        {"[log]\nlevel = \"verbose\"\n", "2:1: log.level",
         "expected one of trace, debug, info, warn, error, got \"verbose\""},
        {"[[streams]]\npattern = \"a\"\nredundancy = \"strong\"\n", "3:1: streams[0].redundancy",
         "expected one of eventual, immediate, got \"strong\""},
        // Bad acks.
        {"[[streams]]\npattern = \"a\"\nacks = 0\n", "3:1: streams[0].acks",
         "expected \"majority\", \"all\" or an integer from 1 to 255, got 0"},
        {"[[streams]]\npattern = \"a\"\nacks = 256\n", "3:1: streams[0].acks", "got 256"},
        {"[[streams]]\npattern = \"a\"\nacks = \"most\"\n", "3:1: streams[0].acks", "got \"most\""},
        {"[[streams]]\npattern = \"a\"\nacks = true\n", "3:1: streams[0].acks",
         "got the boolean true"},
        // Bad patterns, and a missing one.
        {"[[streams]]\npattern = \"orders..x\"\n", "2:1: streams[0].pattern",
         "pattern \"orders..x\": token 2 is empty"},
        {"[[streams]]\npattern = \"a.>.b\"\n", "2:1: streams[0].pattern",
         "it may only be the last token"},
        {"[[streams]]\npattern = \"ord*rs\"\n", "2:1: streams[0].pattern", "has '*'"},
        {"[[streams]]\npattern = \"\"\n", "2:1: streams[0].pattern", "empty"},
        {"[[streams]]\nacks = 1\n", "1:1: streams[0].pattern", "missing"},
        {"[[streams]]\npattern = \"a\"\n\n[[streams]]\npattern = \"b.\"\n",
         "5:1: streams[1].pattern", "token 2 is empty"},
        // Grants.
        {"[[client.grants]]\ntoken = \"" + s15 + "\"\n", "2:1: client.grants[0].token",
         "a token has 16 to 256 bytes, got 15"},
        {"[[client.grants]]\npublish = [\"a\"]\n", "1:1: client.grants[0]", "needs a token"},
        {"[[client.grants]]\ntoken = \"" + s257.substr(0, 20) + "\"\npublish = [\"a..b\"]\n",
         "3:12: client.grants[0].publish[0]", "token 2 is empty"},
        {"[[client.grants]]\ntoken = \"" + s257.substr(0, 20) + "\"\nadmin = \"yes\"\n",
         "3:1: client.grants[0].admin", "expected true or false"},
        {"[[client.grants]]\ntoken = \"" + s257.substr(0, 20) + "\"\nread = [\"a\"]\n",
         "3:1: client.grants[0].read", "unknown key"},
        {"[client]\ntokens = [\"" + s257.substr(0, 20) + "\"]\n[[client.grants]]\ntoken = \"" +
             s257.substr(0, 20) + "\"\n",
         "1:2: client", "a token appears twice"},
        // Bad host:port.
        {"[client]\nlisten = \"localhost\"\n", "2:1: client.listen",
         "bad host:port \"localhost\": missing ':port'"},
        {"[client]\nlisten = \"127.0.0.1:0\"\n", "2:1: client.listen",
         "port \"0\" is not an integer from 1 to 65535"},
        {"[client]\nlisten = \"::1:7700\"\n", "2:1: client.listen", "needs brackets"},
        // A cross-field rule points at the table.
        {"[node]\n[limits]\nframe_bytes_max = \"4MiB\"\npublish_bytes_in_flight_max = \"2MiB\"\n",
         "2:1: limits.publish_bytes_in_flight_max",
         "must be at least limits.frame_bytes_max, 4MiB (4194304 bytes); got 2MiB "
         "(2097152 bytes)"},
        // TOML syntax errors: "LINE:COLUMN: toml++'s description".
        {"[node]\nid = \n", "2:6", "expected value"},
        {"[node]\nid = \"a\"\nid = \"b\"\n", "3:6", "cannot redefine existing string 'id'"},
        {"[node\n", "1:6", "Error while parsing"},
        {"[node]\n[node]\n", "2:1", "redefin"},
    }));
    std::string detail = error_of(text);
    INFO(text);
    CHECK_THAT(detail, StartsWith("test.toml:" + where + ": "));
    CHECK_THAT(detail, Contains(why));
}

TEST_CASE("parse_host_port accepts IPv4, bracketed IPv6 and names", "[daemon][unit]") {
    auto [text, host, port] = GENERATE(table<std::string, std::string, std::uint16_t>({
        {"127.0.0.1:7700", "127.0.0.1", 7700},
        {"0.0.0.0:1", "0.0.0.0", 1},
        {"[::1]:7700", "::1", 7700},
        {"[::]:65535", "::", 65535},
        {"[fe80::1%eth0]:80", "fe80::1%eth0", 80},
        {"localhost:7700", "localhost", 7700},
        {"spirit-1.example.com:00080", "spirit-1.example.com", 80},
    }));
    auto parsed = daemon::parse_host_port(text);
    INFO(text);
    if (!parsed) FAIL(parsed.error().detail);
    CHECK(*parsed == daemon::HostPort{host, port});
}

TEST_CASE("parse_host_port refuses malformed text naming it", "[daemon][unit]") {
    auto [text, why] = GENERATE(table<std::string, std::string>({
        {"", "missing ':port'"},
        {"localhost", "missing ':port'"},
        {":7700", "empty host"},
        {"localhost:", "port \"\""},
        {"localhost:0", "port \"0\""},
        {"localhost:65536", "port \"65536\""},
        {"localhost:999999", "port \"999999\""},
        {"localhost:+80", "port \"+80\""},
        {"localhost:80a", "port \"80a\""},
        {"localhost:-1", "port \"-1\""},
        {"::1:7700", "needs brackets"},
        {"[::1]7700", "expected ':port' after ']'"},
        {"[::1]", "expected ':port' after ']'"},
        {"[::1:7700", "missing ']'"},
        {"[]:80", "empty IPv6 address"},
        {"[1.2.3.4]:80", "is not an IPv6 address"},
        {"host name:80", "host has byte 0x20"},
        {"host\tname:80", "host has byte 0x09"},
    }));
    auto parsed = daemon::parse_host_port(text);
    INFO(text);
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().is(core::errc::config_invalid));
    CHECK_THAT(parsed.error().detail, StartsWith("bad host:port \""));
    CHECK_THAT(parsed.error().detail, Contains(why));
}

TEST_CASE("grants are read with their patterns and admin flag", "[daemon][unit]") {
    daemon::Config config = parse_ok(R"(
[client]
tokens = ["every-right-token-0123"]
[[client.grants]]
token = "orders-token-0123456789"
publish = ["orders.>"]
subscribe = ["orders.>", "prices.*"]
[[client.grants]]
token = "admin-token-0123456789"
admin = true
)");
    REQUIRE(config.client.grants.size() == 2);
    CHECK(config.client.requires_token());
    const auto& orders = config.client.grants[0];
    CHECK(orders.token == "orders-token-0123456789");
    CHECK(orders.publish == std::vector<std::string>{"orders.>"});
    CHECK(orders.subscribe == std::vector<std::string>{"orders.>", "prices.*"});
    CHECK_FALSE(orders.admin);
    CHECK(config.client.grants[1].admin);
    CHECK(config.client.grants[1].publish.empty());
    CHECK_FALSE(parse_ok("").client.requires_token());
}

TEST_CASE("policy_for returns the first matching entry, else the default policy",
          "[daemon][unit]") {
    daemon::Config config = parse_ok(R"(
[[streams]]
pattern = "audit.>"
redundancy = "immediate"
acks = "all"

[[streams]]
pattern = "audit.login"
acks = 2

[[streams]]
pattern = "*"
retention_events_max = 10
)");
    core::StreamPolicy audit{core::Redundancy::immediate, core::Acks{core::Acks::Kind::all, 0}, {}};
    core::StreamPolicy single{core::Redundancy::eventual, core::Acks{}, core::Retention{10, 0, 0}};
    CHECK(config.policy_for("audit.login") == audit);
    CHECK(config.policy_for("audit.eu.logout") == audit);
    CHECK(config.policy_for("orders") == single);
    CHECK(config.policy_for("orders.eu") == core::StreamPolicy{});
    CHECK(daemon::Config{}.policy_for("audit.login") == core::StreamPolicy{});
}

TEST_CASE("store_options carries data_dir and [storage], other options at their defaults",
          "[daemon][unit]") {
    daemon::Config config = parse_ok(R"(
[node]
data_dir = "/srv/spirit"
[storage]
sync = "none"
sync_period_ms = 7
map_size = "2GiB"
preallocate = "2MiB"
dedup_window_ms = 1000
dedup_events_max = 42
)");
    storage::StoreOptions options = config.store_options();
    storage::StoreOptions defaults;
    CHECK(options.data_dir == "/srv/spirit");
    CHECK(options.sync_mode == storage::SyncMode::none);
    CHECK(options.sync_period_ms == 7);
    CHECK(options.map_bytes == 2 * gib);
    CHECK(options.preallocate_bytes == 2 * mib);
    CHECK(options.dedup_window_ms == 1000);
    CHECK(options.dedup_events_max == 42);
    CHECK(options.group_events_max == defaults.group_events_max);
    CHECK(options.group_bytes_max == defaults.group_bytes_max);
    CHECK(options.queue_bytes_max == defaults.queue_bytes_max);
    CHECK(options.readers_max == defaults.readers_max);
    CHECK_FALSE(options.clock);

    storage::StoreOptions from_defaults = daemon::Config{}.store_options();
    CHECK(from_defaults.data_dir == "./data");
    CHECK(from_defaults.map_bytes == defaults.map_bytes);
    CHECK(from_defaults.preallocate_bytes == defaults.preallocate_bytes);
    CHECK(from_defaults.sync_mode == defaults.sync_mode);
    CHECK(from_defaults.sync_period_ms == defaults.sync_period_ms);
    CHECK(from_defaults.dedup_window_ms == defaults.dedup_window_ms);
    CHECK(from_defaults.dedup_events_max == defaults.dedup_events_max);
}

TEST_CASE("a missing or unreadable config file is refused naming the path", "[daemon][unit]") {
    test::TempDir dir("spirit-config");
    auto missing = dir.path() / "nope.toml";
    auto config = daemon::load_config(missing);
    REQUIRE_FALSE(config);
    CHECK(config.error().is(core::errc::config_invalid));
    CHECK_THAT(config.error().detail, StartsWith(missing.string() + ": "));
    CHECK_THAT(config.error().detail, Contains("No such file or directory"));

    auto directory = daemon::load_config(dir.path());
    REQUIRE_FALSE(directory);
    CHECK(directory.error().is(core::errc::config_invalid));
    CHECK_THAT(directory.error().detail, StartsWith(dir.path().string() + ": "));
    CHECK_THAT(directory.error().detail, Contains("Is a directory"));
}

TEST_CASE("load_config names the file in its errors and records it as source", "[daemon][unit]") {
    test::TempDir dir("spirit-config");
    auto path = dir.path() / "spirit.toml";
    {
        std::ofstream out(path);
        out << "[node]\nid = \"node-2\"\n[log]\nlevel = \"loud\"\n";
    }
    auto bad = daemon::load_config(path);
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().detail, StartsWith(path.string() + ":4:1: log.level: "));
    {
        std::ofstream out(path);
        out << "[node]\nid = \"node-2\"\n";
    }
    auto good = daemon::load_config(path);
    if (!good) FAIL(good.error().detail);
    CHECK(good->source == path);
    CHECK(good->node.id == "node-2");
}

TEST_CASE("a cluster section is read and checked as a whole", "[daemon][unit]") {
    auto config = daemon::parse_config(R"(
[node]
id = "node-a"
key_file = "node.key"
[cluster]
name = "prod"
listen = "127.0.0.1:7800"
ack_timeout_ms = 3000
heartbeat_ms = 100
election_timeout_ms = 1000
peer_timeout_ms = 1000
[[cluster.members]]
id = "node-a"
address = "127.0.0.1:7800"
public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
[[cluster.members]]
id = "node-b"
address = "127.0.0.1:7801"
public_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
[[cluster.members]]
id = "node-c"
address = "127.0.0.1:7802"
public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
[[streams]]
pattern = "audit.>"
redundancy = "immediate"
acks = 2
)",
                                       "cluster.toml");
    if (!config) FAIL(config.error().detail);
    CHECK(config->cluster.name == "prod");
    REQUIRE(config->cluster.peers.size() == 2);
    CHECK(config->cluster.peers[1].address == daemon::HostPort{"127.0.0.1", 7802});
    CHECK(config->in_cluster());
    CHECK_FALSE(config->is_witness());
    CHECK(config->self_member().id == "node-a");
    CHECK(config->group().voters() == 3);
    CHECK(config->replicas() == 3);
    CHECK(config->copies_required({core::Acks::Kind::majority, 0}) == 2);
    CHECK(config->copies_required({core::Acks::Kind::all, 0}) == 3);
    CHECK(config->copies_required({core::Acks::Kind::count, 2}) == 2);

    auto single = daemon::parse_config("", "empty.toml");
    REQUIRE(single);
    CHECK_FALSE(single->in_cluster());
    CHECK(single->replicas() == 1);
}

TEST_CASE("a witness counts as a voter, not as a replica", "[daemon][unit]") {
    auto config = daemon::parse_config(R"(
[node]
id = "w"
key_file = "w.key"
[cluster]
listen = "127.0.0.1:7800"
[[cluster.members]]
id = "a"
address = "127.0.0.1:7801"
public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
[[cluster.members]]
id = "b"
address = "127.0.0.1:7802"
public_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
[[cluster.members]]
id = "w"
address = "127.0.0.1:7800"
public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
role = "witness"
)",
                                       "witness.toml");
    if (!config) FAIL(config.error().detail);
    CHECK(config->is_witness());
    CHECK(config->replicas() == 2);
    CHECK(config->group().voters() == 3);
    CHECK(config->group().majority() == 2);
    CHECK(config->copies_required({core::Acks::Kind::majority, 0}) == 2);
}

TEST_CASE("cluster sections that cannot work are refused with the reason", "[daemon][unit]") {
    const std::string members = R"([[cluster.members]]
id = "node-a"
address = "127.0.0.1:7800"
public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
[[cluster.members]]
id = "node-b"
address = "127.0.0.1:7801"
public_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
[[cluster.members]]
id = "node-c"
address = "127.0.0.1:7802"
public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
)";
    const std::string node = "[node]\nid = \"node-a\"\nkey_file = \"k\"\n";
    const std::string listen = "[cluster]\nlisten = \"127.0.0.1:7800\"\n";
    using Row = std::tuple<std::string, std::string>;
    auto [text, why] = GENERATE_COPY(table<std::string, std::string>({
        Row{listen + "master = \"node-b\"\n",
            "cluster.master: this key was removed: the master is elected"},
        Row{listen + "[[cluster.peers]]\nid = \"b\"\naddress = \"127.0.0.1:7801\"\n",
            "[[cluster.peers]] was replaced by [[cluster.members]]"},
        Row{node + listen + members +
                "[[cluster.members]]\nid = \"node-a\"\naddress = "
                "\"127.0.0.1:7809\"\npublic_key = "
                "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n",
            "node id \"node-a\" appears twice"},
        Row{node + "[cluster]\n" + members, "cluster.listen: required in a cluster"},
        Row{"[node]\nid = \"node-a\"\n" + listen + members, "node.key_file: required in a cluster"},
        Row{"[node]\nid = \"z\"\nkey_file = \"k\"\n" + listen + members,
            "node.id \"z\" is not a member"},
        Row{listen + "[[cluster.members]]\nid = \"b\"\naddress = \"127.0.0.1:7801\"\n",
            "needs id, address and public_key"},
        Row{listen + "[[cluster.members]]\nid = \"b\"\naddress = \"127.0.0.1:7801\"\n"
                     "public_key = \"short\"\n",
            "is not a public key"},
        Row{listen +
                "[[cluster.members]]\nid = \"b\"\naddress = \"127.0.0.1:7801\"\n"
                "public_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\nrole = \"boss\"\n",
            "expected one of data, witness"},
        Row{node + listen +
                "[[cluster.members]]\nid = \"node-a\"\naddress = "
                "\"127.0.0.1:7801\"\npublic_key = "
                "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n",
            "at least two members"},
        Row{"[cluster]\nheartbeat_ms = 500\npeer_timeout_ms = 400\n",
            "must be more than heartbeat_ms"},
        Row{"[cluster]\nheartbeat_ms = 500\npeer_timeout_ms = 4000\nelection_timeout_ms = 1000\n",
            "must be at least 3 x heartbeat_ms"},
        Row{node + listen + members +
                "[[streams]]\npattern = \"x\"\nredundancy = \"immediate\"\nacks = 1\n",
            "1 copies for an immediate stream; with 3 data members it must be from 2 (a "
            "majority) to 3"},
        Row{"[cluster]\nlistn = \"x\"\n", "cluster.listn: unknown key"},
    }));
    INFO(text);
    auto config = daemon::parse_config(text, "bad.toml");
    REQUIRE_FALSE(config);
    CHECK(config.error().is(core::errc::config_invalid));
    CHECK_THAT(config.error().detail, Catch::Matchers::Contains(why));
}
