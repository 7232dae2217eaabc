// tests/cluster/tcp_proxy.h: a TCP proxy on loopback that a test can cut,
// to partition a node without pausing it (this kernel has no netem and the
// machine no nftables). It listens on a free port and forwards every
// connection to `target_port`. cut(): it stops forwarding in both
// directions and holds every connection open without reading (as a network
// that drops everything would look: silence, no reset), new ones too.
// heal(): it closes what it held, so that both sides see the old links end
// and dial again, and forwards new connections. One thread; stopped and
// joined by the destructor.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

namespace spirit::test {

// A TCP connection to 127.0.0.1:`port`: its fd, or -1.
int connect_loopback(std::uint16_t port);

class TcpProxy {
 public:
    explicit TcpProxy(std::uint16_t target_port);
    ~TcpProxy();
    TcpProxy(const TcpProxy&) = delete;
    TcpProxy& operator=(const TcpProxy&) = delete;

    std::uint16_t port() const { return port_; }
    void cut() { cut_ = true; }
    void heal() {
        heal_ = true;
        cut_ = false;
    }

 private:
    void run();

    std::uint16_t target_port_;
    std::uint16_t port_ = 0;
    int listener_ = -1;
    int wake_[2] = {-1, -1};
    std::atomic<bool> stop_{false};
    std::atomic<bool> cut_{false};
    std::atomic<bool> heal_{false};
    std::thread thread_;
};

}  // namespace spirit::test
