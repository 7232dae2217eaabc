// tests/integration/raw_socket.h: a blocking Unix-socket client that sends
// arbitrary bytes and reads frames, for feeding the daemon hostile input.
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
    ~RawSocket();
    RawSocket(const RawSocket&) = delete;
    RawSocket& operator=(const RawSocket&) = delete;

    void send(core::ByteView bytes);
    void send(const core::protocol::Message& message);
    // The next frame's decoded message, or nullopt if the daemon closed the
    // connection (or nothing came within `timeout`).
    std::optional<core::protocol::Message> receive(
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
