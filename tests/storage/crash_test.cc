// Crash safety: a child process appends in a loop and reports every
// acknowledged seq on a pipe; the parent kills it with SIGKILL at random
// moments (25 rounds), reopens the store after each kill and checks that
// every acknowledged event is present, seqs have no gaps (each payload is
// the seq it was meant to get), and the chain verifies.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>

#include "storage/store.h"
#include "tests/support/temp_dir.h"

using namespace spirit;

namespace {

struct Child {
    pid_t pid = -1;
    int out = -1;
    ~Child() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (out >= 0) ::close(out);
    }
};

void spawn(Child& child, const std::string& data_dir) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(fds[1], STDOUT_FILENO);
        ::close(fds[0]);
        ::close(fds[1]);
        ::execl(SPIRIT_CRASH_CHILD, SPIRIT_CRASH_CHILD, data_dir.c_str(), nullptr);
        ::_exit(127);
    }
    ::close(fds[1]);
    child.pid = pid;
    child.out = fds[0];
}

// Reads "ack N" lines until `deadline`; returns the highest N seen.
std::uint64_t read_acks(int fd, std::chrono::steady_clock::time_point deadline,
                        std::string& buffer) {
    std::uint64_t highest = 0;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char chunk[4096];
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n <= 0) break;
        buffer.append(chunk, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = buffer.find('\n')) != std::string::npos) {
            std::string line = buffer.substr(0, nl);
            buffer.erase(0, nl + 1);
            if (line.rfind("ack ", 0) == 0)
                highest = std::max<std::uint64_t>(highest, std::stoull(line.substr(4)));
        }
    }
    return highest;
}

}  // namespace

TEST_CASE("every acknowledged append survives SIGKILL at random moments", "[storage][crash]") {
    test::TempDir dir;
    const std::string data_dir = (dir.path() / "data").string();
    std::mt19937 rng(Catch::rngSeed());
    std::uint64_t acked = 0;
    int rounds_with_progress = 0;
    for (int round = 0; round < 25; ++round) {
        std::uint64_t acked_this_round = 0;
        {
            Child child;
            spawn(child, data_dir);
            std::string buffer;
            // Wait for the child's first ack (start-up time varies, more so
            // under sanitizers), then kill it at a random moment while it
            // appends.
            const auto started = std::chrono::steady_clock::now();
            std::uint64_t first = 0;
            while (first == 0 &&
                   std::chrono::steady_clock::now() - started < std::chrono::seconds(10)) {
                first = read_acks(child.out,
                                  std::chrono::steady_clock::now() + std::chrono::milliseconds(5),
                                  buffer);
            }
            REQUIRE(first > 0);
            auto runtime = std::chrono::milliseconds(rng() % 150);
            acked_this_round = std::max(
                first, read_acks(child.out, std::chrono::steady_clock::now() + runtime, buffer));
            ::kill(child.pid, SIGKILL);
            int status = 0;
            ::waitpid(child.pid, &status, 0);
            child.pid = -1;
            REQUIRE(WIFSIGNALED(status));
            // Acks that were in the pipe when the child died still count.
            acked_this_round =
                std::max(acked_this_round,
                         read_acks(child.out,
                                   std::chrono::steady_clock::now() + std::chrono::milliseconds(20),
                                   buffer));
        }
        if (acked_this_round > acked) ++rounds_with_progress;
        acked = std::max(acked, acked_this_round);

        storage::StoreOptions options;
        options.data_dir = data_dir;
        auto store = storage::Store::open(options);
        REQUIRE(store);
        auto info = (*store)->stream_info("crash");
        REQUIRE(info);
        if (acked == 0 && !*info) continue;
        REQUIRE(*info);
        INFO("round " << round << " acked " << acked << " stored " << (*info)->last_seq.value());
        REQUIRE((*info)->last_seq.value() >= acked);
        std::uint64_t expected = 1;
        auto read = (*store)->read(
            "crash", {.from_seq = core::Seq{1}, .events_max = SIZE_MAX, .bytes_max = SIZE_MAX},
            [&](const core::EnvelopeView& e, core::ByteView) {
                REQUIRE(e.seq.value() == expected);
                REQUIRE(core::as_chars(e.payload) == std::to_string(expected));
                ++expected;
                return storage::Visit::next;
            });
        REQUIRE(read);
        CHECK(expected == (*info)->last_seq.value() + 1);
        auto report = (*store)->verify("crash");
        REQUIRE(report);
        CHECK_FALSE(report->first_break);
    }
    CHECK(acked > 0);
    CHECK(rounds_with_progress >= 20);
}
