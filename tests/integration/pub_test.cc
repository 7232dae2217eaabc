// `spirit pub` against a real spiritd: lines from a pipe that stays open
// are published as they arrive (each is stored, and its seq printed,
// before the writer closes the pipe); a burst of lines is published in
// order, each once; --json prints one object per ack with PublishAck's
// fields, and an error object for a refused publish; --verbose prints
// kind, seq, epoch and holders; a failed publish makes the exit code
// non-zero while the other lines are still published.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/daemon_harness.h"

using namespace spirit;
using Catch::Matchers::Contains;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

// A child whose stdin we write and whose stdout we read, line by line.
class PipedChild {
 public:
    explicit PipedChild(const std::vector<std::string>& argv) {
        int in[2], out[2];
        REQUIRE(::pipe(in) == 0);
        REQUIRE(::pipe(out) == 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::dup2(in[0], STDIN_FILENO);
            ::dup2(out[1], STDOUT_FILENO);
            for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(in[0]);
        ::close(out[1]);
        in_ = in[1];
        out_ = out[0];
    }
    ~PipedChild() {
        close_stdin();
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(out_);
    }
    void write(const std::string& text) {
        REQUIRE(::write(in_, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    }
    void close_stdin() {
        if (in_ >= 0) ::close(in_);
        in_ = -1;
    }
    // The next line of its stdout, waiting up to `timeout`.
    std::optional<std::string> read_line(milliseconds timeout = seconds(30)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                return line;
            }
            const auto left = std::chrono::duration_cast<milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{out_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char chunk[4096];
            const ssize_t n = ::read(out_, chunk, sizeof chunk);
            if (n <= 0) return std::nullopt;
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }
    // Waits for the exit; returns the exit code.
    int wait() {
        int status = 0;
        REQUIRE(::waitpid(pid_, &status, 0) == pid_);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

 private:
    pid_t pid_ = -1;
    int in_ = -1;
    int out_ = -1;
    std::string buffer_;
};

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t at = 0;
    for (std::size_t nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) {
        lines.push_back(text.substr(at, nl - at));
    }
    return lines;
}

// The stream's last seq, polled until it is at least `want` (30 s).
std::uint64_t wait_for_last_seq(net::Client& client, const std::string& stream,
                                std::uint64_t want) {
    std::uint64_t last = 0;
    const auto deadline = std::chrono::steady_clock::now() + seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        if (auto info = client.stream_info(stream)) {
            last = info->last_seq.value();
            if (last >= want) return last;
        }
        std::this_thread::sleep_for(milliseconds(10));
    }
    return last;
}

std::vector<std::string> payloads(net::Client& client, const std::string& stream,
                                  std::size_t count) {
    std::vector<std::string> got;
    auto sub = client.subscribe({.target = stream}, [&](const core::EnvelopeView& e) {
        got.emplace_back(core::as_chars(e.payload));
    });
    REQUIRE(sub);
    REQUIRE(client.run_until([&] { return got.size() >= count; }, seconds(30)));
    return got;
}

}  // namespace

TEST_CASE("spirit pub publishes each line as it arrives while the pipe stays open",
          "[integration]") {
    test::Daemon daemon;
    daemon.start();
    auto client = daemon.client();
    PipedChild pub(
        {SPIRIT_CLI, "--socket", (daemon.dir() / "spirit.sock").string(), "pub", "live"});
    pub.write("one\n");
    // Stored and acknowledged while the writer still holds the pipe open.
    CHECK(wait_for_last_seq(*client, "live", 1) == 1);
    CHECK(pub.read_line() == "1");
    pub.write("two\nthree\n");
    CHECK(wait_for_last_seq(*client, "live", 3) == 3);
    CHECK(pub.read_line() == "2");
    CHECK(pub.read_line() == "3");
    // A line without its newline waits for the rest, or for EOF.
    pub.write("fo");
    pub.write("ur");
    pub.close_stdin();
    CHECK(pub.read_line() == "4");
    CHECK(pub.wait() == 0);
    CHECK(payloads(*client, "live", 4) == std::vector<std::string>{"one", "two", "three", "four"});
}

TEST_CASE("spirit pub publishes a burst of lines once each, in order", "[integration]") {
    test::Daemon daemon;
    daemon.start();
    constexpr int count = 20'000;
    std::string input;
    for (int i = 0; i < count; ++i) input += fmt::format("line-{}\n", i);
    auto r = test::run_command(
        {SPIRIT_CLI, "--socket", (daemon.dir() / "spirit.sock").string(), "pub", "burst"}, input,
        seconds(120));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const auto out = lines_of(r.out);
    REQUIRE(out.size() == count);
    for (int i = 0; i < count; ++i)
        REQUIRE(out[static_cast<std::size_t>(i)] == std::to_string(i + 1));
    auto client = daemon.client();
    auto info = client->stream_info("burst");
    REQUIRE(info);
    CHECK(info->last_seq.value() == count);
    const auto stored = payloads(*client, "burst", count);
    for (int i = 0; i < count; ++i) {
        REQUIRE(stored[static_cast<std::size_t>(i)] == fmt::format("line-{}", i));
    }
}

TEST_CASE("spirit pub --json and --verbose print every ack's kind, seqs, epoch and holders",
          "[integration]") {
    test::Daemon daemon;
    daemon.start();
    const std::string socket = (daemon.dir() / "spirit.sock").string();
    auto r = test::run_command({SPIRIT_CLI, "--socket", socket, "pub", "acks", "--json"}, "a\nb\n");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    auto out = lines_of(r.out);
    REQUIRE(out.size() == 2);
    for (std::uint64_t seq : {std::uint64_t{1}, std::uint64_t{2}}) {
        const std::string& line = out[seq - 1];
        INFO(line);
        CHECK_THAT(line, Catch::Matchers::StartsWith(
                             fmt::format(R"({{"kind":"durable","first_seq":{},"last_seq":{},)"
                                         R"("epoch":1,"timestamp_ns":)",
                                         seq, seq)));
        CHECK_THAT(line, Catch::Matchers::EndsWith(R"(,"duplicates":[],"holders":["node-1"]})"));
    }

    // The same id again: a duplicate, in every style.
    const std::string id = "000102030405060708090a0b0c0d0e0f";
    r = test::run_command({SPIRIT_CLI, "--socket", socket, "pub", "acks", "c", "--id", id});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == "3\n");
    r = test::run_command(
        {SPIRIT_CLI, "--socket", socket, "pub", "acks", "c", "--id", id, "--verbose"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == "durable duplicate of seq 3 epoch 1 holders node-1\n");
    r = test::run_command(
        {SPIRIT_CLI, "--socket", socket, "pub", "acks", "c", "--id", id, "--json"});
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Contains(R"("first_seq":0,"last_seq":0,)"));
    CHECK_THAT(r.out, Contains(R"("duplicates":[{"index":0,"seq":3}])"));

