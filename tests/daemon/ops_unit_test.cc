// The pure parts of the operations code, checked on tables of cases:
//  - readiness (daemon/ops/health.h): each reason a node is not ready,
//    in the order they are checked, and each role's way to be ready;
//  - the [metrics] table of the configuration: its keys, their ranges,
//    the listener's address, and its clash with the other listeners, each
//    refused with config_invalid naming FILE:LINE:COLUMN: KEY;
//  - `spirit status` text and JSON, and the progress lines and bar.
#include <catch2/catch.hpp>

#include <string>
#include <tuple>

#include "daemon/cli/progress.h"
#include "daemon/cli/status_format.h"
#include "daemon/config.h"
#include "daemon/ops/health.h"

using namespace spirit;
using Catch::Matchers::Contains;
using daemon::ops::HealthInputs;

namespace {

HealthInputs serving_master() {
    HealthInputs in;
    in.in_cluster = true;
    in.role = "master";
    in.state = "serving";
    in.master = "node-a";
    in.serving = true;
    in.group_size = 3;
    in.peers_linked = 2;
    return in;
}

HealthInputs caught_up_slave() {
    HealthInputs in = serving_master();
    in.role = "slave";
    in.serving = false;
    in.master_linked = true;
    in.caught_up = true;
    return in;
}

}  // namespace

TEST_CASE("readiness names the first reason a node is not ready", "[daemon][unit]") {
    CHECK(daemon::ops::readiness(HealthInputs{}).ready);  // a node alone
    CHECK(daemon::ops::readiness(serving_master()).ready);
    CHECK(daemon::ops::readiness(caught_up_slave()).ready);

    using Case = std::tuple<std::string, HealthInputs, std::string>;
    HealthInputs failed;
    failed.storage_error = "an fsync failed (storage_failed)";
    HealthInputs alone_of_three = serving_master();
    alone_of_three.peers_linked = 0;
    HealthInputs electing = caught_up_slave();
    electing.role = "electing";
    electing.master.reset();
    electing.state = "electing";
    HealthInputs no_master = caught_up_slave();
    no_master.master.reset();
    no_master.state = "waiting for a master";
    HealthInputs completing = serving_master();
    completing.serving = false;
    completing.state = "completing: 2 streams";
    HealthInputs unlinked = caught_up_slave();
    unlinked.master_linked = false;
    HealthInputs behind = caught_up_slave();
    behind.caught_up = false;
    auto [name, in, detail] = GENERATE_COPY(table<std::string, HealthInputs, std::string>({
        Case{"store failed", failed, "the store refuses writes: an fsync failed (storage_failed)"},
        Case{"no majority", alone_of_three, "1 of 3 nodes reachable (a majority is 2)"},
        Case{"electing", electing, "no master is known (electing)"},
        Case{"no master", no_master, "no master is known (waiting for a master)"},
        Case{"completing", completing,
             "the master is completing its streams: completing: 2 streams"},
        Case{"master unreachable", unlinked, "the master node-a is unreachable"},
        Case{"catching up", behind, "catching up with the master node-a"},
    }));
    INFO(name);
    const daemon::ops::Readiness r = daemon::ops::readiness(in);
    CHECK_FALSE(r.ready);
    CHECK(r.detail == detail);
}

TEST_CASE("the [metrics] table is read and checked", "[daemon][unit]") {
    auto config = daemon::parse_config(
        "[metrics]\nlisten = \"127.0.0.1:7900\"\nstream_labels_max = 0\n"
        "consumer_labels_max = 10000\nhealth_stall_ms = 1000\n",
        "test.toml");
    REQUIRE(config);
    REQUIRE(config->metrics.listen);
    CHECK(*config->metrics.listen == daemon::HostPort{"127.0.0.1", 7900});
    CHECK(config->metrics.stream_labels_max == 0);
    CHECK(config->metrics.consumer_labels_max == 10000);
    CHECK(config->metrics.health_stall_ms == 1000);
    auto defaults = daemon::parse_config("[metrics]\nlisten = \"\"\n", "test.toml");
    REQUIRE(defaults);
    CHECK_FALSE(defaults->metrics.listen);
    CHECK(defaults->metrics.stream_labels_max == 100);

    using Row = std::pair<std::string, std::string>;
    auto [text, error] = GENERATE(table<std::string, std::string>({
        Row{"[metrics]\nlisten = 7900\n", "test.toml:2:1: metrics.listen: expected a string"},
        Row{"[metrics]\nlisten = \"7900\"\n", "test.toml:2:1: metrics.listen: bad host:port"},
        Row{"[metrics]\nlisten = \"[::1]:0\"\n", "test.toml:2:1: metrics.listen: bad host:port"},
        Row{"[metrics]\nlisen = \"127.0.0.1:7900\"\n",
            "test.toml:2:1: metrics.lisen: unknown key (did you mean listen?)"},
        Row{"[metrics]\nstream_labels_max = 10001\n",
            "test.toml:2:1: metrics.stream_labels_max: expected an integer from 0 to 10000"},
        Row{"[metrics]\nconsumer_labels_max = -1\n",
            "test.toml:2:1: metrics.consumer_labels_max: expected an integer from 0 to 10000"},
        Row{"[metrics]\nhealth_stall_ms = 999\n",
            "test.toml:2:1: metrics.health_stall_ms: expected an integer from 1000 to 600000"},
        Row{"[metrics]\nlisten = \"127.0.0.1:7700\"\n",
            "test.toml:1:1: metrics.listen: 127.0.0.1:7700 is also client.listen"},
        Row{"[cluster]\nlisten = \"127.0.0.1:7800\"\n[metrics]\nlisten = \"127.0.0.1:7800\"\n",
            "test.toml:3:1: metrics.listen: 127.0.0.1:7800 is also cluster.listen"},
        Row{"metrics = 1\n", "test.toml:1:1: metrics: expected a table"},
    }));
    INFO(text);
    auto bad = daemon::parse_config(text, "test.toml");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().is(core::errc::config_invalid));
    CHECK_THAT(bad.error().detail, Contains(error));
}

