// The metrics listener of a real spiritd: /metrics scraped under a publish
// and subscribe load is accepted line by line by `promtool check metrics`
// (the Prometheus project's own linter), and its counters say exactly what
// happened: every acknowledged event, every delivered one, every commit in
// the commit histograms. Per-stream and per-consumer series are capped as
// configured, with the rest summed under "_other". /health and /ready
// answer 200 for a node alone; other paths 404, other methods 405; a
// listener that cannot bind stops spiritd naming metrics.listen.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "tests/integration/daemon_harness.h"
#include "tests/ops/ops_harness.h"

using namespace spirit;
using Catch::Matchers::Contains;

namespace {

struct MetricsDaemon {
    std::uint16_t port = test::free_tcp_port();
    test::Daemon daemon;

    explicit MetricsDaemon(std::string extra = "", std::string token = "")
        : daemon(test::DaemonOptions{
              .extra_toml = fmt::format("[metrics]\nlisten = \"127.0.0.1:{}\"\n{}\n", port, extra),
              .client_toml = token.empty() ? "" : fmt::format("tokens = [\"{}\"]\n", token),
              .token = token}) {
        daemon.start();
    }

    std::string scrape() const {
        test::HttpReply r = test::http_request(port, "/metrics");
        REQUIRE(r.status == 200);
        return r.body;
    }

