// tests/integration/daemon_harness.h: real spiritd processes for
// integration tests. Each Daemon has its own temp dir (config, data, Unix
// socket, log), is started as a child process, is ready once a client's
// Hello is answered, and is stopped by PID (SIGTERM, then SIGKILL) when the
// object dies, so no test leaves a process behind.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "net/client.h"
#include "tests/support/temp_dir.h"

namespace spirit::test {

// A loopback TCP port for a daemon to listen on: outside the kernel's
// ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), so no outgoing
// connection can take it before the daemon binds; free when checked; never
// the same one twice in this process.
std::uint16_t free_tcp_port();

// Resident anonymous memory of a process in KiB (RssAnon: heap and stacks,
// not LMDB's file-backed pages), read again at each call from one
// /proc/PID/status descriptor opened by the constructor. A sampler thread
// reads it every millisecond: opening a file per sample in that thread,
// while the test's own thread opens and closes sockets, reuses descriptor
// numbers across threads, which ThreadSanitizer reports as a race.
class RssAnon {
 public:
    explicit RssAnon(pid_t pid);
    ~RssAnon();
    RssAnon(const RssAnon&) = delete;
    RssAnon& operator=(const RssAnon&) = delete;
    std::uint64_t kib() const;  // 0 if it cannot be read

 private:
    int fd_;
};

struct DaemonOptions {
    std::string node_id = "node-1";
    bool tcp = false;         // also listen on 127.0.0.1:<free port>
    std::string extra_toml;   // appended to the generated config
    std::string node_toml;    // keys added to its [node] table
    std::string client_toml;  // keys added to its [client] table
    std::string sync = "always";
    std::vector<std::string> env;  // NAME=VALUE for the spiritd process
    std::string token;             // presented by the start-up probe, if the config needs one
};

class Daemon {
 public:
    explicit Daemon(DaemonOptions options = {});
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Starts spiritd and waits (up to 15 s) until it answers Hello.
    void start();
    // Sends `signal` and waits for the exit; returns the wait status.
    int stop(int signal = SIGTERM, std::chrono::milliseconds timeout = std::chrono::seconds(15));
    void kill9();
    bool running() const { return pid_ > 0; }
    const std::string& node_id() const { return options_.node_id; }
    pid_t pid() const { return pid_; }

    net::Endpoint endpoint() const { return net::UnixEndpoint{socket_path_.string()}; }
    std::uint16_t tcp_port() const { return port_; }
    std::string address() const;  // "unix:PATH", for the CLI's --socket / bench
    const std::filesystem::path& dir() const { return dir_.path(); }
    std::filesystem::path data_dir() const { return dir_.path() / "data"; }
    std::filesystem::path config_path() const { return dir_.path() / "spirit.toml"; }
    std::string log() const;

    std::unique_ptr<net::Client> client(net::ClientOptions options = {}) const;

 private:
    DaemonOptions options_;
    TempDir dir_;
    std::filesystem::path socket_path_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

// Runs a command line (argv) with stdin from `input`; returns exit code,
// stdout and stderr. Bounded by `timeout` (the child is killed after it).
struct CommandResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};
CommandResult run_command(const std::vector<std::string>& argv, const std::string& input = "",
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace spirit::test
