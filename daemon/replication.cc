// Replication: peer links (handshake, heartbeats, redial) and the master's
// side (positions, pushing, acks, copies). The slave's side is in
// replication_slave.cc.
#include "daemon/replication.h"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/hash_chain.h"
#include "core/limits.h"
#include "daemon/log.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

namespace {

// One Replicate frame: at most this many events and bytes.
constexpr std::size_t replicate_events_max = 1024;
constexpr std::size_t replicate_bytes_max = 1u << 20;
// Batches one pump sends per slave before yielding to other work.
constexpr int batches_per_pump = 16;

core::Error error(errc code, std::string detail) {
    return core::Error{core::make_error_code(code), std::move(detail)};
}

std::optional<std::pair<std::string, core::Seq>> corrupt_hook() {
    const char* hook = std::getenv("SPIRIT_TEST_CORRUPT_REPLICATION");
    if (hook == nullptr) return std::nullopt;
    std::string_view text(hook);
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    return std::make_pair(
        std::string(text.substr(0, colon)),
        core::Seq{std::strtoull(std::string(text.substr(colon + 1)).c_str(), nullptr, 10)});
}

}  // namespace

Replication::Replication(const Config& config, net::Loop& loop, storage::Store& store, Hooks hooks)
    : config_(config),
      loop_(loop),
      store_(store),
      hooks_(std::move(hooks)),
      jitter_(std::random_device{}()),
      corrupt_once_(corrupt_hook()) {
    SPIRIT_ASSERT(!config_.cluster.peers.empty());
    for (const Config::Peer& p : config_.cluster.peers) {
        auto peer = std::make_unique<Peer>();
        peer->id = p.id;
        peer->address = net::TcpEndpoint{p.address.host, p.address.port};
        peer->dials = config_.node.id < p.id;
        peer->backoff_ms = config_.cluster.reconnect_ms_min;
        peer->redial = std::make_unique<net::Timer>(loop_);
        peers_.push_back(std::move(peer));
    }
    if (corrupt_once_) {
        spdlog::warn("test hook: the envelope of {} seq {} will be corrupted on its way to slaves",
                     corrupt_once_->first, corrupt_once_->second.value());
    }
}

Replication::~Replication() {
    stop();
}

core::Result<void> Replication::start() {
    const net::ConnectionLimits limits{.frame_bytes_max = core::limits::frame_bytes_max,
                                       .queue_bytes_high = std::max<std::size_t>(
                                           config_.cluster.replication_window_bytes, 1u << 20)};
    if (config_.cluster.listen) {
        net::TcpEndpoint at{config_.cluster.listen->host, config_.cluster.listen->port};
        auto l = net::Listener::listen(
            loop_, at, *this, limits, [this](std::unique_ptr<net::Connection> c) {
                if (stopped_) return net::abandon(std::move(c));
                net::Connection& conn = *c;
                unidentified_since_[conn.id()] = loop_.now_ms();
                connections_.emplace(conn.id(), std::move(c));
                send(conn, proto::PeerHello{proto::version, config_.cluster.name, config_.node.id});
            });
        if (!l) {
            return core::make_error(
                l.error().code,
                fmt::format("cluster.listen {}: {}", net::describe(at), l.error().detail));
        }
        spdlog::info("listening for peers on {}", net::describe((*l)->endpoint()));
        listener_ = std::move(*l);
    }
    ticker_ = std::make_unique<net::Timer>(loop_);
    ticker_->start(config_.cluster.heartbeat_ms, config_.cluster.heartbeat_ms, [this] { tick(); });
    for (auto& peer : peers_) {
        if (peer->dials) dial(*peer);
    }
    spdlog::info("cluster {}: node {} is {}; master {}", config_.cluster.name, config_.node.id,
                 is_master() ? "master" : "a slave", config_.master());
    return {};
}

