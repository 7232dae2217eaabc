// Client sessions: frames in, Hello, publishes and their acks, stream
// administration, status, errors.
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

proto::StreamDescription describe_stream(const storage::StreamInfo& i) {
    return proto::StreamDescription{i.name,        i.policy,      i.first_seq,  i.last_seq,
                                    i.event_count, i.event_bytes, i.last_epoch, i.last_timestamp_ns,
                                    i.last_hash,   i.created_ns};
}

std::uint32_t code_of(const core::Error& e) {
    if (e.code.category() == core::spirit_category()) {
        return static_cast<std::uint32_t>(e.code.value());
    }
    return static_cast<std::uint32_t>(errc::internal);
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
        close_with_error(session, core::Error{core::make_error_code(errc::shutting_down),
                                              "the daemon is shutting down"});
        return;
    }
    if (sessions_.size() > config_.limits.connections_max) {
        spdlog::warn("connection refused peer={}: {} connections open (limit {})",
                     session.connection->peer(), sessions_.size() - 1,
                     config_.limits.connections_max);
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

void Server::reply_error(Session& session, std::optional<std::uint64_t> request_id,
                         const core::Error& error) {
    send(session, proto::ErrorReply{request_id, code_of(error), error.detail});
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
    for (auto& [id, sub] : s->subscriptions) schedule(*sub);
    pump_scheduled();
}

void Server::on_closed(net::Connection& connection, const std::optional<core::Error>& why) {
    auto it = sessions_.find(connection.id());
    if (it == sessions_.end()) return;
    Session& session = it->second;
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
    auto message = proto::decode(body, config_.limits.batch_events_max);
    if (!message) {
        close_with_error(*session, message.error());
        return;
    }
    handle(*session, std::move(*message), body.size());
    pump_scheduled();
}

void Server::handle(Session& session, proto::Message&& message, std::size_t body_bytes) {
    const proto::Type type = proto::type_of(message);
    if (auto* hello = std::get_if<proto::Hello>(&message)) {
        handle_hello(session, *hello);
        return;
    }
    if (!session.ready) {
        close_with_error(session, core::Error{core::make_error_code(errc::unauthorized),
                                              "the first message must be Hello"});
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
            } else if constexpr (std::is_same_v<T, proto::Status> ||
                                 std::is_same_v<T, proto::StreamList> ||
                                 std::is_same_v<T, proto::StreamInfo> ||
                                 std::is_same_v<T, proto::StreamCreate> ||
                                 std::is_same_v<T, proto::StreamDelete> ||
                                 std::is_same_v<T, proto::Verify>) {
                handle_admin(session, std::move(m));
            } else {
                close_with_error(
                    session, core::Error{core::make_error_code(errc::unknown_message),
                                         fmt::format("{} is a message the daemon sends, not one "
                                                     "it accepts",
                                                     proto::type_name(type))});
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
        reply_error(session, publish.request_id, valid.error());
        return;
    }
    if (!may(session, Right::publish, publish.stream)) {
        reply_error(session, publish.request_id,
                    core::Error{core::make_error_code(errc::unauthorized),
                                fmt::format("this token may not publish to {}", publish.stream)});
        return;
    }
    const std::uint64_t connection_id = session.connection->id();
    const std::uint64_t request_id = publish.request_id;
    PublishReply reply = [this, connection_id, request_id, body_bytes,
                          stream =
                              std::string(publish.stream)](core::Result<proto::PublishAck> ack) {
        publish_completed(connection_id, request_id, body_bytes, stream, std::move(ack));
    };
    // Counted before the publish starts: its reply may come at once.
    session.publish_bytes_in_flight += body_bytes;
    ++session.publishes_in_flight;
    if (session.publish_bytes_in_flight > config_.limits.publish_bytes_in_flight_max &&
        !session.paused_for_publishes) {
        // Back-pressure: read nothing more until acks drain.
        session.paused_for_publishes = true;
        update_reading(session);
    }
    if (replication_ && !replication_->is_master()) {
        // A slave orders nothing itself: the master does, or the outbox keeps it.
        replication_->forward(publish.stream, publish.expected_last_seq, publish.events,
                              policy_of(std::string(publish.stream)).redundancy, std::move(reply));
    } else {
        publish_here(publish.stream, publish.expected_last_seq, publish.events, std::move(reply));
    }
}

const core::StreamPolicy& Server::policy_of(const std::string& stream) {
    auto it = policies_.find(stream);
    if (it != policies_.end()) return it->second;
    core::StreamPolicy policy = config_.policy_for(stream);
    if (auto info = store_->stream_info(stream); info && *info) policy = (*info)->policy;
    return policies_.emplace(stream, policy).first->second;
}

void Server::publish_here(std::string_view stream_name, std::optional<core::Seq> expected,
                          std::span<const core::EventDraft> events, PublishReply reply) {
    const std::string stream(stream_name);
    const core::StreamPolicy policy = policy_of(stream);
    storage::AppendRequest request{.stream = stream,
                                   .events = events,
                                   .expected_last_seq = expected,
                                   .epoch = core::Epoch{1},
                                   .create = storage::CreateMode::if_missing,
                                   .policy = policy};
    auto shared = std::make_shared<PublishReply>(std::move(reply));
    auto queued = store_->append(request, [this, stream, policy, shared](
                                              core::Result<storage::AppendResult> result) mutable {
        PublishReply& answer = *shared;
        if (!result) {
            if (result.error().is(errc::storage_full) || result.error().is(errc::storage_io) ||
                result.error().is(errc::storage_failed)) {
                spdlog::error("publish to {} failed: {}", stream, result.error().message());
            }
            return answer(core::Unexpected{std::move(result).error()});
        }
        proto::PublishAck ack;
        ack.kind = proto::AckKind::durable;
        ack.first_seq = result->first_seq;
        ack.last_seq = result->last_seq;
        ack.epoch = result->epoch;
        ack.timestamp_ns = result->timestamp_ns;
        ack.last_hash = result->last_hash;
        core::Seq highest = result->last_seq;
        ack.duplicates.reserve(result->duplicates.size());
        for (const storage::Duplicate& d : result->duplicates) {
            ack.duplicates.push_back(proto::Duplicate{d.index, d.seq});
            highest = std::max(highest, d.seq);
        }
        const bool immediate = policy.redundancy == core::Redundancy::immediate;
        if (replication_) {
            if (result->stored > 0) replication_->committed(stream, result->last_seq);
            if (immediate) {
                // Acknowledged once enough copies are durable, never before.
                const std::size_t copies = config_.copies_required(policy.acks);
                return replication_->await_copies(
                    stream, highest, copies,
                    [ack = std::move(ack), reply = std::move(answer)](
                        core::Result<std::vector<std::string>> holders) mutable {
                        if (!holders) return reply(core::Unexpected{holders.error()});
                        ack.kind = proto::AckKind::replicated;
                        ack.holders = std::move(*holders);
                        reply(std::move(ack));
                    });
            }
        }
        // Eventual (or alone): durable here is the promise; consumers may see it.
        if (result->stored > 0) stream_appended(stream, result->last_seq);
        ack.holders.push_back(config_.node.id);
        answer(std::move(ack));
    });
    if (!queued) (*shared)(core::Unexpected{std::move(queued).error()});
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

void Server::handle_admin(Session& session, proto::Message&& message) {
    const std::uint64_t connection_id = session.connection->id();
    auto done = [this, connection_id](std::uint64_t request_id) {
        return [this, connection_id, request_id](core::Result<void> r) {
            Session* s = session_of(connection_id);
            if (s == nullptr) return;
            if (r) {
                send(*s, proto::Done{request_id});
            } else {
                reply_error(*s, request_id, r.error());
            }
        };
    };
    const bool changes = std::holds_alternative<proto::StreamCreate>(message) ||
                         std::holds_alternative<proto::StreamDelete>(message) ||
                         std::holds_alternative<proto::Verify>(message);
    if (changes && !may(session, Right::admin, {})) {
        std::uint64_t id = 0;
        if (const auto* c = std::get_if<proto::StreamCreate>(&message)) id = c->request_id;
        if (const auto* d = std::get_if<proto::StreamDelete>(&message)) id = d->request_id;
        if (const auto* v = std::get_if<proto::Verify>(&message)) id = v->request_id;
        return reply_error(session, id,
                           core::Error{core::make_error_code(errc::unauthorized),
                                       "this token may not create, delete or verify streams (its "
                                       "grant has admin = false)"});
    }
    if (auto* status = std::get_if<proto::Status>(&message)) {
        proto::StatusReply reply;
        reply.request_id = status->request_id;
        reply.node_id = config_.node.id;
        reply.server = server_version();
        reply.uptime_ms = loop_.now_ms() - started_ms_;
        reply.connections = sessions_.size();
        for (auto& [id, s] : sessions_) reply.subscriptions += s.subscriptions.size();
        if (auto streams = store_->list_streams()) {
            reply.streams = static_cast<std::uint64_t>(std::count_if(
                streams->begin(), streams->end(),
                [](const storage::StreamInfo& i) { return !core::is_system_stream(i.name); }));
        }
        const storage::StoreStats stats = store_->stats();
        reply.commits = stats.commits;
        reply.syncs = stats.syncs;
        reply.events_written = stats.events_written;
        reply.bytes_written = stats.bytes_written;
        reply.failed_commits = stats.failed_commits;
        reply.queued_bytes = stats.queued_bytes;
        if (auto failure = store_->failure()) reply.storage_error = failure->message();
        reply.role = !replication_ ? "single" : replication_->is_master() ? "master" : "slave";
        reply.master = config_.master();
        if (replication_) {
            reply.peers = replication_->peer_status();
            reply.replication_errors = replication_->errors();
            if (auto outbox = store_->outbox_events()) reply.outbox_events = *outbox;
        }
        send(session, reply);
    } else if (auto* list = std::get_if<proto::StreamList>(&message)) {
        // Pages keep a reply far below any frame limit, however many streams.
        constexpr std::size_t page_max = 1000;
        const std::size_t limit =
            list->limit == 0
                ? page_max
                : static_cast<std::size_t>(std::min<std::uint64_t>(list->limit, page_max));
        auto streams = store_->list_streams(list->after, limit + 1);
        if (!streams) return reply_error(session, list->request_id, streams.error());
        proto::StreamListReply reply{list->request_id, {}, {}};
        if (streams->size() > limit) {
            streams->pop_back();
            reply.next = streams->back().name;
        }
        for (const auto& i : *streams) {
            if (!core::is_system_stream(i.name)) reply.streams.push_back(describe_stream(i));
        }
        send(session, reply);
    } else if (auto* info_request = std::get_if<proto::StreamInfo>(&message)) {
        auto info = store_->stream_info(info_request->stream);
        if (!info) return reply_error(session, info_request->request_id, info.error());
        if (!*info) {
            return reply_error(
                session, info_request->request_id,
                core::Error{core::make_error_code(errc::not_found),
                            fmt::format("stream {} does not exist", info_request->stream)});
        }
        send(session, proto::StreamInfoReply{info_request->request_id, describe_stream(**info)});
    } else if (replication_ && !replication_->is_master() &&
               (std::holds_alternative<proto::StreamCreate>(message) ||
                std::holds_alternative<proto::StreamDelete>(message))) {
        const auto* create = std::get_if<proto::StreamCreate>(&message);
        const std::uint64_t id = create != nullptr
                                     ? create->request_id
                                     : std::get<proto::StreamDelete>(message).request_id;
        reply_error(session, id,
                    core::Error{core::make_error_code(errc::not_master),
                                fmt::format("node {} is a slave; send stream changes to the "
                                            "master, {}",
                                            config_.node.id, config_.master())});
    } else if (auto* create = std::get_if<proto::StreamCreate>(&message)) {
        if (auto valid = core::validate_stream_name(create->stream); !valid) {
            return reply_error(session, create->request_id, valid.error());
        }
        const std::string stream = create->stream;
        auto queued = store_->create_stream(
            stream, create->policy,
            [this, stream, reply = done(create->request_id)](core::Result<void> r) {
                if (r) stream_appended(stream, core::Seq{0});
                reply(std::move(r));
            });
        if (!queued) reply_error(session, create->request_id, queued.error());
    } else if (auto* removal = std::get_if<proto::StreamDelete>(&message)) {
        if (auto valid = core::validate_stream_name(removal->stream); !valid) {
            return reply_error(session, removal->request_id, valid.error());
        }
        if (replication_) {
            return reply_error(session, removal->request_id,
                               core::Error{core::make_error_code(errc::busy),
                                           "deleting a stream is not replicated to slaves in this "
                                           "version, so a cluster refuses it"});
        }
        policies_.erase(removal->stream);
        auto queued = store_->delete_stream(removal->stream, done(removal->request_id));
        if (!queued) return reply_error(session, removal->request_id, queued.error());
        spdlog::info("stream {} deleted by conn={}", removal->stream, connection_id);
        stream_deleted(removal->stream);
    } else if (auto* verify = std::get_if<proto::Verify>(&message)) {
        auto report = std::make_shared<core::Result<storage::VerifyReport>>();
        const std::string stream = verify->stream;
        const std::uint64_t request_id = verify->request_id;
        storage::Store* store = store_.get();
        ++verifies_in_flight_;
        loop_.queue_work([store, stream, report] { *report = store->verify(stream); },
                         [this, connection_id, request_id, report] {
                             --verifies_in_flight_;
                             Session* s = session_of(connection_id);
                             if (s == nullptr) return;
                             if (!*report) return reply_error(*s, request_id, report->error());
                             const storage::VerifyReport& r = **report;
                             proto::VerifyReply reply{request_id,  r.stream,   r.events_checked,
                                                      r.first_seq, r.last_seq, std::nullopt,
                                                      ""};
                             if (r.first_break) {
                                 reply.break_seq = r.first_break->seq;
                                 reply.problem = r.first_break->problem;
                                 spdlog::error("verify: stream {}: {}", r.stream,
                                               r.first_break->problem);
                             }
                             send(*s, reply);
                         });
    }
}

}  // namespace spirit::daemon