    // The value of `series`, waiting up to 5 s for the loop's next sample.
    double eventually(const std::string& series, double want) const {
        std::optional<double> v;
        for (int i = 0; i < 100; ++i) {
            v = test::sample_value(scrape(), series);
            if (v && *v == want) break;
            ::usleep(50'000);
        }
        INFO(series);
        REQUIRE(v);
        return *v;
    }
};

}  // namespace

TEST_CASE("a scrape under load passes promtool and counts every ack, delivery and commit",
          "[ops][metrics]") {
    MetricsDaemon d;
    auto consumer = d.daemon.client();
    std::uint64_t delivered = 0;
    auto sub =
        consumer->subscribe({.target = "load"}, [&](const core::EnvelopeView&) { ++delivered; });
    REQUIRE(sub);
    test::Load load(d.daemon.endpoint(), "load", 1);
    // Scrape while publishes and deliveries are in flight.
    REQUIRE(consumer->run_until([&] { return delivered >= 2000; }, std::chrono::seconds(60)));
    const std::string busy = d.scrape();
    test::check_promtool_accepts(busy);
    CHECK(test::metric_value(busy, "spirit_publish_events_total{stream=\"load\"}") > 0);
    const auto& batches = load.stop();
    double acked_batches = 0;
    for (const auto& b : batches) acked_batches += b.result && *b.result ? 1 : 0;
    REQUIRE(acked_batches == static_cast<double>(batches.size()));
    const double events = 10 * acked_batches;
    REQUIRE(consumer->run_until([&] { return static_cast<double>(delivered) == events; },
                                std::chrono::seconds(60)));

    const std::string s = d.scrape();
    test::check_promtool_accepts(s);
    CHECK(test::metric_value(s, "spirit_publish_events_total{stream=\"load\"}") == events);
    // One per Publish frame: the client sends queued publishes together.
    const double acks =
        test::metric_value(s, "spirit_publish_ack_duration_seconds_count{redundancy=\"eventual\"}");
    CHECK(acks > 0);
    CHECK(acks <= acked_batches);
    CHECK(test::metric_value(
              s, "spirit_publish_ack_duration_seconds_count{redundancy=\"immediate\"}") == 0);
    CHECK(test::metric_value(s, "spirit_delivered_events_total{stream=\"load\"}") == events);
    CHECK(test::metric_value(s, "spirit_storage_events_written_total") == events);
    const double commits = test::metric_value(s, "spirit_storage_commits_total");
    CHECK(commits > 0);
    CHECK(commits < events);  // group commit: many publishes share one
    CHECK(test::metric_value(s, "spirit_storage_commit_duration_seconds_count") == commits);
    CHECK(test::metric_value(s, "spirit_storage_commit_duration_seconds_bucket{le=\"+Inf\"}") ==
          commits);
    CHECK(test::metric_value(s, "spirit_storage_fsync_duration_seconds_count") ==
          test::metric_value(s, "spirit_storage_fsyncs_total"));
    CHECK(test::metric_value(s, "spirit_storage_commit_batch_events_sum") == events);
    CHECK(test::metric_value(s, "spirit_storage_commit_duration_seconds_sum") > 0);
    CHECK(test::metric_value(s, "spirit_storage_map_bytes") == 16.0 * (1 << 30));
    CHECK(test::metric_value(s, "spirit_storage_used_bytes") > 0);
    CHECK(test::metric_value(s, "spirit_storage_failed") == 0);
    CHECK(test::metric_value(s, "spirit_quarantined_events") == 0);
    CHECK(test::metric_value(s, "spirit_role{group=\"default\",role=\"single\"}") == 1);
    CHECK(test::metric_value(s, "spirit_role{group=\"default\",role=\"master\"}") == 0);
    CHECK(test::metric_value(s, "spirit_epoch{group=\"default\"}") == 1);
    CHECK(test::metric_value(s, "spirit_ready") == 1);
    CHECK(d.eventually("spirit_connections", 1) == 1);
    CHECK(d.eventually("spirit_subscriptions", 1) == 1);
}

TEST_CASE("per-stream and per-consumer series are capped, the rest summed under _other",
          "[ops][metrics]") {
    MetricsDaemon d("stream_labels_max = 2\nconsumer_labels_max = 1\n");
    auto c = d.daemon.client();
    for (int i = 1; i <= 5; ++i) {
        const std::string payload = "x";
        core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
        for (int k = 0; k < i; ++k) REQUIRE(c->publish(fmt::format("s{}", i), std::span(&e, 1)));
    }
    // Three durable consumers that take nothing: lag 1, 2 and 3 on s1..s3.
    std::vector<std::unique_ptr<net::Client>> consumers;
    for (int i = 1; i <= 3; ++i) {
        consumers.push_back(d.daemon.client());
        REQUIRE(consumers.back()->subscribe(
            {.target = fmt::format("s{}", i), .durable = fmt::format("c{}", i), .credit_events = 0},
            [](const core::EnvelopeView&) {}));
    }
    d.eventually("spirit_consumer_lag_events{consumer=\"c3\",stream=\"s3\"}", 3);
    const std::string s = d.scrape();
    test::check_promtool_accepts(s);
    CHECK(test::metric_value(s, "spirit_publish_events_total{stream=\"s1\"}") == 1);
    CHECK(test::metric_value(s, "spirit_publish_events_total{stream=\"s2\"}") == 2);
    CHECK_FALSE(test::sample_value(s, "spirit_publish_events_total{stream=\"s3\"}"));
    CHECK(test::metric_value(s, "spirit_publish_events_total{stream=\"_other\"}") == 3 + 4 + 5);
    CHECK(test::metric_value(s, "spirit_consumer_lag_events{consumer=\"c3\",stream=\"s3\"}") == 3);
    CHECK_FALSE(test::sample_value(s, "spirit_consumer_lag_events{consumer=\"c2\",stream=\"s2\"}"));
    CHECK(test::metric_value(
              s, "spirit_consumer_lag_events{consumer=\"_other\",stream=\"_other\"}") == 1 + 2);
}

TEST_CASE("/health and /ready answer, other paths are 404 and other methods 405",
          "[ops][metrics]") {
    MetricsDaemon d;
    CHECK(test::http_request(d.port, "/health").status == 200);
    CHECK(test::http_request(d.port, "/health").body == "ok\n");
    CHECK(test::http_request(d.port, "/ready").status == 200);
    CHECK(test::http_request(d.port, "/ready").body == "ready\n");
    CHECK(test::http_request(d.port, "/metrics", "HEAD").status == 200);
    CHECK(test::http_request(d.port, "/nothing").status == 404);
    CHECK(test::http_request(d.port, "/metrics", "POST").status == 405);
}

TEST_CASE("a metrics listener that cannot bind stops spiritd, naming metrics.listen",
          "[ops][metrics]") {
    // Hold the port, listening, so civetweb cannot have it.
    const std::uint16_t port = test::free_tcp_port();
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    test::Daemon d(test::DaemonOptions{
        .extra_toml = fmt::format("[metrics]\nlisten = \"127.0.0.1:{}\"\n", port)});
    auto run = test::run_command({SPIRIT_SPIRITD, "--config", d.config_path().string()});
    ::close(fd);
    INFO(run.out << run.err);
    CHECK(run.exit_code == 1);
    CHECK_THAT(run.out + run.err, Contains(fmt::format("metrics.listen 127.0.0.1:{}", port)));
}

TEST_CASE("the shipped alert rules parse and the rules and dashboard name only exported metrics",
          "[ops][metrics]") {
    const std::string rules = SPIRIT_SOURCE_DIR "/conf/prometheus-alerts.yml";
    const std::string dashboard = SPIRIT_SOURCE_DIR "/conf/grafana-dashboard.json";
    auto check = test::run_command({"/usr/bin/promtool", "check", "rules", rules});
    INFO(check.out << check.err);
    REQUIRE(check.exit_code == 0);
    CHECK_THAT(check.out, Contains("SUCCESS"));
    auto json = test::run_command(
        {"/usr/bin/python3", "-c", "import json,sys; json.load(open(sys.argv[1]))", dashboard});
    INFO(json.err);
    REQUIRE(json.exit_code == 0);

    // A scrape with every family in it: a refused connection and a refused
    // publish give the two families that only exist once counted.
    const std::string token = "metrics-test-token-0123";
    MetricsDaemon d("", token);
    const std::string socket = (d.daemon.dir() / "spirit.sock").string();
    CHECK(test::run_command({SPIRIT_CLI, "--socket", socket, "status"}).exit_code == 1);
    CHECK(test::run_command(
              {SPIRIT_CLI, "--socket", socket, "--token", token, "pub", "bad name", "x"})
              .exit_code == 2);
    net::ClientOptions options;
    options.token = token;
    auto c = d.daemon.client(options);
    const std::string payload = "x";
    core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
    REQUIRE_FALSE(c->publish("bad name", std::span(&e, 1)));
    REQUIRE(c->publish("orders", std::span(&e, 1)));
    bool delivered = false;
    REQUIRE(
        c->subscribe({.target = "orders"}, [&](const core::EnvelopeView&) { delivered = true; }));
    REQUIRE(c->run_until([&] { return delivered; }, std::chrono::seconds(10)));
    const std::string scrape = d.scrape();
    CHECK(test::metric_value(scrape, "spirit_connections_refused_total{reason=\"unauthorized\"}") ==
          1);
    CHECK(test::metric_value(scrape, "spirit_publish_errors_total{code=\"invalid_stream_name\"}") ==
          1);
    std::set<std::string> exported;
    std::istringstream lines(scrape);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind("# TYPE ", 0) != 0) continue;
        std::istringstream words(line.substr(7));
        std::string name, type;
        words >> name >> type;
        exported.insert(name);
        if (type == "histogram") {
            for (const char* suffix : {"_bucket", "_sum", "_count"}) exported.insert(name + suffix);
        }
    }
    for (const std::string& file : {rules, dashboard}) {
        std::ifstream in(file);
        const std::string text((std::istreambuf_iterator<char>(in)), {});
        const std::regex metric("spirit_[a-z_]+");
        std::size_t named = 0;
        for (auto it = std::sregex_iterator(text.begin(), text.end(), metric);
             it != std::sregex_iterator(); ++it, ++named) {
            INFO(file << " names " << it->str());
            CHECK(exported.contains(it->str()));
        }
        CHECK(named > 10);
    }
}