void Replication::stop() {
    if (stopped_) return;
    stopped_ = true;
    if (ticker_) ticker_->stop();
    listener_.reset();
    for (auto& peer : peers_) peer->redial->stop();
    for (auto& [id, connection] : connections_) net::abandon(std::move(connection));
    connections_.clear();
    for (auto& peer : peers_) peer->link = nullptr;
    for (Awaiter& a : awaiters_) {
        a.done(core::Unexpected{error(errc::shutting_down, "the daemon is shutting down")});
    }
    awaiters_.clear();
    for (auto& [id, f] : forwards_) {
        if (!f.from_outbox) f.done(core::Unexpected{error(errc::shutting_down, "shutting down")});
    }
    forwards_.clear();
}

Replication::Peer* Replication::peer_by_id(std::string_view id) {
    for (auto& p : peers_) {
        if (p->id == id) return p.get();
    }
    return nullptr;
}

Replication::Peer* Replication::peer_of(const net::Connection& connection) {
    for (auto& p : peers_) {
        if (p->link == &connection) return p.get();
    }
    return nullptr;
}

Replication::Peer* Replication::master_peer() {
    return peer_by_id(config_.master());
}

void Replication::send(net::Connection& connection, const proto::Message& message) {
    proto::encode(connection.send_buffer(), message);
    connection.commit_send_buffer();
}

void Replication::dial(Peer& peer) {
    if (stopped_ || peer.link != nullptr || peer.dialling) return;
    peer.dialling = true;
    net::Connection::connect(
        loop_, peer.address, *this,
        {.frame_bytes_max = core::limits::frame_bytes_max,
         .queue_bytes_high =
             std::max<std::size_t>(config_.cluster.replication_window_bytes, 1u << 20)},
        [this, id = peer.id](core::Result<std::unique_ptr<net::Connection>> c) {
            Peer* p = peer_by_id(id);
            p->dialling = false;
            if (stopped_) {
                if (c) net::abandon(std::move(*c));
                return;
            }
            if (!c) {
                p->state = "unreachable: " + c.error().message();
                spdlog::debug("peer {} at {}: {}", id, net::describe(p->address),
                              c.error().message());
                return schedule_redial(*p);
            }
            net::Connection& conn = **c;
            dialled_[conn.id()] = id;
            unidentified_since_[conn.id()] = loop_.now_ms();
            connections_.emplace(conn.id(), std::move(*c));
            send(conn, proto::PeerHello{proto::version, config_.cluster.name, config_.node.id});
        });
}

void Replication::schedule_redial(Peer& peer) {
    if (stopped_ || !peer.dials) return;
    std::uniform_real_distribution<double> spread(0.5, 1.5);
    const auto delay = static_cast<std::uint64_t>(peer.backoff_ms * spread(jitter_));
    peer.backoff_ms = std::min(peer.backoff_ms * 2, config_.cluster.reconnect_ms_max);
    peer.redial->start(delay, 0, [this, id = peer.id] {
        if (Peer* p = peer_by_id(id)) dial(*p);
    });
}

void Replication::on_frame(net::Connection& connection, core::ByteView body) {
    if (stopped_ || connection.closing()) return;
    auto message = proto::decode(body, core::limits::batch_events_max);
    if (!message) {
        spdlog::warn("peer link {}: {}", connection.peer(), message.error().message());
        return connection.close(message.error(), net::Connection::Flush::no);
    }
    if (proto::family_of(proto::type_of(*message)) != proto::Family::peer) {
        auto e = error(
            errc::unknown_message,
            fmt::format("{} is not a peer message", proto::type_name(proto::type_of(*message))));
        spdlog::warn("peer link {}: {}", connection.peer(), e.detail);
        return connection.close(e, net::Connection::Flush::no);
    }
    if (auto* hello = std::get_if<proto::PeerHello>(&*message)) return on_hello(connection, *hello);
    Peer* peer = peer_of(connection);
    if (peer == nullptr) {
        auto e = error(errc::unauthorized, "the first peer message must be PeerHello");
        spdlog::warn("peer link {}: {}", connection.peer(), e.detail);
        return connection.close(e, net::Connection::Flush::no);
    }
    peer->last_heard_ms = loop_.now_ms();
    std::visit(
        [&](auto& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, proto::Positions>) {
                on_positions(*peer, m);
            } else if constexpr (std::is_same_v<T, proto::Replicate>) {
                on_replicate(*peer, m);
            } else if constexpr (std::is_same_v<T, proto::ReplicaAck>) {
                on_replica_ack(*peer, m);
            } else if constexpr (std::is_same_v<T, proto::ReplicaRefused>) {
                on_replica_refused(*peer, m);
            } else if constexpr (std::is_same_v<T, proto::Forward>) {
                on_forward(*peer, m);
            } else if constexpr (std::is_same_v<T, proto::ForwardAck>) {
                on_forward_reply(m.ack.request_id, m.ack);
            } else if constexpr (std::is_same_v<T, proto::ForwardError>) {
                on_forward_reply(
                    m.request_id,
                    core::Unexpected{core::Error{
                        std::error_code(static_cast<int>(m.code), core::spirit_category()),
                        m.message}});
            }
        },
        *message);
}

