// Server wiring and lifecycle: opening the store, listeners, the store's
// wake-up, housekeeping, and graceful shutdown.
#include "daemon/server.h"

#include <fmt/format.h>

#include "core/assert.h"
#include "daemon/log.h"

namespace spirit::daemon {

namespace {

constexpr std::uint64_t sweep_interval_ms = 250;
// A connection that takes longer than this to flush its last frames while
// closing (its peer stopped reading) is dropped.
constexpr std::uint64_t close_flush_ms_max = 2000;
// Shutdown waits this long for publishes in flight before closing anyway.
constexpr std::uint64_t shutdown_drain_ms_max = 10'000;
// In a cluster, and from the same start: this long for the forwards this
// node ordered or sent to be answered and, on a master, for its replicas to
// hold what it committed, before it closes its peer links anyway.
constexpr std::uint64_t cluster_drain_ms_max = 3000;
// How often streams are checked against their retention limits.
constexpr std::uint64_t retention_interval_ms = 1000;

}  // namespace

std::string server_version() {
    return "spiritd 0.1.0";
}

core::Result<std::unique_ptr<Server>> Server::start(const Config& config, net::Loop& loop,
                                                    std::optional<core::Identity> identity) {
    SPIRIT_ASSERT(!config.in_cluster() || identity.has_value());
    auto store = storage::Store::open(config.store_options());
    if (!store) {
        return core::Unexpected{core::Error{
            store.error().code, fmt::format("opening the store in {}: {}",
                                            config.node.data_dir.string(), store.error().detail)}};
    }
    std::unique_ptr<Server> server(
        new Server(config, loop, std::move(*store), std::move(identity)));
    SPIRIT_TRY(server->listen());
    if (server->cluster_) SPIRIT_TRY(server->cluster_->start());
    SPIRIT_TRY(server->ops_->start());
    return server;
}

Server::Server(const Config& config, net::Loop& loop, std::unique_ptr<storage::Store> store,
               std::optional<core::Identity> identity)
    : config_(config),
      loop_(loop),
      store_(std::move(store)),
      visibility_(
          [this](const std::string& stream) { return write_path_->initial_visible(stream); }),
      identity_(std::move(identity)) {
    started_ms_ = loop_.now_ms();
    visibility_.set_listener(this);
    if (config_.in_cluster()) {
        cluster_ = std::make_unique<Cluster>(config_, loop_, *store_, visibility_, *identity_);
    }
    write_path_ = std::make_unique<WritePath>(config_, *store_, visibility_, cluster_.get());
    if (cluster_) {
        cluster_->set_write_path(*write_path_);
        cluster_->set_stream_deleted([this](const std::string& stream) { stream_deleted(stream); });
    }
    ops_ = std::make_unique<ops::Operations>(
        config_, loop_, *store_, [this](ops::Sample& sample, ops::HealthInputs& health) {
            collect_operations(sample, health);
        });
    if (cluster_) cluster_->set_metrics(ops_->metrics());
    store_wakeup_ = std::make_unique<net::Async>(loop_, [this] { drain_store(); });
    net::Async* wakeup = store_wakeup_.get();
    store_->set_commit_notifier([wakeup] { wakeup->send(); });
    sweep_timer_ = std::make_unique<net::Timer>(loop_);
    sweep_timer_->start(sweep_interval_ms, sweep_interval_ms, [this] { sweep(); });
    pump_timer_ = std::make_unique<net::Timer>(loop_);
    retention_timer_ = std::make_unique<net::Timer>(loop_);
    retention_timer_->start(retention_interval_ms, retention_interval_ms,
                            [this] { apply_retention(); });
}

Server::~Server() {
    ops_->stop();  // no scrape reads the store from here on
    if (cluster_) cluster_->stop();
    // Close the store first: its last completions still reach sessions.
    store_.reset();
    cluster_.reset();
    listeners_.clear();
    // Connections still open are closed and freed by their close callbacks,
    // which run when the loop runs again (the Loop's destructor does).
    for (auto& [id, session] : sessions_) {
        if (session.connection) net::abandon(std::move(session.connection));
    }
}

core::Result<void> Server::listen() {
    const net::ConnectionLimits limits{
        .frame_bytes_max = config_.limits.frame_bytes_max,
        .queue_bytes_high = config_.limits.pending_bytes_per_connection_max};
    auto accepted = [this](std::unique_ptr<net::Connection> c) { accept(std::move(c)); };
    if (config_.client.listen) {
        net::TcpEndpoint tcp{config_.client.listen->host, config_.client.listen->port};
        auto l = net::Listener::listen(loop_, tcp, *this, limits, accepted);
        if (!l) {
            return core::Unexpected{core::Error{
                l.error().code,
                fmt::format("client.listen {}: {}", net::describe(tcp), l.error().detail)}};
        }
        spdlog::info("listening for clients on {}", net::describe((*l)->endpoint()));
        listeners_.push_back(std::move(*l));
    }
    if (!config_.client.unix_socket.empty()) {
        net::UnixEndpoint unix_socket{config_.client.unix_socket.string()};
        auto l = net::Listener::listen(loop_, unix_socket, *this, limits, accepted);
        if (!l) {
            return core::Unexpected{core::Error{
                l.error().code,
                fmt::format("client.unix_socket {}: {}", unix_socket.path, l.error().detail)}};
        }
        spdlog::info("listening for clients on {}", net::describe((*l)->endpoint()));
        listeners_.push_back(std::move(*l));
    }
    return {};
}

std::vector<net::Endpoint> Server::endpoints() const {
    std::vector<net::Endpoint> out;
    for (const auto& l : listeners_) out.push_back(l->endpoint());
    return out;
}

void Server::drain_store() {
    store_->drain_completed();
    pump_scheduled();
    if (shutting_down_) shutdown("");
}

void Server::sweep() {
    const std::uint64_t now = loop_.now_ms();
    for (auto& [id, session] : sessions_) {
        net::Connection& c = *session.connection;
        if (c.closing()) {
            if (session.closing_since_ms == 0) session.closing_since_ms = now;
            if (now - session.closing_since_ms > close_flush_ms_max) c.force_close();
            continue;
        }
        if (!session.ready && now - session.opened_ms > config_.limits.hello_timeout_ms) {
            ops_->metrics().connection_refused("hello_timeout");
            close_with_error(session, core::Error{core::make_error_code(core::errc::timeout),
                                                  fmt::format("no Hello within {} ms",
                                                              config_.limits.hello_timeout_ms)});
        }
    }
    if (shutting_down_) shutdown("");
}

void Server::shutdown(std::string_view reason) {
    const std::uint64_t now = loop_.now_ms();
    if (!shutting_down_) {
        shutting_down_ = true;
        shutdown_started_ms_ = now;
        spdlog::info("shutting down ({}): no new connections or publishes", reason);
        listeners_.clear();
        // The peer links stay up until the cluster has drained; the store's
        // wake-up brings the shutdown back here when it may have.
        if (cluster_) {
            net::Async* wakeup = store_wakeup_.get();
            cluster_->begin_stop([wakeup] { wakeup->send(); });
        }
        for (auto& [id, session] : sessions_) session.connection->pause_reading();
    }
    if (stopped_) return;
    if (backup_) backup_->abort();  // its copy ends at its next write
    // Let publishes in flight commit and be acknowledged first.
    // A verify or quarantine listing on the thread pool reads the store:
    // always wait for it.
    if (store_reads_in_flight_ > 0) return;
    std::uint64_t in_flight = 0;
    for (auto& [id, session] : sessions_) in_flight += session.publishes_in_flight;
    if (in_flight > 0 && now - shutdown_started_ms_ < shutdown_drain_ms_max) return;
    if (cluster_) {
        if (!cluster_->drained() && now - shutdown_started_ms_ < cluster_drain_ms_max) return;
        cluster_->stop();  // once; fails what still waits with shutting_down
    }
    for (auto& [id, session] : sessions_) {
        if (!session.connection->closing()) {
            session.connection->close(std::nullopt, net::Connection::Flush::yes);
        }
    }
    if (!sessions_.empty() && now - shutdown_started_ms_ < shutdown_drain_ms_max + 3000) return;
    stopped_ = true;
    sweep_timer_->stop();
    pump_timer_->stop();
    retention_timer_->stop();
    spdlog::info("shutdown complete");
    loop_.stop();
}

}  // namespace spirit::daemon
