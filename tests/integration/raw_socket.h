// tests/integration/raw_socket.h: a blocking client (a Unix socket, or TCP
// on loopback) that sends arbitrary bytes and reads frames, for feeding the
// daemon hostile input and for speaking to it as a peer that lies.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "core/bytes.h"
#include "core/protocol.h"

namespace spirit::test {

class RawSocket {
 public:
    explicit RawSocket(const std::string& unix_path);
    // Connects to 127.0.0.1:`tcp_port`.
    explicit RawSocket(std::uint16_t tcp_port);
    ~RawSocket();
    RawSocket(const RawSocket&) = delete;
    RawSocket& operator=(const RawSocket&) = delete;

    void send(core::ByteView bytes);
    void send(const core::protocol::Message& message);
    // The next frame's decoded message, or nullopt if the daemon closed the
    // connection (or nothing came within `timeout`).
    std::optional<core::protocol::Message> receive(
        std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // The next frame as it came, header and body; nullopt as for receive().
    std::optional<core::Bytes> receive_frame(
        std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // Whether the daemon closed the connection (EOF) within `timeout`.
    bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
    bool fill(std::size_t bytes, std::chrono::steady_clock::time_point deadline);
    int fd_ = -1;
    core::Bytes in_;
    core::Bytes body_;
};

}  // namespace spirit::test