void Replication::on_hello(net::Connection& connection, const proto::PeerHello& hello) {
    auto refuse = [&](std::string why) {
        spdlog::warn("refused peer link from {} ({}): {}", connection.peer(), hello.node_id, why);
        connection.close(error(errc::unauthorized, std::move(why)), net::Connection::Flush::no);
    };
    if (peer_of(connection) != nullptr) return refuse("PeerHello was already sent");
    if (hello.version != proto::version) {
        return refuse(
            fmt::format("protocol version {}, this node speaks {}", hello.version, proto::version));
    }
    if (hello.cluster != config_.cluster.name) {
        return refuse(fmt::format("cluster name \"{}\", this node is in \"{}\"", hello.cluster,
                                  config_.cluster.name));
    }
    Peer* peer = peer_by_id(hello.node_id);
    if (peer == nullptr) return refuse(fmt::format("unknown node id \"{}\"", hello.node_id));
    auto dialled = dialled_.find(connection.id());
    if (dialled != dialled_.end()) {
        if (dialled->second != hello.node_id) {
            return refuse(
                fmt::format("dialled {} but {} answered", dialled->second, hello.node_id));
        }
    } else if (peer->dials) {
        return refuse(fmt::format("node {} must be dialled by this node ({}), not dial it",
                                  hello.node_id, config_.node.id));
    }
    if (peer->link != nullptr) {
        // A newer link replaces an older one the peer gave up on.
        net::Connection* old = peer->link;
        link_down(*peer, "replaced by a new link");
        old->close(std::nullopt, net::Connection::Flush::no);
    }
    link_up(*peer, connection);
}

void Replication::link_up(Peer& peer, net::Connection& connection) {
    unidentified_since_.erase(connection.id());
    peer.link = &connection;
    peer.last_heard_ms = loop_.now_ms();
    peer.backoff_ms = config_.cluster.reconnect_ms_min;
    peer.state = "connected";
    peer.positions_known = false;
    spdlog::info("peer {} connected ({})", peer.id, connection.peer());
    if (!is_master() && peer.id == config_.master()) {
        ++link_generation_;
        send_positions(peer);
        drain_outbox();
    }
}

void Replication::link_down(Peer& peer, std::string_view why) {
    if (peer.link == nullptr) return;
    spdlog::warn("peer {} disconnected: {}", peer.id, why);
    peer.link = nullptr;
    peer.state = std::string(why);
    peer.cursors.clear();
    peer.bytes_in_flight = 0;
    peer.positions_known = false;
    if (!is_master() && peer.id == config_.master()) {
        ++link_generation_;
        outbox_busy_ = false;
        std::vector<PendingForward> pending;
        for (auto& [id, f] : forwards_) pending.push_back(std::move(f));
        forwards_.clear();
        for (PendingForward& f : pending) {
            if (f.from_outbox) continue;  // still in the outbox
            if (f.redundancy == core::Redundancy::eventual) {
                // The master may or may not have it; the ids make sending it
                // again harmless, so keep it for later.
                to_outbox(std::move(f));
            } else {
                f.done(core::Unexpected{
                    error(errc::connection_lost,
                          fmt::format("the link to the master {} closed before its reply ({}); the "
                                      "publish may or may not have been applied",
                                      peer.id, why))});
            }
        }
    }
    schedule_redial(peer);
}

void Replication::on_writable(net::Connection& connection) {
    if (Peer* peer = peer_of(connection)) pump(*peer);
}

