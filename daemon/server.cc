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
// How often streams are checked against their retention limits.
constexpr std::uint64_t retention_interval_ms = 1000;

}  // namespace

std::string server_version() {
    return "spiritd 0.1.0";
}

core::Result<std::unique_ptr<Server>> Server::start(const Config& config, net::Loop& loop) {
    auto store = storage::Store::open(config.store_options());
    if (!store) {
        return core::Unexpected{core::Error{
            store.error().code, fmt::format("opening the store in {}: {}",
                                            config.node.data_dir.string(), store.error().detail)}};
    }
    std::unique_ptr<Server> server(new Server(config, loop, std::move(*store)));
    SPIRIT_TRY(server->listen());
    if (!config.cluster.peers.empty()) {
        Server* s = server.get();
        server->replication_ = std::make_unique<Replication>(
            server->config_, loop, *server->store_,
            Replication::Hooks{
                .visible = [s](const std::string& stream,
                               core::Seq seq) { s->stream_appended(stream, seq); },
                .publish =
                    [s](const core::protocol::Forward& f, Replication::PublishDone done) {
                        s->publish_here(f.stream, f.expected_last_seq, f.events, std::move(done));
                    }});
        SPIRIT_TRY(server->replication_->start());
    }
    return server;
}

Server::Server(const Config& config, net::Loop& loop, std::unique_ptr<storage::Store> store)
    : config_(config), loop_(loop), store_(std::move(store)) {
    started_ms_ = loop_.now_ms();
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
    if (replication_) replication_->stop();
    // Close the store first: its last completions still reach sessions.
    store_.reset();
    replication_.reset();
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
        if (replication_) replication_->stop();
        for (auto& [id, session] : sessions_) session.connection->pause_reading();
    }
    if (stopped_) return;
    // Let publishes in flight commit and be acknowledged first.
    // A verify on the thread pool reads the store: always wait for it.
    if (verifies_in_flight_ > 0) return;
    std::uint64_t in_flight = 0;
    for (auto& [id, session] : sessions_) in_flight += session.publishes_in_flight;
    if (in_flight > 0 && now - shutdown_started_ms_ < shutdown_drain_ms_max) return;
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
