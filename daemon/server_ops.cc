// The Server's operations part: hot backups streamed to a client, what
// the metrics, /ready and `spirit status` read of the server's state, and
// `spirit topology`.
#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "core/stream_name.h"
#include "daemon/log.h"
#include "daemon/server.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

void Server::handle_backup(Session& session, const proto::Backup& backup) {
    auto refuse = [&](errc code, std::string why) {
        reply_error(session, backup.request_id, core::Error{core::make_error_code(code), why});
    };
    if (!may(session, Right::admin, {})) {
        return refuse(errc::unauthorized,
                      "this token may not take backups (its grant has admin = false)");
    }
    if (shutting_down_) return refuse(errc::shutting_down, "the daemon is shutting down");
    if (backup_ && !backup_->finished()) {
        return refuse(errc::busy, fmt::format("a backup is already running ({} bytes sent); one "
                                              "runs at a time",
                                              backup_->bytes_sent()));
    }
    const std::uint64_t connection_id = session.connection->id();
    ops::BackupJob::Client client{.writable =
                                      [this, connection_id] {
                                          Session* s = session_of(connection_id);
                                          return s != nullptr && s->connection->writable();
                                      },
                                  .send =
                                      [this, connection_id](const proto::Message& message) {
                                          if (Session* s = session_of(connection_id))
                                              send(*s, message);
                                      }};
    backup_.reset();
    auto job = ops::BackupJob::start(loop_, *store_, backup.request_id, std::move(client), [this] {
        --store_reads_in_flight_;
        if (shutting_down_) shutdown("");
    });
    if (!job) return reply_error(session, backup.request_id, job.error());
    spdlog::info("backup requested by conn={} peer={}", connection_id, session.connection->peer());
    ++store_reads_in_flight_;  // shutdown waits for the copy to end
    backup_ = std::move(*job);
    backup_connection_ = connection_id;
}

void Server::collect_operations(ops::Sample& sample, ops::HealthInputs& health) {
    sample.connections = sessions_.size();
    for (const auto& [id, s] : sessions_) sample.subscriptions += s.subscriptions.size();
    sample.role = cluster_ ? cluster_->role_name() : "single";
    sample.epoch = cluster_ ? cluster_->epoch().value() : 1;
    sample.master = config_.node.id;
    if (auto failure = store_->failure()) health.storage_error = failure->message();
    health.role = sample.role;
    if (cluster_) {
        const auto master = cluster_->known_master();
        sample.master = master ? master->value() : "";
        sample.master_contact_ms = cluster_->master_contact_ms();
        for (const proto::PeerStatus& p : cluster_->peer_status()) {
            sample.peers.push_back({p.node_id, p.connected, p.lag_events, 0});
            if (p.connected) ++health.peers_linked;
        }
        sample.replication_errors = cluster_->errors().size();
        if (auto outbox = store_->outbox_events()) sample.outbox_events = *outbox;
        health.in_cluster = true;
        health.state = cluster_->state();
        if (master) health.master = master->value();
        health.serving = cluster_->is_master() && cluster_->master()->serving();
        health.master_linked = std::any_of(
            sample.peers.begin(), sample.peers.end(),
            [&](const ops::Sample::Peer& p) { return p.id == sample.master && p.connected; });
        health.caught_up = cluster_->caught_up_with_master();
        health.group_size = cluster_->group_size();
    }
    for (const auto& [consumer, key] : durable_active_) {
        auto session = sessions_.find(key.first);
        if (session == sessions_.end()) continue;
        auto sub = session->second.subscriptions.find(key.second);
        if (sub == session->second.subscriptions.end()) continue;
        for (const auto& [stream, cursor] : sub->second->streams) {
            const core::Seq last = visibility_.visible(stream);
            const std::uint64_t lag = last > cursor.acked ? last.value() - cursor.acked.value() : 0;
            sample.consumers.push_back({consumer, stream, cursor.acked.value(), last.value(), lag});
        }
    }
}

void Server::fill_operations_status(proto::StatusReply& reply) const {
    const ops::Sample& sample = ops_->latest();
    if (auto space = store_->space()) {
        reply.map_bytes = space->map_bytes;
        reply.used_bytes = space->used_bytes;
        reply.disk_free_bytes = space->disk_free_bytes;
    }
    reply.ready = sample.readiness.ready;
    reply.ready_detail = sample.readiness.detail;
    for (proto::PeerStatus& p : reply.peers) {
        for (const ops::Sample::Peer& s : sample.peers) {
            if (s.id == p.node_id) p.lag_ms = s.lag_ms;
        }
    }
    std::vector<ops::Sample::Consumer> slowest = sample.consumers;
    std::sort(slowest.begin(), slowest.end(),
              [](const auto& a, const auto& b) { return a.lag_events > b.lag_events; });
    if (slowest.size() > proto::status_consumers_max) slowest.resize(proto::status_consumers_max);
    for (const ops::Sample::Consumer& c : slowest) {
        reply.consumers.push_back(
            {c.consumer, c.stream, core::Seq{c.acked}, core::Seq{c.last_seq}, c.lag_events});
    }
}

namespace {

// Laggiest first (an unknown lag as none), then by stream, the master's own
// copy first, then by node.
bool shown_before(const proto::TopologyPosition& a, const proto::TopologyPosition& b) {
    const std::uint64_t lag_a = a.lag_events.value_or(0);
    const std::uint64_t lag_b = b.lag_events.value_or(0);
    return std::tuple(lag_b, std::string_view(a.stream), a.state != "master",
                      std::string_view(a.node_id)) < std::tuple(lag_a, std::string_view(b.stream),
                                                                b.state != "master",
                                                                std::string_view(b.node_id));
}

}  // namespace

void Server::handle_topology(Session& session, const proto::Topology& request) {
    proto::TopologyReply reply;
    reply.request_id = request.request_id;
    reply.node_id = config_.node.id;
    if (cluster_) {
        cluster_->describe_topology(reply);
    } else {
        reply.role = "single";
        reply.epoch = core::Epoch{1};
        reply.master = config_.node.id;
        reply.state = "serving";
        proto::TopologyMember self;
        self.node_id = config_.node.id;
        self.role = "data";
        self.self = true;
        self.linked = true;
        reply.members.push_back(std::move(self));
        reply.groups.push_back({"default", core::Epoch{1}, config_.node.id, ""});
    }
    const bool witness = cluster_ && cluster_->is_witness();
    const bool orders = !cluster_ || cluster_->is_master();
    reply.positions_source = witness ? "" : orders ? "master" : "self";
    std::vector<proto::TopologyPosition> positions;
    if (auto streams = store_->list_streams(); streams && !witness) {
        for (const storage::StreamInfo& info : *streams) {
            if (core::is_system_stream(info.name)) continue;
            positions.push_back({config_.node.id, info.name, info.last_seq, info.confirmed_epoch,
                                 orders ? std::optional<std::uint64_t>(0) : std::nullopt,
                                 orders ? "master" : "own"});
        }
    }
    if (cluster_) {
        for (proto::TopologyPosition& p : cluster_->replica_positions()) {
            positions.push_back(std::move(p));
        }
    }
    std::erase_if(positions, [&](const proto::TopologyPosition& p) {
        return !may(session, Right::subscribe, p.stream);
    });
    reply.positions_total = positions.size();
    std::sort(positions.begin(), positions.end(), shown_before);
    if (positions.size() > proto::topology_positions_max) {
        positions.resize(proto::topology_positions_max);
    }
    reply.positions = std::move(positions);
    send(session, reply);
}

}  // namespace spirit::daemon
