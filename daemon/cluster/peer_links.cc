#include "daemon/cluster/peer_links.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/limits.h"
#include "daemon/log.h"

namespace spirit::daemon {

using core::errc;
namespace proto = core::protocol;

PeerLinks::PeerLinks(const Config& config, net::Loop& loop, PeerEvents& events,
                     std::function<proto::PeerHello()> hello)
    : config_(config),
      loop_(loop),
      events_(events),
      hello_(std::move(hello)),
      jitter_(std::random_device{}()) {
    SPIRIT_ASSERT(!config_.cluster.peers.empty());
    for (const Config::Peer& p : config_.cluster.peers) {
        auto peer = std::make_unique<Peer>();
        peer->id = core::NodeId(p.id);
        peer->address = net::TcpEndpoint{p.address.host, p.address.port};
        peer->dials = config_.node.id < p.id;
        peer->backoff_ms = config_.cluster.reconnect_ms_min;
        peer->redial = std::make_unique<net::Timer>(loop_);
        ids_.push_back(peer->id);
        peers_.push_back(std::move(peer));
    }
}

PeerLinks::~PeerLinks() {
    stop();
}

net::ConnectionLimits PeerLinks::limits() const {
    return {.frame_bytes_max = core::limits::frame_bytes_max,
            .queue_bytes_high =
                std::max<std::size_t>(config_.cluster.replication_window_bytes, 1u << 20)};
}

core::Result<void> PeerLinks::start() {
    if (config_.cluster.listen) {
        net::TcpEndpoint at{config_.cluster.listen->host, config_.cluster.listen->port};
        auto l = net::Listener::listen(loop_, at, *this, limits(),
                                       [this](std::unique_ptr<net::Connection> c) {
                                           if (stopped_) return net::abandon(std::move(c));
                                           net::Connection& conn = *c;
                                           unidentified_since_[conn.id()] = loop_.now_ms();
                                           connections_.emplace(conn.id(), std::move(c));
                                           send_hello(conn);
                                       });
        if (!l) {
            return core::make_error(
                l.error().code,
                fmt::format("cluster.listen {}: {}", net::describe(at), l.error().detail));
        }
        spdlog::info("listening for peers on {}", net::describe((*l)->endpoint()));
        listener_ = std::move(*l);
    }
    for (auto& peer : peers_) {
        if (peer->dials) dial(*peer);
    }
    return {};
}

void PeerLinks::stop() {
    if (stopped_) return;
    stopped_ = true;
    listener_.reset();
    for (auto& peer : peers_) {
        peer->redial->stop();
        peer->link = nullptr;
    }
    for (auto& [id, connection] : connections_) net::abandon(std::move(connection));
    connections_.clear();
}

PeerLinks::Peer* PeerLinks::peer_by_id(const core::NodeId& id) {
    for (auto& p : peers_) {
        if (p->id == id) return p.get();
    }
    return nullptr;
}

const PeerLinks::Peer* PeerLinks::peer_by_id(const core::NodeId& id) const {
    for (const auto& p : peers_) {
        if (p->id == id) return p.get();
    }
    return nullptr;
}

PeerLinks::Peer* PeerLinks::peer_of(const net::Connection& connection) {
    for (auto& p : peers_) {
        if (p->link == &connection) return p.get();
    }
    return nullptr;
}

bool PeerLinks::send(const core::NodeId& peer, const proto::Message& message) {
    Peer* p = peer_by_id(peer);
    if (p == nullptr || p->link == nullptr || p->link->closing()) return false;
    proto::encode(p->link->send_buffer(), message);
    p->link->commit_send_buffer();
    return true;
}

bool PeerLinks::send_frame(const core::NodeId& peer, core::ByteView frame) {
    Peer* p = peer_by_id(peer);
    if (p == nullptr || p->link == nullptr || p->link->closing()) return false;
    p->link->send(frame);
    return true;
}

bool PeerLinks::linked(const core::NodeId& peer) const {
    const Peer* p = peer_by_id(peer);
    return p != nullptr && p->link != nullptr && !p->link->closing();
}

bool PeerLinks::writable(const core::NodeId& peer) const {
    const Peer* p = peer_by_id(peer);
    return p != nullptr && p->link != nullptr && !p->link->closing() && p->link->writable();
}

std::vector<core::NodeId> PeerLinks::linked_peers() const {
    std::vector<core::NodeId> out;
    for (const auto& p : peers_) {
        if (p->link != nullptr && !p->link->closing()) out.push_back(p->id);
    }
    return out;
}

void PeerLinks::close(const core::NodeId& peer, const core::Error& why) {
    Peer* p = peer_by_id(peer);
    if (p == nullptr || p->link == nullptr) return;
    spdlog::warn("closing the link to {}: {}", peer.value(), why.message());
    p->link->close(why, net::Connection::Flush::no);
}

std::string PeerLinks::state(const core::NodeId& peer) const {
    const Peer* p = peer_by_id(peer);
    return p == nullptr ? "unknown" : p->state;
}

std::optional<std::uint64_t> PeerLinks::heard_ago_ms(const core::NodeId& peer) const {
    const Peer* p = peer_by_id(peer);
    if (p == nullptr || p->last_heard_ms == 0) return std::nullopt;
    return loop_.now_ms() - p->last_heard_ms;
}

void PeerLinks::send_hello(net::Connection& connection) {
    proto::encode(connection.send_buffer(), hello_());
    connection.commit_send_buffer();
}

void PeerLinks::dial(Peer& peer) {
    if (stopped_ || peer.link != nullptr || peer.dialling) return;
    peer.dialling = true;
    net::Connection::connect(
        loop_, peer.address, *this, limits(),
        [this, id = peer.id](core::Result<std::unique_ptr<net::Connection>> c) {
            dialled(id, std::move(c));
        });
}

void PeerLinks::dialled(const core::NodeId& id, core::Result<std::unique_ptr<net::Connection>> c) {
    Peer* p = peer_by_id(id);
    p->dialling = false;
    if (stopped_) {
        if (c) net::abandon(std::move(*c));
        return;
    }
    if (!c) {
        p->state = "unreachable: " + c.error().message();
        spdlog::debug("peer {} at {}: {}", id.value(), net::describe(p->address),
                      c.error().message());
        return schedule_redial(*p);
    }
    net::Connection& conn = **c;
    dialled_.emplace(conn.id(), id);
    unidentified_since_[conn.id()] = loop_.now_ms();
    connections_.emplace(conn.id(), std::move(*c));
    send_hello(conn);
}

void PeerLinks::schedule_redial(Peer& peer) {
    if (stopped_ || !peer.dials) return;
    std::uniform_real_distribution<double> spread(0.5, 1.5);
    const auto delay = static_cast<std::uint64_t>(peer.backoff_ms * spread(jitter_));
    peer.backoff_ms = std::min(peer.backoff_ms * 2, config_.cluster.reconnect_ms_max);
    peer.redial->start(delay, 0, [this, id = peer.id] {
        if (Peer* p = peer_by_id(id)) dial(*p);
    });
}

void PeerLinks::on_frame(net::Connection& connection, core::ByteView body) {
    if (stopped_ || connection.closing()) return;
    auto message = proto::decode(body, core::limits::batch_events_max);
    if (!message) {
        spdlog::warn("peer link {}: {}", connection.peer(), message.error().message());
        return connection.close(message.error(), net::Connection::Flush::no);
    }
    if (proto::family_of(proto::type_of(*message)) != proto::Family::peer) {
        const core::Error e{
            core::make_error_code(errc::unknown_message),
            fmt::format("{} is not a peer message", proto::type_name(proto::type_of(*message)))};
        spdlog::warn("peer link {}: {}", connection.peer(), e.detail);
        return connection.close(e, net::Connection::Flush::no);
    }
    if (auto* hello = std::get_if<proto::PeerHello>(&*message)) return on_hello(connection, *hello);
    Peer* peer = peer_of(connection);
    if (peer == nullptr) {
        return refuse(connection, "", "the first peer message must be PeerHello");
    }
    peer->last_heard_ms = loop_.now_ms();
    events_.on_message(peer->id, *message);
}

void PeerLinks::refuse(net::Connection& connection, std::string_view claimed, std::string why) {
    spdlog::warn("refused peer link from {} ({}): {}", connection.peer(), claimed, why);
    connection.close(core::Error{core::make_error_code(errc::unauthorized), std::move(why)},
                     net::Connection::Flush::no);
}

void PeerLinks::on_hello(net::Connection& connection, const proto::PeerHello& hello) {
    if (peer_of(connection) != nullptr) {
        return refuse(connection, hello.node_id, "PeerHello was already sent");
    }
    if (hello.version != proto::peer_version) {
        return refuse(connection, hello.node_id,
                      fmt::format("peer protocol version {}, this node speaks {}", hello.version,
                                  proto::peer_version));
    }
    if (hello.cluster != config_.cluster.name) {
        return refuse(connection, hello.node_id,
                      fmt::format("cluster name \"{}\", this node is in \"{}\"", hello.cluster,
                                  config_.cluster.name));
    }
    const core::NodeId id(hello.node_id);
    Peer* peer = peer_by_id(id);
    if (peer == nullptr) {
        return refuse(connection, hello.node_id,
                      fmt::format("unknown node id \"{}\"", hello.node_id));
    }
    if (auto d = dialled_.find(connection.id()); d != dialled_.end()) {
        if (d->second != id) {
            return refuse(
                connection, hello.node_id,
                fmt::format("dialled {} but {} answered", d->second.value(), hello.node_id));
        }
    } else if (peer->dials) {
        return refuse(connection, hello.node_id,
                      fmt::format("node {} must be dialled by this node ({}), not dial it",
                                  hello.node_id, config_.node.id));
    }
    if (peer->link != nullptr) {
        // A newer link replaces an older one the peer gave up on.
        net::Connection* old = peer->link;
        peer->link = nullptr;
        events_.link_down(id, "replaced by a new link");
        old->close(std::nullopt, net::Connection::Flush::no);
    }
    unidentified_since_.erase(connection.id());
    peer->link = &connection;
    peer->last_heard_ms = loop_.now_ms();
    peer->backoff_ms = config_.cluster.reconnect_ms_min;
    peer->state = "connected";
    spdlog::info("peer {} connected ({})", hello.node_id, connection.peer());
    events_.link_up(id, hello);
}

void PeerLinks::on_writable(net::Connection& connection) {
    if (Peer* peer = peer_of(connection)) events_.on_writable(peer->id);
}

void PeerLinks::on_closed(net::Connection& connection, const std::optional<core::Error>& why) {
    const std::uint64_t id = connection.id();
    const std::string reason = why ? why->message() : "closed";
    if (Peer* peer = peer_of(connection)) {
        peer->link = nullptr;
        peer->state = reason;
        spdlog::warn("peer {} disconnected: {}", peer->id.value(), reason);
        events_.link_down(peer->id, reason);
        schedule_redial(*peer);
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

void PeerLinks::check_timeouts() {
    if (stopped_) return;
    const std::uint64_t now = loop_.now_ms();
    for (auto& peer : peers_) {
        if (peer->link == nullptr || peer->link->closing()) continue;
        if (now - peer->last_heard_ms > config_.cluster.peer_timeout_ms) {
            peer->link->close(
                core::Error{core::make_error_code(errc::timeout),
                            fmt::format("nothing heard for {} ms", now - peer->last_heard_ms)},
                net::Connection::Flush::no);
        }
    }
    for (auto& [id, connection] : connections_) {
        auto since = unidentified_since_.find(id);
        if (since == unidentified_since_.end() || connection->closing()) continue;
        if (now - since->second > config_.cluster.peer_timeout_ms) {
            connection->close(
                core::Error{core::make_error_code(errc::timeout), "no PeerHello in time"},
                net::Connection::Flush::no);
        }
    }
}

}  // namespace spirit::daemon
