// Client sessions: frames in, Hello, publishes and their acks, rights,
// errors. The administrative requests are in server_admin.cc.
#include <algorithm>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/stream_name.h"
#include "daemon/log.h"
#include "daemon/server.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

std::uint32_t code_of(const core::Error& e) {
    if (e.code.category() == core::spirit_category()) {
        return static_cast<std::uint32_t>(e.code.value());
    }
    return static_cast<std::uint32_t>(errc::internal);
}

core::Error hello_first() {
    return core::Error{core::make_error_code(errc::unauthorized),
                       "the first message must be Hello"};
}

core::Error not_accepted(proto::Type type) {
    return core::Error{core::make_error_code(errc::unknown_message),
                       fmt::format("{} is a message the daemon sends, not one it accepts",
                                   proto::type_name(type))};
}

}  // namespace

Server::Session* Server::session_of(std::uint64_t connection_id) {
    auto it = sessions_.find(connection_id);
    if (it == sessions_.end() || !it->second.connection) return nullptr;
    return &it->second;
}

void Server::accept(std::unique_ptr<net::Connection> connection) {
    const std::uint64_t id = connection->id();
    Session& session = sessions_[id];
    session.connection = std::move(connection);
    session.opened_ms = loop_.now_ms();
    if (shutting_down_) {
        ops_->metrics().connection_refused("shutting_down");
        close_with_error(session, core::Error{core::make_error_code(errc::shutting_down),
                                              "the daemon is shutting down"});
        return;
    }
    if (sessions_.size() > config_.limits.connections_max) {
        spdlog::warn("connection refused peer={}: {} connections open (limit {})",
                     session.connection->peer(), sessions_.size() - 1,
                     config_.limits.connections_max);
        ops_->metrics().connection_refused("too_many_connections");
        close_with_error(session, core::Error{core::make_error_code(errc::overloaded),
                                              fmt::format("too many connections (limit {})",
                                                          config_.limits.connections_max)});
        return;
    }
    spdlog::debug("connection accepted conn={} peer={}", id, session.connection->peer());
}

void Server::send(Session& session, const proto::Message& message) {
    proto::encode(session.connection->send_buffer(), message);
    session.connection->commit_send_buffer();
    if (!session.connection->writable() && !session.paused_for_output) {
        // A client that does not read its replies gets no more requests read.
        session.paused_for_output = true;
        update_reading(session);
    }
}

void Server::update_reading(Session& session) {
    if (session.connection->closing()) return;
    if (session.paused_for_publishes || session.paused_for_output || shutting_down_) {
        session.connection->pause_reading();
    } else {
        session.connection->resume_reading();
    }
}

std::string Server::naming_master(const core::Error& error) const {
    if (!cluster_ || !(error.is(errc::not_master) || error.is(errc::unavailable))) {
        return error.detail;
    }
    // Whatever refused it (a slave, the master itself, a forward relayed, a
    // step-down), the client learns where to publish: the master this node
    // knows when it answers. Messages name it as "the master node-b", "has
    // master node-b" or "the master of epoch 5 is node-b".
    if (const auto master = cluster_->known_master()) {
        const std::string& id = master->value();
        if (error.detail.find("master " + id) != std::string::npos ||
            error.detail.find(" is " + id) != std::string::npos) {
            return error.detail;
        }
        return fmt::format("{}; the master is {}", error.detail, id);
    }
    if (error.detail.find("master") != std::string::npos) return error.detail;
    return fmt::format("{}; no master is known to node {} now", error.detail, config_.node.id);
}

void Server::reply_error(Session& session, std::optional<std::uint64_t> request_id,
                         const core::Error& error) {
    send(session, proto::ErrorReply{request_id, code_of(error), naming_master(error)});
}

void Server::close_with_error(Session& session, const core::Error& error) {
    if (session.connection->closing()) return;
    spdlog::info("closing conn={} peer={}: {}", session.connection->id(),
                 session.connection->peer(), error.message());
    reply_error(session, std::nullopt, error);
    session.connection->close(error, net::Connection::Flush::yes);
}

void Server::on_frame_error(net::Connection& connection, const core::Error& problem) {
    if (Session* s = session_of(connection.id())) close_with_error(*s, problem);
}

void Server::on_writable(net::Connection& connection) {
    Session* s = session_of(connection.id());
    if (s == nullptr) return;
    if (s->paused_for_output) {
        s->paused_for_output = false;
        update_reading(*s);
    }
    if (backup_ && backup_connection_ == connection.id()) backup_->resume();
    for (auto& [id, sub] : s->subscriptions) schedule(*sub);
    pump_scheduled();
}

