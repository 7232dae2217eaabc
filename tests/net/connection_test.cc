// Framed connections over real loopback sockets (TCP on port 0 and a Unix
// socket in a temp dir): frames arrive whole and in order however the bytes
// are split, an oversized length is refused before it is buffered, pausing
// stops delivery, a peer's hang-up is reported once, and every test ends
// with the loop's leak check (Loop's destructor asserts no handle is left).
#include <catch2/catch.hpp>

#include <map>

#include "core/codec.h"
#include "net/connection.h"
#include "tests/support/temp_dir.h"

using namespace spirit;

namespace {

core::Bytes frame(const std::string& body) {
    core::Bytes out(4);
    core::encode_frame_header(out.data(), body.size());
    core::append(out, core::as_bytes(body));
    return out;
}

// Collects frames and close reasons for every connection it handles.
struct Recorder : net::ConnectionHandler {
    std::vector<std::string> frames;
    std::vector<std::optional<core::Error>> closed;
    std::vector<std::unique_ptr<net::Connection>> owned;
    std::function<void(net::Connection&, const std::string&)> on_body;

    void on_frame(net::Connection& c, core::ByteView body) override {
        frames.emplace_back(core::as_chars(body));
        if (on_body) on_body(c, frames.back());
    }
    void on_closed(net::Connection& c, const std::optional<core::Error>& why) override {
        closed.push_back(why);
        std::erase_if(owned, [&](const auto& p) { return p.get() == &c; });
    }
};

net::ConnectionLimits limits() {
    return {.frame_bytes_max = 1 << 16, .queue_bytes_high = 1 << 20};
}

// Runs the loop until `done` or 5 s pass.
template <class Pred>
bool run_until(net::Loop& loop, Pred done) {
    for (int i = 0; i < 5000 && !done(); ++i) {
        net::Timer tick(loop);
        tick.start(1, 0, [] {});
        loop.run_once(true);
    }
    return done();
}

struct Pair {
    net::Loop& loop;
    Recorder server;
    Recorder client;
    std::unique_ptr<net::Listener> listener;

    Pair(net::Loop& l, const net::Endpoint& where) : loop(l) {
        auto lr = net::Listener::listen(
            loop, where, server, limits(),
            [this](std::unique_ptr<net::Connection> c) { server.owned.push_back(std::move(c)); });
        REQUIRE(lr);
        listener = std::move(*lr);
        bool connected = false;
        net::Connection::connect(loop, listener->endpoint(), client, limits(),
                                 [&](core::Result<std::unique_ptr<net::Connection>> c) {
                                     REQUIRE(c);
                                     client.owned.push_back(std::move(*c));
                                     connected = true;
                                 });
        REQUIRE(run_until(loop, [&] { return connected && server.owned.size() == 1; }));
    }
    ~Pair() {
        for (auto& c : client.owned) c->close(std::nullopt, net::Connection::Flush::no);
        for (auto& c : server.owned) c->close(std::nullopt, net::Connection::Flush::no);
        listener.reset();
        run_until(loop, [&] { return client.owned.empty() && server.owned.empty(); });
    }
};

}  // namespace

namespace {

void check_frames_arrive(const net::Endpoint& where) {
    net::Loop loop;
    {
        Pair p(loop, where);
        net::Connection& c = *p.client.owned.front();
        // Three frames in one send, one split across two sends, one empty body.
        core::Bytes three;
        for (const char* s : {"one", "two", "three"}) core::append(three, frame(s));
        c.send(std::move(three));
        core::Bytes split = frame(std::string(1000, 'x'));
        c.send(core::ByteView(split).subspan(0, 7));
        c.send(core::ByteView(split).subspan(7));
        c.send(frame(""));
        REQUIRE(run_until(loop, [&] { return p.server.frames.size() == 5; }));
        CHECK(p.server.frames[0] == "one");
        CHECK(p.server.frames[2] == "three");
        CHECK(p.server.frames[3] == std::string(1000, 'x'));
        CHECK(p.server.frames[4].empty());
    }
}

}  // namespace

TEST_CASE("frames arrive whole and in order over TCP and Unix sockets", "[net][unit]") {
    test::TempDir dir;
    SECTION("tcp") {
        check_frames_arrive(net::TcpEndpoint{"127.0.0.1", 0});
    }
    SECTION("unix") {
        check_frames_arrive(net::UnixEndpoint{(dir.path() / "s.sock").string()});
    }
}

TEST_CASE("a length over the frame limit is refused before it is buffered", "[net][unit]") {
    net::Loop loop;
    {
        Pair p(loop, net::TcpEndpoint{"127.0.0.1", 0});
        core::Bytes huge(4);
        core::encode_frame_header(huge.data(), (1 << 16) + 1);
        p.client.owned.front()->send(std::move(huge));
        REQUIRE(run_until(loop, [&] { return p.server.closed.size() == 1; }));
        REQUIRE(p.server.closed[0]);
        CHECK(p.server.closed[0]->is(core::errc::limit_exceeded));
        CHECK(p.server.frames.empty());
        REQUIRE(run_until(loop, [&] { return p.client.closed.size() == 1; }));
    }
}

TEST_CASE("a paused connection delivers nothing until resumed", "[net][unit]") {
    net::Loop loop;
    {
        Pair p(loop, net::TcpEndpoint{"127.0.0.1", 0});
        p.server.on_body = [](net::Connection& c, const std::string& body) {
            if (body == "pause") c.pause_reading();
        };
        core::Bytes frames;
        for (const char* s : {"a", "pause", "b", "c"}) core::append(frames, frame(s));
        p.client.owned.front()->send(std::move(frames));
        REQUIRE(run_until(loop, [&] { return p.server.frames.size() == 2; }));
        run_until(loop, [] { return false; });  // nothing more arrives while paused
        CHECK(p.server.frames.size() == 2);
        p.server.owned.front()->resume_reading();
        REQUIRE(run_until(loop, [&] { return p.server.frames.size() == 4; }));
        CHECK(p.server.frames[3] == "c");
    }
}

TEST_CASE("a peer hanging up is reported once, and queued frames are flushed on close",
          "[net][unit]") {
    net::Loop loop;
    {
        Pair p(loop, net::TcpEndpoint{"127.0.0.1", 0});
        net::Connection& c = *p.client.owned.front();
        // 10 frames of 60,000 bytes: more than a socket buffer takes at once.
        for (int i = 0; i < 10; ++i) c.send(frame(std::string(60'000, 'q')));
        c.close(std::nullopt, net::Connection::Flush::yes);
        REQUIRE(run_until(loop, [&] { return p.server.closed.size() == 1; }));
        REQUIRE(p.server.frames.size() == 10);
        CHECK(p.server.frames[9].size() == 60'000);
        CHECK_FALSE(p.server.closed[0]);  // EOF is not an error
        CHECK(p.client.closed.size() == 1);
    }
}
