#include "tests/cluster/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <vector>

namespace spirit::test {

int connect_loopback(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

namespace {

struct Pair {
    int a = -1;  // accepted
    int b = -1;  // to the target (-1 while cut)
    void close_both() {
        if (a >= 0) ::close(a);
        if (b >= 0) ::close(b);
        a = b = -1;
    }
};

// Moves what `from` has to `to`; false when either side ended.
bool pump(int from, int to) {
    char buffer[64 * 1024];
    const ssize_t n = ::read(from, buffer, sizeof buffer);
    if (n <= 0) return false;
    ssize_t done = 0;
    while (done < n) {
        const ssize_t w = ::write(to, buffer + done, static_cast<std::size_t>(n - done));
        if (w <= 0) return false;
        done += w;
    }
    return true;
}

}  // namespace

TcpProxy::TcpProxy(std::uint16_t target_port) : target_port_(target_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener_ >= 0);
    const int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) == 0);
    thread_ = std::thread([this] { run(); });
}

TcpProxy::~TcpProxy() {
    stop_ = true;
    const char c = 0;
    (void)::write(wake_[1], &c, 1);
    thread_.join();
    ::close(listener_);
    ::close(wake_[0]);
    ::close(wake_[1]);
}

void TcpProxy::run() {
    std::vector<Pair> pairs;
    while (!stop_) {
        if (heal_.exchange(false)) {
            for (Pair& p : pairs) p.close_both();
            pairs.clear();
        }
        const bool cut = cut_;
        std::vector<pollfd> fds{{listener_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
        if (!cut) {
            for (const Pair& p : pairs) {
                fds.push_back({p.a, POLLIN, 0});
                fds.push_back({p.b, POLLIN, 0});
            }
        }
        if (::poll(fds.data(), fds.size(), 20) < 0) continue;
        if (fds[1].revents != 0) {
            char drain[16];
            while (::read(wake_[0], drain, sizeof drain) > 0) {
            }
        }
        if (fds[0].revents & POLLIN) {
            const int a = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (a >= 0) {
                // While cut, a new connection is held without a target: silence.
                const int b = cut ? -1 : connect_loopback(target_port_);
                if (!cut && b < 0) {
                    ::close(a);
                } else {
                    pairs.push_back({a, b});
                }
            }
        }
        if (cut) continue;
        // Only the pairs polled above: one accepted just now waits a turn.
        const std::size_t polled = (fds.size() - 2) / 2;
        for (std::size_t i = 0; i < polled; ++i) {
            Pair& p = pairs[i];
            const short ra = fds[2 + 2 * i].revents;
            const short rb = fds[3 + 2 * i].revents;
            bool alive = p.b >= 0;
            if (alive && (ra & (POLLIN | POLLHUP | POLLERR))) alive = pump(p.a, p.b);
            if (alive && (rb & (POLLIN | POLLHUP | POLLERR))) alive = pump(p.b, p.a);
            if (!alive) p.close_both();
        }
        std::erase_if(pairs, [](const Pair& p) { return p.a < 0; });
    }
    for (Pair& p : pairs) p.close_both();
}

}  // namespace spirit::test