void Replication::on_closed(net::Connection& connection, const std::optional<core::Error>& why) {
    const std::uint64_t id = connection.id();
    const std::string reason = why ? why->message() : "closed";
    if (Peer* peer = peer_of(connection)) {
        link_down(*peer, reason);
    } else if (auto d = dialled_.find(id); d != dialled_.end()) {
        if (Peer* p = peer_by_id(d->second)) {
            p->state = "link refused: " + reason;
            schedule_redial(*p);
        }
    }
    dialled_.erase(id);
    unidentified_since_.erase(id);
    connections_.erase(id);  // the close callback allows destroying it
}

void Replication::tick() {
    if (stopped_) return;
    const std::uint64_t now = loop_.now_ms();
    for (auto& peer : peers_) {
        if (peer->link == nullptr) continue;
        if (now - peer->last_heard_ms > config_.cluster.peer_timeout_ms) {
            peer->link->close(error(errc::timeout, fmt::format("nothing heard for {} ms",
                                                               now - peer->last_heard_ms)),
                              net::Connection::Flush::no);
            continue;
        }
        send(*peer->link, proto::Heartbeat{});
    }
    // Links that never said hello.
    for (auto& [id, connection] : connections_) {
        auto since = unidentified_since_.find(id);
        if (since == unidentified_since_.end() || connection->closing()) continue;
        if (now - since->second > config_.cluster.peer_timeout_ms) {
            connection->close(error(errc::timeout, "no PeerHello in time"),
                              net::Connection::Flush::no);
        }
    }
    // Immediate publishes whose copies did not come in time.
    for (std::size_t i = 0; i < awaiters_.size();) {
        if (awaiters_[i].deadline_ms > now) {
            ++i;
            continue;
        }
        Awaiter a = std::move(awaiters_[i]);
        awaiters_.erase(awaiters_.begin() + static_cast<std::ptrdiff_t>(i));
        const auto h = holders(a.stream, a.seq);
        a.done(core::Unexpected{error(
            errc::timeout,
            fmt::format("stream {} up to seq {}: {} of {} copies durable after {} ms (on {}); the "
                        "events stay stored and keep replicating",
                        a.stream, a.seq.value(), h.size(), a.copies, config_.cluster.ack_timeout_ms,
                        fmt::join(h, ", ")))});
    }
    if (!is_master() && outbox_pending_) drain_outbox();
}

// --- master ---

core::Seq Replication::committed_last(const std::string& stream) {
    auto it = committed_.find(stream);
    if (it != committed_.end()) return it->second;
    core::Seq last{0};
    if (auto info = store_.stream_info(stream); info && *info) last = (*info)->last_seq;
    committed_.emplace(stream, last);
    return last;
}

const core::StreamPolicy& Replication::policy_of(const std::string& stream) {
    auto it = policies_.find(stream);
    if (it != policies_.end()) return it->second;
    core::StreamPolicy policy = config_.policy_for(stream);
    if (auto info = store_.stream_info(stream); info && *info) policy = (*info)->policy;
    return policies_.emplace(stream, policy).first->second;
}

void Replication::committed(const std::string& stream, core::Seq last) {
    auto [it, fresh] = committed_.try_emplace(stream, last);
    if (!fresh && last > it->second) it->second = last;
    for (auto& peer : peers_) {
        if (peer->link == nullptr || !peer->positions_known) continue;
        if (!peer->cursors.contains(stream)) {
            auto info = store_.stream_info(stream);
            if (!info || !*info) continue;
            auto cursor = start_cursor(**info, core::Seq{0}, core::Digest{}, peer->id);
            if (!cursor) {
                replica_errors_[{peer->id, stream}] = cursor.error().detail;
                continue;
            }
            peer->cursors.emplace(stream, std::move(*cursor));
        }
        pump(*peer);
    }
    copies_changed(stream);
}