void Server::on_closed(net::Connection& connection, const std::optional<core::Error>& why) {
    auto it = sessions_.find(connection.id());
    if (it == sessions_.end()) return;
    Session& session = it->second;
    if (backup_ && backup_connection_ == connection.id()) backup_->abort();
    for (auto& [id, sub] : session.subscriptions) forget_subscription(*sub);
    if (why && !why->is(errc::timeout)) {
        spdlog::debug("connection closed conn={} peer={}: {}", connection.id(), connection.peer(),
                      why->message());
    }
    sessions_.erase(it);  // destroys the connection, which its close callback allows
    if (shutting_down_) shutdown("");
}

void Server::on_frame(net::Connection& connection, core::ByteView body) {
    Session* session = session_of(connection.id());
    if (session == nullptr || connection.closing()) return;
    auto message = proto::decode_frame(body, config_.limits.batch_events_max);
    if (!message) {
        refuse_frame(*session, message.error());
    } else {
        handle(*session, std::move(*message), body.size());
    }
    pump_scheduled();
}

void Server::refuse_frame(Session& session, const proto::DecodeError& problem) {
    const std::optional<proto::Type> type = problem.type;
    if (type && proto::family_of(*type) != proto::Family::client) {
        return close_with_error(session, not_accepted(*type));
    }
    if (type && *type != proto::Type::hello && !session.ready) {
        return close_with_error(session, hello_first());
    }
    if (problem.request_id) return reply_error(session, *problem.request_id, problem.error);
    if (const auto id = problem.subscription_id) {
        // A refused Subscribe leaves a subscription open under its id running,
        // as any refused Subscribe does; a bad Credit or Ack ends its subscription.
        if (*type == proto::Type::subscribe || !session.subscriptions.contains(*id)) {
            return send(session, proto::SubscriptionEnded{*id, code_of(problem.error),
                                                          problem.error.detail});
        }
        return end_subscription(session, *id, problem.error);
    }
    close_with_error(session, problem.error);
}

void Server::handle(Session& session, proto::Message&& message, std::size_t body_bytes) {
    const proto::Type type = proto::type_of(message);
    if (auto* hello = std::get_if<proto::Hello>(&message)) {
        handle_hello(session, *hello);
        return;
    }
    if (!session.ready) {
        close_with_error(session, hello_first());
        return;
    }
    std::visit(
        [&](auto&& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, proto::Publish>) {
                handle_publish(session, m, body_bytes);
            } else if constexpr (std::is_same_v<T, proto::Subscribe>) {
                handle_subscribe(session, std::move(m));
            } else if constexpr (std::is_same_v<T, proto::Credit>) {
                handle_credit(session, m);
            } else if constexpr (std::is_same_v<T, proto::Ack>) {
                handle_ack(session, m);
            } else if constexpr (std::is_same_v<T, proto::Unsubscribe>) {
                handle_unsubscribe(session, m.subscription_id);
            } else if constexpr (std::is_same_v<T, proto::Backup>) {
                handle_backup(session, m);
            } else if constexpr (std::is_same_v<T, proto::Topology>) {
                handle_topology(session, m);
            } else if constexpr (std::is_same_v<T, proto::Status> ||
                                 std::is_same_v<T, proto::StreamList> ||
                                 std::is_same_v<T, proto::StreamInfo> ||
                                 std::is_same_v<T, proto::StreamCreate> ||
                                 std::is_same_v<T, proto::StreamDelete> ||
                                 std::is_same_v<T, proto::StreamAlter> ||
                                 std::is_same_v<T, proto::Verify> ||
                                 std::is_same_v<T, proto::ClusterSetMaster> ||
                                 std::is_same_v<T, proto::QuarantineList> ||
                                 std::is_same_v<T, proto::QuarantineRead> ||
                                 std::is_same_v<T, proto::QuarantineRepublish>) {
                handle_admin(session, std::move(m));
            } else {
                close_with_error(session, not_accepted(type));
            }
        },
        std::move(message));
}

