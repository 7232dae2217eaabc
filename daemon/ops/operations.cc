#include "daemon/ops/operations.h"

#include <fmt/format.h>

#include "daemon/log.h"

namespace spirit::daemon::ops {

namespace proto = core::protocol;

namespace {

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

Operations::Operations(const Config& config, net::Loop& loop, const storage::Store& store,
                       Collect collect)
    : config_(config),
      loop_(loop),
      collect_(std::move(collect)),
      metrics_(std::make_unique<Metrics>(config, store)) {
    start_time_ms_ =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
}

Operations::~Operations() {
    stop();
}

core::Result<void> Operations::start() {
    take_sample();
    timer_ = std::make_unique<net::Timer>(loop_);
    timer_->start(sample_interval_ms, sample_interval_ms, [this] { take_sample(); });
    if (!config_.metrics.listen) return {};
    auto http =
        HttpServer::start(*config_.metrics.listen,
                          {{"/metrics",
                            [this] {
                                return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                                                    metrics_->render()};
                            }},
                           {"/health", [this] { return health(); }},
                           {"/ready", [this] { return ready(); }}});
    if (!http) return core::Unexpected{http.error()};
    http_ = std::move(*http);
    spdlog::info("serving /metrics, /health and /ready on {}:{}", config_.metrics.listen->host,
                 http_->port());
    return {};
}

void Operations::stop() {
    http_.reset();
    if (timer_) timer_->stop();
}

std::optional<std::uint16_t> Operations::http_port() const {
    if (!http_) return std::nullopt;
    return http_->port();
}

void Operations::take_sample() {
    Sample s;
    HealthInputs health;
    collect_(s, health);
    const std::uint64_t now = loop_.now_ms();
    for (Sample::Peer& p : s.peers) {
        auto [it, fresh] = peer_caught_up_ms_.try_emplace(p.id, now);
        if (p.lag_events == 0 || s.role != "master") it->second = now;
        p.lag_ms = now - it->second;
    }
    s.readiness = readiness(health);
    s.start_time_ms = start_time_ms_;
    latest_ = s;
    metrics_->set_sample(std::move(s));
    last_sample_ms_.store(steady_ms(), std::memory_order_relaxed);
}

HttpResponse Operations::health() const {
    const std::int64_t quiet = steady_ms() - last_sample_ms_.load(std::memory_order_relaxed);
    if (quiet > static_cast<std::int64_t>(config_.metrics.health_stall_ms)) {
        return HttpResponse{
            503, "text/plain; charset=utf-8",
            fmt::format("unhealthy: the event loop has not turned for {} ms\n", quiet)};
    }
    return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
}

HttpResponse Operations::ready() const {
    HttpResponse alive = health();
    if (alive.status != 200) return alive;
    const Readiness r = metrics_->readiness();
    if (!r.ready)
        return HttpResponse{503, "text/plain; charset=utf-8", "not ready: " + r.detail + "\n"};
    return HttpResponse{200, "text/plain; charset=utf-8", "ready\n"};
}

void Operations::publish_done(std::string_view stream, std::size_t frame_bytes,
                              const core::Result<proto::PublishAck>& ack,
                              std::chrono::steady_clock::time_point started) {
    if (!ack) {
        const bool ours = ack.error().code.category() == core::spirit_category();
        metrics_->publish_failed(
            ours ? core::errc_name(static_cast<core::errc>(ack.error().code.value())) : "internal");
        return;
    }
    const std::uint64_t events =
        ack->first_seq.value() == 0 ? 0 : ack->last_seq.value() - ack->first_seq.value() + 1;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics_->publish_acked(stream, events, frame_bytes,
                            ack->kind == proto::AckKind::replicated ? core::Redundancy::immediate
                                                                    : core::Redundancy::eventual,
                            seconds);
}

}  // namespace spirit::daemon::ops
