// daemon/ops/operations.h: what the Server hands operators: the metrics
// (daemon/ops/metrics.h), readiness (daemon/ops/health.h) and the HTTP
// listener that serves /metrics, /health and /ready (daemon/ops/http.h).
//
// Every sample_interval_ms the loop thread takes a Sample through the
// Server's `collect` (connections, roles, peers, durable consumers,
// readiness inputs) and publishes it; scrapes read the latest one, so a
// scrape never waits for the loop. /health answers 503 once no sample was
// taken for metrics.health_stall_ms: the loop has stopped turning.
//
// Owned by the Server; its timer and callbacks run on the loop thread, the
// HTTP handlers on civetweb's threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/protocol.h"
#include "daemon/config.h"
#include "daemon/ops/health.h"
#include "daemon/ops/http.h"
#include "daemon/ops/metrics.h"
#include "net/loop.h"
#include "storage/store.h"

namespace spirit::daemon::ops {

inline constexpr std::uint64_t sample_interval_ms = 500;

class Operations {
 public:
    // Fills a sample's loop-owned fields and the readiness inputs.
    using Collect = std::function<void(Sample& sample, HealthInputs& health)>;

    // REQUIRES: everything outlives this object.
    Operations(const Config& config, net::Loop& loop, const storage::Store& store, Collect collect);
    ~Operations();
    Operations(const Operations&) = delete;
    Operations& operator=(const Operations&) = delete;

    // Takes the first sample, starts sampling and, with metrics.listen set,
    // the HTTP listener. Errors name metrics.listen.
    [[nodiscard]] core::Result<void> start();
    // Stops the listener (waiting for requests in progress) and sampling.
    void stop();

    Metrics& metrics() { return *metrics_; }
    // The latest sample (loop thread).
    const Sample& latest() const { return latest_; }
    // Where the listener listens; nullopt when off.
    std::optional<std::uint16_t> http_port() const;

    // A publish that came in at `started` was answered with `ack`.
    void publish_done(std::string_view stream, std::size_t frame_bytes,
                      const core::Result<core::protocol::PublishAck>& ack,
                      std::chrono::steady_clock::time_point started);

 private:
    void take_sample();
    HttpResponse health() const;
    HttpResponse ready() const;

    const Config& config_;
    net::Loop& loop_;
    Collect collect_;
    std::unique_ptr<Metrics> metrics_;
    std::unique_ptr<net::Timer> timer_;
    std::unique_ptr<HttpServer> http_;
    Sample latest_;
    std::uint64_t start_time_ms_ = 0;
    // Loop clock (ms) when each peer last held everything the master had.
    std::map<std::string, std::uint64_t> peer_caught_up_ms_;
    // Steady clock (ms) of the last sample: /health's sign of life.
    std::atomic<std::int64_t> last_sample_ms_{0};
};

}  // namespace spirit::daemon::ops