core::Result<Replication::Cursor> Replication::start_cursor(const storage::StreamInfo& info,
                                                            core::Seq slave_last,
                                                            const core::Digest& slave_hash,
                                                            std::string_view peer) {
    Cursor c;
    c.policy = info.policy;
    policies_.insert_or_assign(info.name, info.policy);
    if (slave_last > info.last_seq) {
        return core::make_error(
            errc::hash_mismatch,
            fmt::format("node {} holds stream {} up to seq {}, beyond this "
                        "master's last seq {}: the copies have diverged",
                        peer, info.name, slave_last.value(), info.last_seq.value()));
    }
    if (slave_last.value() == 0) {
        c.next_seq = info.first_seq;
        c.sent_hash = info.base_hash;
        return c;
    }
    if (slave_last.value() + 1 < info.first_seq.value()) {
        return core::make_error(
            errc::not_found,
            fmt::format("node {} holds stream {} up to seq {}, but this master "
                        "keeps it from seq {} only",
                        peer, info.name, slave_last.value(), info.first_seq.value()));
    }
    core::Digest here = info.base_hash;
    if (slave_last >= info.first_seq) {
        auto read = store_.read(info.name, {.from_seq = slave_last, .events_max = 1},
                                [&](const core::EnvelopeView& e, core::ByteView) {
                                    here = e.hash;
                                    return storage::Visit::stop;
                                });
        if (!read) return core::Unexpected{read.error()};
    }
    if (here != slave_hash) {
        return core::make_error(errc::hash_mismatch,
                                fmt::format("stream {} seq {}: the copies differ, this master has "
                                            "{}, node {} has {}",
                                            info.name, slave_last.value(), core::digest_hex(here),
                                            peer, core::digest_hex(slave_hash)));
    }
    c.next_seq = slave_last.next();
    c.sent_hash = slave_hash;
    return c;
}

void Replication::on_positions(Peer& peer, const proto::Positions& positions) {
    if (!is_master()) return;
    std::map<std::string, const proto::CopyPosition*, std::less<>> reported;
    for (const proto::CopyPosition& p : positions.streams) reported.emplace(p.stream, &p);
    auto streams = store_.list_streams();
    if (!streams) {
        spdlog::error("replication to {}: {}", peer.id, streams.error().message());
        return;
    }
    peer.cursors.clear();
    peer.bytes_in_flight = 0;
    for (const storage::StreamInfo& info : *streams) {
        auto it = reported.find(info.name);
        const core::Seq last = it == reported.end() ? core::Seq{0} : it->second->last_seq;
        const core::Digest hash = it == reported.end() ? core::Digest{} : it->second->last_hash;
        peer.acked[info.name] = last;
        committed_.insert_or_assign(info.name, std::max(committed_last(info.name), info.last_seq));
        auto cursor = start_cursor(info, last, hash, peer.id);
        if (!cursor) {
            spdlog::error("replication of {} to {}: {}", info.name, peer.id,
                          cursor.error().message());
            replica_errors_[{peer.id, info.name}] = cursor.error().detail;
            continue;
        }
        replica_errors_.erase({peer.id, info.name});
        peer.cursors.emplace(info.name, std::move(*cursor));
        if (it != reported.end()) reported.erase(it);
    }
    for (const auto& [stream, p] : reported) {
        spdlog::warn("node {} holds stream {}, which this master does not have", peer.id, stream);
    }
    peer.positions_known = true;
    pump(peer);
    for (const storage::StreamInfo& info : *streams) copies_changed(info.name);
}

void Replication::pump(Peer& peer) {
    if (peer.link == nullptr || !peer.positions_known || peer.link->closing()) return;
    for (int batches = 0; batches < batches_per_pump;) {
        bool sent = false;
        for (auto& [stream, cursor] : peer.cursors) {
            if (peer.bytes_in_flight >= config_.cluster.replication_window_bytes ||
                !peer.link->writable()) {
                return;
            }
            if (pump_stream(peer, stream, cursor)) {
                sent = true;
                ++batches;
            }
        }
        if (!sent) return;
    }
}

