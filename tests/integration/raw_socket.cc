#include "tests/integration/raw_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "core/codec.h"
#include "core/limits.h"

namespace spirit::test {

RawSocket::RawSocket(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
}

RawSocket::RawSocket(std::uint16_t tcp_port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(tcp_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
}

RawSocket::~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
}

void RawSocket::send(core::ByteView bytes) {
    std::size_t at = 0;
    while (at < bytes.size()) {
        ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
        if (n <= 0) return;  // the daemon may have closed already: fine for hostile input
        at += static_cast<std::size_t>(n);
    }
}

void RawSocket::send(const core::protocol::Message& message) {
    core::Bytes frame;
    core::protocol::encode(frame, message);
    send(frame);
}

bool RawSocket::fill(std::size_t bytes, std::chrono::steady_clock::time_point deadline) {
    while (in_.size() < bytes) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        std::byte buf[65536];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return false;
        in_.insert(in_.end(), buf, buf + n);
    }
    return true;
}

std::optional<core::Bytes> RawSocket::receive_frame(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!fill(4, deadline)) return std::nullopt;
    auto length = core::decode_frame_header(in_, core::limits::frame_bytes_max);
    REQUIRE(length);
    if (!fill(4 + *length, deadline)) return std::nullopt;
    const auto end = in_.begin() + 4 + static_cast<std::ptrdiff_t>(*length);
    core::Bytes frame(in_.begin(), end);
    in_.erase(in_.begin(), end);
    return frame;
}

std::optional<core::protocol::Message> RawSocket::receive(std::chrono::milliseconds timeout) {
    auto frame = receive_frame(timeout);
    if (!frame) return std::nullopt;
    body_.assign(frame->begin() + 4, frame->end());
    auto m = core::protocol::decode(body_, core::limits::batch_events_max);
    REQUIRE(m);
    return std::move(*m);
}

bool RawSocket::closed_by_peer(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        std::byte buf[65536];
        ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        if (n <= 0) return true;
    }
    return false;
}

}  // namespace spirit::test
