// tests/cluster/fake_peer.h: a peer that lies. A blocking TCP client that
// speaks the peer protocol to a real spiritd as whatever node it claims to
// be, and sends what a test tells it to: corrupt envelopes, stale epochs,
// garbage. Heartbeats from the daemon are skipped when waiting for a reply.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/envelope.h"
#include "core/protocol.h"
#include "tests/integration/raw_socket.h"

namespace spirit::test {

class FakePeer {
 public:
    // Connects to 127.0.0.1:`port` (a node's cluster.listen).
    explicit FakePeer(std::uint16_t port) : socket_(port) {}

    void send(const core::protocol::Message& message) { socket_.send(message); }
    void send_bytes(core::ByteView bytes) { socket_.send(bytes); }
    // The next message that is not a Heartbeat (or nullopt after `timeout`
    // or when the daemon closed the link). Views point into this object:
    // valid until the next receive.
    std::optional<core::protocol::Message> receive(
        std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // Whether receive() grants every VoteRequest it skips (a fake slave
    // that lets the real node be elected) or ignores them (a fake master).
    void grant_votes(bool grant) { grant_votes_ = grant; }
    // The last Heartbeat skipped by receive(), if any.
    const std::optional<core::protocol::Heartbeat>& last_heartbeat() const { return heartbeat_; }
    bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        return socket_.closed_by_peer(timeout);
    }

 private:
    RawSocket socket_;
    std::optional<core::protocol::Heartbeat> heartbeat_;
    bool grant_votes_ = false;
};

// Sealed envelopes of `stream`, seqs first.. first+count-1, in `epoch`,
// chained on `prev`; payloads "payload-<seq>". Returns the encoded bytes of
// each and the last hash through `last`.
std::vector<core::Bytes> sealed_events(const std::string& stream, core::Seq first,
                                       std::size_t count, core::Epoch epoch, core::Digest prev,
                                       core::Digest& last);

}  // namespace spirit::test