    r = test::run_command({SPIRIT_CLI, "--socket", socket, "pub", "acks", "d", "-v"});
    REQUIRE(r.exit_code == 0);
    CHECK(r.out == "durable seq 4 epoch 1 holders node-1\n");

    r = test::run_command(
        {SPIRIT_CLI, "--socket", socket, "pub", "acks", "x", "--json", "--verbose"});
    CHECK(r.exit_code == 2);
}

TEST_CASE("spirit pub exits non-zero when a publish fails and still publishes the rest",
          "[integration]") {
    test::Daemon daemon;
    daemon.start();
    const std::string socket = (daemon.dir() / "spirit.sock").string();
    // --expect-seq applies to the first line: the stream is empty, not at 5.
    auto r = test::run_command(
        {SPIRIT_CLI, "--socket", socket, "pub", "partly", "--expect-seq", "5", "--json"},
        "refused\nkept-1\nkept-2\n");
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("expected_seq_mismatch"));
    auto out = lines_of(r.out);
    REQUIRE(out.size() == 3);
    CHECK_THAT(out[0], Catch::Matchers::StartsWith(R"({"error":"expected_seq_mismatch",)"));
    CHECK_THAT(out[1], Contains(R"("first_seq":1,)"));
    CHECK_THAT(out[2], Contains(R"("first_seq":2,)"));
    auto client = daemon.client();
    CHECK(payloads(*client, "partly", 2) == std::vector<std::string>{"kept-1", "kept-2"});

    // A daemon that is gone: exit 4, as for every command.
    daemon.stop();
    r = test::run_command({SPIRIT_CLI, "--socket", socket, "pub", "partly"}, "x\n");
    CHECK(r.exit_code == 4);
}
