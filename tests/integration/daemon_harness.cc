#include "tests/integration/daemon_harness.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace spirit::test {

namespace {

// The kernel's ephemeral port range: outgoing connections (a daemon dialling
// a peer, a client) take their local port from it.
std::pair<std::uint32_t, std::uint32_t> ephemeral_port_range() {
    std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
    std::uint32_t low = 32768, high = 60999;  // Linux's default
    if (!(in >> low >> high) || low < 1024 || high < low || high > 65535) {
        low = 32768;
        high = 60999;
    }
    return {low, high};
}

// Whether nothing holds 127.0.0.1:port now (listening, connected or in
// TIME_WAIT: a bind without SO_REUSEADDR fails on any of them).
bool port_is_free(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return free;
}

}  // namespace

std::uint16_t free_tcp_port() {
    // Outside the ephemeral range, so no socket's outgoing side (another
    // daemon dialling, this process's clients) can be given the same port
    // between now and the bind; checked free; never the same port twice in
    // this process; drawn at random so parallel test processes rarely try
    // the same one.
    static std::mutex mutex;
    static std::set<std::uint16_t> handed_out;
    static std::mt19937 random(
        static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
        (static_cast<std::uint32_t>(::getpid()) << 16));
    std::lock_guard lock(mutex);
    const auto [low, high] = ephemeral_port_range();
    // Candidates: 10000 up to the range's start, and above its end.
    std::vector<std::pair<std::uint32_t, std::uint32_t>> spans;
    if (low > 10'000) spans.emplace_back(10'000, low - 1);
    if (high < 65'535) spans.emplace_back(high + 1, 65'535);
    REQUIRE_FALSE(spans.empty());
    std::uint32_t candidates = 0;
    for (const auto& [from, to] : spans) candidates += to - from + 1;
    for (int attempt = 0; attempt < 1000; ++attempt) {
        std::uint32_t pick =
            std::uniform_int_distribution<std::uint32_t>(0, candidates - 1)(random);
        std::uint32_t port = 0;
        for (const auto& [from, to] : spans) {
            if (pick <= to - from) {
                port = from + pick;
                break;
            }
            pick -= to - from + 1;
        }
        const auto p = static_cast<std::uint16_t>(port);
        if (handed_out.contains(p) || !port_is_free(p)) continue;
        handed_out.insert(p);
        return p;
    }
    FAIL("no free TCP port outside the ephemeral range " << low << "-" << high);
    return 0;
}

RssAnon::RssAnon(pid_t pid)
    : fd_(::open(("/proc/" + std::to_string(pid) + "/status").c_str(), O_RDONLY | O_CLOEXEC)) {}

RssAnon::~RssAnon() {
    if (fd_ >= 0) ::close(fd_);
}

std::uint64_t RssAnon::kib() const {
    if (fd_ < 0) return 0;
    // Plain pread, no stdio: procfs makes the text afresh at offset 0.
    char buffer[4096];
    const ssize_t got = ::pread(fd_, buffer, sizeof buffer - 1, 0);
    if (got <= 0) return 0;
    const std::string_view text(buffer, static_cast<std::size_t>(got));
    const std::size_t at = text.find("\nRssAnon:");
    if (at == std::string_view::npos) return 0;
    buffer[got] = '\0';
    return std::strtoull(buffer + at + 10, nullptr, 10);
}

Daemon::Daemon(DaemonOptions options) : options_(std::move(options)), dir_("spirit-it") {
    socket_path_ = dir_.path() / "spirit.sock";
    if (options_.tcp) port_ = free_tcp_port();
    std::ofstream config(config_path());
    config << "[node]\nid = \"" << options_.node_id << "\"\ndata_dir = \"" << data_dir().string()
           << "\"\n"
           << options_.node_toml << "\n"
           << "[client]\nlisten = \"" << (options_.tcp ? "127.0.0.1:" + std::to_string(port_) : "")
           << "\"\nunix_socket = \"" << socket_path_.string() << "\"\n"
           << options_.client_toml << "\n"
           << "[storage]\nsync = \"" << options_.sync << "\"\n"
           << options_.extra_toml << "\n";
}

Daemon::~Daemon() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

void Daemon::start() {
    REQUIRE(pid_ < 0);
    const std::string log_path = (dir_.path() / "spiritd.log").string();
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::dup2(log, STDERR_FILENO);
        ::dup2(log, STDOUT_FILENO);
        const std::string config = config_path().string();
        for (const std::string& e : options_.env) ::putenv(const_cast<char*>(e.c_str()));
        ::execl(SPIRIT_SPIRITD, SPIRIT_SPIRITD, "--config", config.c_str(), nullptr);
        ::_exit(127);
    }
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            FAIL("spiritd exited during start-up:\n" << log());
        }
        net::ClientOptions options;
        options.endpoint = endpoint();
        options.reconnect = false;
        options.connect_timeout_ms = 1000;
        if (!options_.token.empty()) options.token = options_.token;
        if (auto c = net::Client::connect(options)) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL("spiritd did not answer within 15 s:\n" << log());
}

int Daemon::stop(int signal, std::chrono::milliseconds timeout) {
    REQUIRE(pid_ > 0);
    ::kill(pid_, signal);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return status;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    FAIL("spiritd did not exit within " << timeout.count() << " ms of signal " << signal << ":\n"
                                        << log());
    return status;
}

void Daemon::kill9() {
    REQUIRE(pid_ > 0);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

std::string Daemon::address() const {
    return "unix:" + socket_path_.string();
}

std::string Daemon::log() const {
    std::ifstream in(dir_.path() / "spiritd.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::unique_ptr<net::Client> Daemon::client(net::ClientOptions options) const {
    options.endpoint = endpoint();
    auto c = net::Client::connect(options);
    if (!c) FAIL("connecting to spiritd: " << c.error().message() << "\n" << log());
    return std::move(*c);
}

CommandResult run_command(const std::vector<std::string>& argv, const std::string& input,
                          std::chrono::milliseconds timeout) {
    int in[2], out[2], err[2];
    REQUIRE(::pipe(in) == 0);
    REQUIRE(::pipe(out) == 0);
    REQUIRE(::pipe(err) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(in[0], STDIN_FILENO);
        ::dup2(out[1], STDOUT_FILENO);
        ::dup2(err[1], STDERR_FILENO);
        for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    // Feed stdin from a thread so a large input cannot deadlock with output.
    std::thread feeder([fd = in[1], &input] {
        std::size_t at = 0;
        while (at < input.size()) {
            ssize_t n = ::write(fd, input.data() + at, input.size() - at);
            if (n <= 0) break;
            at += static_cast<std::size_t>(n);
        }
        ::close(fd);
    });
    CommandResult result;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool out_open = true, err_open = true;
    while ((out_open || err_open) && std::chrono::steady_clock::now() < deadline) {
        pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
        ::poll(fds, 2, 100);
        char buf[65536];
        if (out_open && (fds[0].revents & (POLLIN | POLLHUP))) {
            ssize_t n = ::read(out[0], buf, sizeof buf);
            if (n <= 0)
                out_open = false;
            else
                result.out.append(buf, static_cast<std::size_t>(n));
        }
        if (err_open && (fds[1].revents & (POLLIN | POLLHUP))) {
            ssize_t n = ::read(err[0], buf, sizeof buf);
            if (n <= 0)
                err_open = false;
            else
                result.err.append(buf, static_cast<std::size_t>(n));
        }
    }
    if (out_open || err_open) ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    feeder.join();
    ::close(out[0]);
    ::close(err[0]);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

}  // namespace spirit::test
