#include "tests/integration/daemon_harness.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <thread>

namespace spirit::test {

std::uint16_t free_tcp_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::uint64_t rss_anon_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("RssAnon:", 0) == 0) return std::stoull(line.substr(8));
    }
    return 0;
}

Daemon::Daemon(DaemonOptions options) : options_(std::move(options)), dir_("spirit-it") {
    socket_path_ = dir_.path() / "spirit.sock";
    if (options_.tcp) port_ = free_tcp_port();
    std::ofstream config(config_path());
    config << "[node]\nid = \"" << options_.node_id << "\"\ndata_dir = \"" << data_dir().string()
           << "\"\n"
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