bool Replication::pump_stream(Peer& peer, const std::string& stream, Cursor& cursor) {
    const core::Seq last = committed_last(stream);
    if (cursor.refused || cursor.next_seq > last) return false;
    const auto events_max = static_cast<std::size_t>(
        std::min<std::uint64_t>(replicate_events_max, last.value() - cursor.next_seq.value() + 1));
    const auto room = config_.cluster.replication_window_bytes - peer.bytes_in_flight;
    const auto bytes_max =
        static_cast<std::size_t>(std::min<std::uint64_t>(replicate_bytes_max, room));
    // Another slave at the same position may have had this frame built.
    const BuiltFrame* f = nullptr;
    if (auto built = frames_.find(stream); built != frames_.end() &&
                                           built->second.first == cursor.next_seq &&
                                           built->second.bytes.size() <= bytes_max + 4096) {
        f = &built->second;
    } else {
        f = build_frame(peer, stream, cursor, events_max, bytes_max);
        if (f == nullptr) return false;
    }
    peer.link->send(core::ByteView(f->bytes));
    cursor.in_flight.emplace_back(f->next.prev(), f->bytes.size());
    peer.bytes_in_flight += f->bytes.size();
    cursor.next_seq = f->next;
    cursor.sent_hash = f->last_hash;
    return true;
}

const Replication::BuiltFrame* Replication::build_frame(Peer& peer, const std::string& stream,
                                                        Cursor& cursor, std::size_t events_max,
                                                        std::size_t bytes_max) {
    core::Bytes out;
    proto::ReplicateFrameBuilder frame(out, stream, cursor.policy, cursor.next_seq.prev(),
                                       cursor.sent_hash);
    core::Digest last_hash = cursor.sent_hash;
    // Not verified here: the slave checks every link before it stores, and
    // a rotted envelope shows there as a refused stream.
    auto read = store_.read(
        stream,
        {.from_seq = cursor.next_seq,
         .events_max = events_max,
         .bytes_max = bytes_max,
         .verification = storage::Verification::none},
        [&](const core::EnvelopeView& e, core::ByteView encoded) {
            if (corrupt_once_ && corrupt_once_->first == stream && corrupt_once_->second == e.seq) {
                core::Bytes bad(encoded.begin(), encoded.end());
                bad[bad.size() - 35] ^= std::byte{1};  // the last payload byte
                frame.add(bad);
            } else {
                frame.add(encoded);
            }
            last_hash = e.hash;
            return storage::Visit::next;
        });
    if (!read || read->events == 0) {
        if (!read) {
            spdlog::error("replication of {} to {}: {}", stream, peer.id, read.error().message());
            replica_errors_[{peer.id, stream}] = read.error().detail;
            cursor.refused = true;
        }
        return nullptr;
    }
    frame.finish();
    // The cache is bounded: past its budget it starts over.
    constexpr std::uint64_t frames_bytes_max = 8u << 20;
    if (auto old = frames_.find(stream); old != frames_.end()) {
        frames_bytes_ -= old->second.bytes.size();
    }
    if (frames_bytes_ + out.size() > frames_bytes_max) {
        frames_.clear();
        frames_bytes_ = 0;
    }
    frames_bytes_ += out.size();
    BuiltFrame& built = frames_[stream];
    built = BuiltFrame{cursor.next_seq, read->next_seq, last_hash, std::move(out)};
    return &built;
}

void Replication::on_replica_ack(Peer& peer, const proto::ReplicaAck& ack) {
    core::Seq& acked = peer.acked[ack.stream];
    acked = std::max(acked, ack.seq);
    auto it = peer.cursors.find(ack.stream);
    if (it != peer.cursors.end()) {
        auto& flight = it->second.in_flight;
        while (!flight.empty() && flight.front().first <= ack.seq) {
            peer.bytes_in_flight -= std::min(peer.bytes_in_flight, flight.front().second);
            flight.pop_front();
        }
    }
    copies_changed(ack.stream);
    pump(peer);
}

void Replication::on_replica_refused(Peer& peer, const proto::ReplicaRefused& refused) {
    spdlog::error("node {} refused stream {} at seq {}: {}", peer.id, refused.stream,
                  refused.seq.value(), refused.message);
    replica_errors_[{peer.id, refused.stream}] =
        fmt::format("refused at seq {}: {}", refused.seq.value(), refused.message);
    auto it = peer.cursors.find(refused.stream);
    if (it != peer.cursors.end()) it->second.refused = true;
}

