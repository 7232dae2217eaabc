// LineReader (daemon/line_reader.h), over a real pipe: a line is handed
// over while the writer keeps the pipe open; a last line without a newline
// counts at EOF; an over-long line ends the input with limit_exceeded
// naming it; and the reader stops at once, joined, while the pipe stays
// open (a hang here would be the test's timeout).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "daemon/line_reader.h"

using namespace spirit;
using daemon::LineReader;

namespace {

struct Pipe {
    int fds[2] = {-1, -1};
    Pipe() { REQUIRE(::pipe(fds) == 0); }
    ~Pipe() {
        close_writer();
        ::close(fds[0]);
    }
    void write(const std::string& text) const {
        REQUIRE(::write(fds[1], text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    }
    void close_writer() {
        if (fds[1] >= 0) ::close(fds[1]);
        fds[1] = -1;
    }
};

// Polls `done` for up to 10 s.
template <class F>
bool eventually(F done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

}  // namespace

TEST_CASE("lines are handed over while the input stays open", "[daemon][unit]") {
    Pipe pipe;
    std::atomic<int> wakes{0};
    LineReader reader({.fd = pipe.fds[0]}, [&] { ++wakes; });
    pipe.write("first\nsec");
    REQUIRE(eventually([&] { return reader.has_lines(); }));
    CHECK(reader.take(10) == std::vector<std::string>{"first"});
    CHECK_FALSE(reader.done());
    CHECK(wakes >= 1);
    pipe.write("ond\nthird\r\nlast without newline");
    REQUIRE(eventually([&] { return reader.has_lines(); }));
    std::vector<std::string> got = reader.take(1);
    CHECK(got == std::vector<std::string>{"second"});
    REQUIRE(eventually([&] { return reader.has_lines(); }));
    got = reader.take(10);
    CHECK(got == std::vector<std::string>{"third\r"});
    CHECK_FALSE(reader.done());
    pipe.close_writer();
    REQUIRE(eventually([&] { return reader.has_lines() || reader.done(); }));
    CHECK(reader.take(10) == std::vector<std::string>{"last without newline"});
    CHECK(reader.done());
    CHECK_FALSE(reader.error());
}

TEST_CASE("an over-long line ends the input with limit_exceeded naming it", "[daemon][unit]") {
    Pipe pipe;
    LineReader reader({.fd = pipe.fds[0], .line_bytes_max = 8}, [] {});
    pipe.write("ok\n123456789\nnever\n");
    REQUIRE(eventually([&] { return reader.done() || reader.has_lines(); }));
    REQUIRE(eventually([&] {
        (void)reader.take(10);
        return reader.done();
    }));
    auto e = reader.error();
    REQUIRE(e);
    CHECK(e->is(core::errc::limit_exceeded));
    CHECK(e->detail == "input line 2 is longer than 8 bytes");
}

TEST_CASE("the reader stops while the input stays open", "[daemon][unit]") {
    Pipe pipe;
    {
        LineReader reader({.fd = pipe.fds[0]}, [] {});
        pipe.write("a\n");
        REQUIRE(eventually([&] { return reader.has_lines(); }));
    }
    SUCCEED("joined without EOF");
}

TEST_CASE("a queue far smaller than the input loses no line", "[daemon][unit]") {
    Pipe pipe;
    LineReader reader({.fd = pipe.fds[0], .queued_bytes_max = 4}, [] {});
    pipe.write("aaaa\nbbbb\ncccc\n");
    pipe.close_writer();
    std::vector<std::string> all;
    REQUIRE(eventually([&] {
        for (std::string& line : reader.take(1)) all.push_back(line);
        return reader.done();
    }));
    CHECK(all == std::vector<std::string>{"aaaa", "bbbb", "cccc"});
}