TEST_CASE("spirit status prints the new fields as text and JSON", "[daemon][unit]") {
    core::protocol::StatusReply s;
    s.node_id = "node-a";
    s.server = "spiritd 0.1.0";
    s.role = "master";
    s.master = "node-a";
    s.epoch = 3;
    s.state = "serving";
    s.map_bytes = std::uint64_t{16} << 30;
    s.used_bytes = 3 << 20;
    s.disk_free_bytes = std::uint64_t{40} << 30;
    s.ready = false;
    s.ready_detail = "1 of 3 nodes reachable (a majority is 2)";
    s.peers.push_back({"node-b", true, 120, "replicating", 2500});
    s.consumers.push_back({"billing", "orders", core::Seq{880}, core::Seq{1000}, 120});
    const std::string text = daemon::cli::status_text(s);
    CHECK_THAT(text, Contains("store           3.0 MiB used of a 16.0 GiB map (0.0%); 40.0 GiB "
                              "free on disk\n"));
    CHECK_THAT(text, Contains("ready           no: 1 of 3 nodes reachable (a majority is 2)\n"));
    CHECK_THAT(text, Contains("peer            node-b connected, 120 events behind for 2.5 s "
                              "(replicating)\n"));
    CHECK_THAT(text, Contains("consumer        billing on orders: 120 events behind (acked 880 "
                              "of 1000)\n"));
    const std::string json = daemon::cli::status_json(s);
    CHECK_THAT(json, Contains("\"ready\":false,\"ready_detail\":\"1 of 3 nodes reachable (a "
                              "majority is 2)\""));
    CHECK_THAT(json, Contains("\"storage_error\":null"));
    CHECK_THAT(json, Contains("{\"node\":\"node-b\",\"connected\":true,\"lag_events\":120,"
                              "\"lag_ms\":2500,\"detail\":\"replicating\"}"));
    CHECK_THAT(json, Contains("{\"consumer\":\"billing\",\"stream\":\"orders\",\"acked\":880,"
                              "\"last_seq\":1000,\"lag_events\":120}"));
    CHECK(daemon::cli::human_bytes(1023) == "1023 B");
    CHECK(daemon::cli::human_bytes(1536) == "1.5 KiB");
}

TEST_CASE("progress lines and bars say how far, how fast and how long", "[daemon][unit]") {
    using daemon::cli::ProgressState;
    using daemon::cli::ProgressUnit;
    const ProgressState half{.done = 10 << 20, .total = 20 << 20, .elapsed_s = 2};
    CHECK(daemon::cli::progress_plain_line("backup", half, ProgressUnit::bytes) ==
          "backup: 10.0 MiB of about 20.0 MiB (50%), 5.0 MiB/s, about 2 s left");
    CHECK(daemon::cli::progress_bar_line("backup", half, ProgressUnit::bytes) ==
          "backup  [############............]  50%  10.0 MiB of ~20.0 MiB  5.0 MiB/s  ETA 2 s");
    // The estimate was low: never 100% before the end, no time left to guess.
    const ProgressState over{.done = 30, .total = 20, .elapsed_s = 1};
    CHECK(daemon::cli::progress_plain_line("verify", over, ProgressUnit::events) ==
          "verify: 30 events of about 20 events (99%), 30 events/s");
    const ProgressState done{.done = 30, .total = 30, .elapsed_s = 125, .finished = true};
    CHECK(daemon::cli::progress_plain_line("verify", done, ProgressUnit::events) ==
          "verify: 30 events of about 30 events (100%), 0 events/s, done in 2:05 min");
    CHECK_THAT(daemon::cli::progress_bar_line("verify", done, ProgressUnit::events),
               Contains("[########################] 100%"));
}

TEST_CASE("the shipped configurations turn the metrics listener on at loopback", "[daemon][unit]") {
    for (const char* file :
         {SPIRIT_SOURCE_DIR "/conf/spirit.toml", SPIRIT_SOURCE_DIR "/systemd/spirit.toml"}) {
        INFO(file);
        auto config = daemon::load_config(file);
        if (!config) FAIL(config.error().detail);
        REQUIRE(config->metrics.listen);
        CHECK(*config->metrics.listen == daemon::HostPort{"127.0.0.1", 7900});
        daemon::Config::Metrics defaults;
        defaults.listen = config->metrics.listen;
        CHECK(config->metrics == defaults);
    }
}