void Replication::on_forward(Peer& peer, const proto::Forward& forward) {
    if (!is_master()) {
        return send(
            *peer.link,
            proto::ForwardError{forward.request_id, static_cast<std::uint32_t>(errc::not_master),
                                fmt::format("node {} is not the master ({} is)", config_.node.id,
                                            config_.master())});
    }
    hooks_.publish(forward, [this, id = peer.id,
                             request = forward.request_id](core::Result<proto::PublishAck> r) {
        Peer* p = peer_by_id(id);
        if (p == nullptr || p->link == nullptr) return;
        if (r) {
            r->request_id = request;
            send(*p->link, proto::ForwardAck{std::move(*r)});
        } else {
            const auto code = r.error().code.category() == core::spirit_category()
                                  ? static_cast<std::uint32_t>(r.error().code.value())
                                  : static_cast<std::uint32_t>(errc::internal);
            send(*p->link, proto::ForwardError{request, code, r.error().detail});
        }
    });
}

std::vector<std::string> Replication::holders(const std::string& stream, core::Seq seq) const {
    std::vector<std::string> out;
    auto it = committed_.find(stream);
    if (it != committed_.end() && it->second >= seq) out.push_back(config_.node.id);
    for (const auto& peer : peers_) {
        auto a = peer->acked.find(stream);
        if (a != peer->acked.end() && a->second >= seq) out.push_back(peer->id);
    }
    return out;
}

void Replication::copies_changed(const std::string& stream) {
    for (std::size_t i = 0; i < awaiters_.size();) {
        Awaiter& a = awaiters_[i];
        if (a.stream != stream) {
            ++i;
            continue;
        }
        auto h = holders(a.stream, a.seq);
        if (h.size() < a.copies) {
            ++i;
            continue;
        }
        Awaiter done = std::move(a);
        awaiters_.erase(awaiters_.begin() + static_cast<std::ptrdiff_t>(i));
        done.done(std::move(h));
    }
    // What consumers may see of an immediate stream: the highest seq that
    // the required number of copies hold.
    const core::StreamPolicy& policy = policy_of(stream);
    if (policy.redundancy != core::Redundancy::immediate) return;
    std::vector<core::Seq> positions{committed_last(stream)};
    for (const auto& peer : peers_) {
        auto a = peer->acked.find(stream);
        positions.push_back(a == peer->acked.end() ? core::Seq{0} : a->second);
    }
    std::sort(positions.begin(), positions.end(), std::greater<>());
    const std::size_t required = config_.copies_required(policy.acks);
    const core::Seq watermark = positions[std::min(required, positions.size()) - 1];
    core::Seq& visible = visible_[stream];
    if (watermark > visible) {
        visible = watermark;
        hooks_.visible(stream, watermark);
    }
}

void Replication::await_copies(const std::string& stream, core::Seq seq, std::size_t copies,
                               CopiesDone done) {
    auto h = holders(stream, seq);
    if (h.size() >= copies) return done(std::move(h));
    awaiters_.push_back(Awaiter{stream, seq, copies,
                                loop_.now_ms() + config_.cluster.ack_timeout_ms, std::move(done)});
}

std::vector<proto::PeerStatus> Replication::peer_status() const {
    std::vector<proto::PeerStatus> out;
    for (const auto& peer : peers_) {
        proto::PeerStatus s;
        s.node_id = peer->id;
        s.connected = peer->link != nullptr;
        if (is_master()) {
            for (const auto& [stream, last] : committed_) {
                auto a = peer->acked.find(stream);
                const core::Seq acked = a == peer->acked.end() ? core::Seq{0} : a->second;
                if (last > acked) s.lag_events += last.value() - acked.value();
            }
        }
        s.detail = peer->id == config_.master() ? "master; " + peer->state : peer->state;
        out.push_back(std::move(s));
    }
    return out;
}

std::vector<proto::ReplicationError> Replication::errors() const {
    std::vector<proto::ReplicationError> out;
    for (const auto& [key, message] : replica_errors_) {
        out.push_back({key.second, fmt::format("node {}: {}", key.first, message)});
    }
    for (const auto& [stream, message] : refused_) out.push_back({stream, message});
    return out;
}

}  // namespace spirit::daemon