void Server::handle_hello(Session& session, const proto::Hello& hello) {
    if (session.ready) {
        close_with_error(session, core::Error{core::make_error_code(errc::invalid_argument),
                                              "Hello was already sent on this connection"});
        return;
    }
    if (hello.version != proto::version) {
        ops_->metrics().connection_refused("bad_version");
        close_with_error(session,
                         core::Error{core::make_error_code(errc::unsupported_version),
                                     fmt::format("protocol version {} is not supported; this "
                                                 "daemon speaks version {}",
                                                 hello.version, proto::version)});
        return;
    }
    if (config_.client.requires_token()) {
        const auto& tokens = config_.client.tokens;
        const auto& grants = config_.client.grants;
        bool known = false;
        if (hello.token) {
            // Compared in constant time, so response times say nothing of a token.
            auto same = [&](const std::string& t) {
                return core::constant_time_equal(core::as_bytes(t), core::as_bytes(*hello.token));
            };
            known = std::any_of(tokens.begin(), tokens.end(), same);
            auto grant = std::find_if(grants.begin(), grants.end(),
                                      [&](const auto& g) { return same(g.token); });
            if (grant != grants.end()) {
                known = true;
                session.grant = &*grant;
            }
        }
        if (!known) {
            ops_->metrics().connection_refused("unauthorized");
            spdlog::warn("refused conn={} peer={}: {}", session.connection->id(),
                         session.connection->peer(), hello.token ? "unknown token" : "no token");
            close_with_error(session, core::Error{core::make_error_code(errc::unauthorized),
                                                  hello.token ? "unknown token"
                                                              : "this daemon requires a token"});
            return;
        }
    }
    session.ready = true;
    session.client_name = hello.client_name;
    send(session, proto::Welcome{proto::version, config_.node.id, server_version(),
                                 config_.limits.frame_bytes_max, config_.limits.batch_events_max});
}

void Server::handle_publish(Session& session, const proto::Publish& publish,
                            std::size_t body_bytes) {
    if (auto valid = core::validate_stream_name(publish.stream); !valid) {
        ops_->metrics().publish_failed("invalid_stream_name");
        reply_error(session, publish.request_id, valid.error());
        return;
    }
    if (!may(session, Right::publish, publish.stream)) {
        ops_->metrics().publish_failed("unauthorized");
        reply_error(session, publish.request_id,
                    core::Error{core::make_error_code(errc::unauthorized),
                                fmt::format("this token may not publish to {}", publish.stream)});
        return;
    }
    start_publish(session, publish.request_id,
                  PublishRequest{publish.stream, publish.expected_last_seq, publish.events},
                  body_bytes);
}

void Server::start_publish(Session& session, std::uint64_t request_id,
                           const PublishRequest& request, std::size_t bytes) {
    const std::uint64_t connection_id = session.connection->id();
    PublishReply reply =
        [this, connection_id, request_id, bytes, started = std::chrono::steady_clock::now(),
         stream = std::string(request.stream)](core::Result<proto::PublishAck> ack) {
            ops_->publish_done(stream, bytes, ack, started);
            publish_completed(connection_id, request_id, bytes, stream, std::move(ack));
        };
    // Counted before the publish starts: its reply may come at once.
    session.publish_bytes_in_flight += bytes;
    ++session.publishes_in_flight;
    if (session.publish_bytes_in_flight > config_.limits.publish_bytes_in_flight_max &&
        !session.paused_for_publishes) {
        // Back-pressure: read nothing more until acks drain.
        session.paused_for_publishes = true;
        update_reading(session);
    }
    write_path_->publish(request, std::move(reply));
}

void Server::publish_completed(std::uint64_t connection_id, std::uint64_t request_id,
                               std::size_t body_bytes, const std::string& stream,
                               core::Result<proto::PublishAck> ack) {
    (void)stream;
    Session* session = session_of(connection_id);
    if (session == nullptr) return;
    session->publish_bytes_in_flight -= body_bytes;
    --session->publishes_in_flight;
    if (ack) {
        ack->request_id = request_id;
        send(*session, *ack);
    } else {
        reply_error(*session, request_id, ack.error());
    }
    if (session->paused_for_publishes &&
        session->publish_bytes_in_flight <= config_.limits.publish_bytes_in_flight_max / 2) {
        session->paused_for_publishes = false;
        update_reading(*session);
    }
}

bool Server::may(const Session& session, Right right, std::string_view target) const {
    const Config::Client::Grant* grant = session.grant;
    if (grant == nullptr) return true;
    switch (right) {
        case Right::publish:
            return std::any_of(grant->publish.begin(), grant->publish.end(),
                               [&](const std::string& p) { return pattern_matches(p, target); });
        case Right::subscribe:
            // A pattern subscription needs a grant that covers all it can match.
            return std::any_of(grant->subscribe.begin(), grant->subscribe.end(),
                               [&](const std::string& p) { return pattern_covers(p, target); });
        case Right::admin:
            return grant->admin;
    }
    return false;
}

}  // namespace spirit::daemon
