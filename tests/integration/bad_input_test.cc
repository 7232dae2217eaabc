// Bad input of every kind gets a clear error and the daemon keeps serving:
// random bytes, truncated frames, a 4 GiB length prefix, wrong msgpack
// types, unknown message types, messages before Hello, a publish to an
// invalid stream name, bad CLI arguments and a bad config. After each, a
// normal client publishes and reads back.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/codec.h"
#include "tests/integration/daemon_harness.h"
#include "tests/integration/raw_socket.h"
#include "tests/support/bytes.h"

using namespace spirit;
namespace proto = core::protocol;
using Catch::Matchers::Contains;
using std::chrono::seconds;

namespace {

void still_serves(const test::Daemon& daemon) {
    auto client = daemon.client();
    const std::string payload = "still here";
    core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
    auto r = client->publish("health", std::span(&e, 1));
    REQUIRE(r);
    std::string last;
    auto sub = client->subscribe(
        {.target = "health", .from = proto::From::seq, .from_value = r->first_seq.value()},
        [&](const core::EnvelopeView& ev) { last = core::as_chars(ev.payload); });
    REQUIRE(sub);
    REQUIRE(client->run_until([&] { return !last.empty(); }, seconds(10)));
    CHECK(last == "still here");
}

// The connection-level Error the daemon sends before closing.
proto::ErrorReply error_then_close(test::RawSocket& s) {
    auto m = s.receive();
    REQUIRE(m);
    auto* e = std::get_if<proto::ErrorReply>(&*m);
    REQUIRE(e);
    CHECK_FALSE(e->request_id);
    CHECK(s.closed_by_peer());
    return *e;
}

std::string socket_of(const test::Daemon& d) {
    return (d.dir() / "spirit.sock").string();
}

void hello(test::RawSocket& s) {
    s.send(proto::Hello{proto::version, "test", std::nullopt});
    auto m = s.receive();
    REQUIRE(m);
    REQUIRE(std::holds_alternative<proto::Welcome>(*m));
}

}  // namespace

TEST_CASE("hostile bytes get an error naming the problem; the daemon keeps serving",
          "[integration]") {
    test::Daemon daemon(test::DaemonOptions{.extra_toml = "[limits]\nhello_timeout_ms = 1000\n"});
    daemon.start();

    SECTION("a 4 GiB length prefix") {
        test::RawSocket s(socket_of(daemon));
        s.send(test::hex("ffffffff"));
        auto e = error_then_close(s);
        CHECK(e.code == static_cast<std::uint32_t>(core::errc::limit_exceeded));
        CHECK_THAT(e.message, Contains("frame of 4294967295 bytes announced"));
    }
    SECTION("random bytes") {
        std::mt19937_64 rng(5);
        for (int round = 0; round < 20; ++round) {
            test::RawSocket s(socket_of(daemon));
            core::Bytes junk(1 + rng() % 2000);
            for (auto& b : junk) b = static_cast<std::byte>(rng());
            s.send(junk);
            CHECK(s.closed_by_peer(
                seconds(10)));  // after an Error frame, or for a length over the limit
        }
    }
    SECTION("a truncated frame, then hang-up") {
        test::RawSocket s(socket_of(daemon));
        s.send(test::hex("00000064 9301"));  // announces 100 bytes, sends 2
    }
    SECTION("not msgpack") {
        test::RawSocket s(socket_of(daemon));
        s.send(test::hex("00000003 c1c1c1"));
        auto e = error_then_close(s);
        CHECK(e.code == static_cast<std::uint32_t>(core::errc::malformed));
    }
    SECTION("a wrong msgpack type") {
        test::RawSocket s(socket_of(daemon));
        s.send(test::hex("00000009 9401a131a3636c69c0"));  // Hello [1, "1", "cli", nil]
        auto e = error_then_close(s);
        CHECK(e.code == static_cast<std::uint32_t>(core::errc::malformed));
        CHECK_THAT(e.message,
                   Contains("Hello field 1 (version): expected an unsigned integer, got string"));
    }
    SECTION("an unknown message type") {
        test::RawSocket s(socket_of(daemon));
        s.send(test::hex("00000002 912a"));  // [42]
        auto e = error_then_close(s);
        CHECK(e.code == static_cast<std::uint32_t>(core::errc::unknown_message));
        CHECK_THAT(e.message, Contains("unknown message type 42"));
    }
    SECTION("a message the daemon sends, sent to it") {
        test::RawSocket s(socket_of(daemon));
        hello(s);
        s.send(proto::Done{1});
        auto e = error_then_close(s);
        CHECK(e.code == static_cast<std::uint32_t>(core::errc::unknown_message));
        CHECK_THAT(e.message, Contains("Done is a message the daemon sends"));
    }
    SECTION("a publish before Hello") {
        test::RawSocket s(socket_of(daemon));
        s.send(proto::Publish{1, "orders", std::nullopt, {}});
        auto e = error_then_close(s);
        CHECK(e.code == static_cast<std::uint32_t>(core::errc::unauthorized));
        CHECK_THAT(e.message, Contains("first message must be Hello"));
    }
    SECTION("the wrong protocol version") {
        test::RawSocket s(socket_of(daemon));
        s.send(proto::Hello{99, "future", std::nullopt});
        auto e = error_then_close(s);
        CHECK(e.code == static_cast<std::uint32_t>(core::errc::unsupported_version));
    }
    SECTION("a publish to an invalid stream name is refused; the connection stays usable") {
        test::RawSocket s(socket_of(daemon));
        hello(s);
        const std::string payload = "x";
        proto::Publish bad{
            7, "bad name!", std::nullopt, {{std::nullopt, "t", {}, core::as_bytes(payload)}}};
        s.send(bad);
        auto m = s.receive();
        REQUIRE(m);
        auto* e = std::get_if<proto::ErrorReply>(&*m);
        REQUIRE(e);
        CHECK(e->request_id == 7u);
        CHECK(e->code == static_cast<std::uint32_t>(core::errc::invalid_stream_name));
        CHECK_THAT(e->message, Contains("stream name \"bad name!\""));
        proto::Publish system{
            8, "$topology", std::nullopt, {{std::nullopt, "t", {}, core::as_bytes(payload)}}};
        s.send(system);
        m = s.receive();
        REQUIRE(m);
        CHECK(std::get<proto::ErrorReply>(*m).code ==
              static_cast<std::uint32_t>(core::errc::invalid_stream_name));
        proto::Publish good{
            9, "fine", std::nullopt, {{std::nullopt, "t", {}, core::as_bytes(payload)}}};
        s.send(good);
        m = s.receive();
        REQUIRE(m);
        REQUIRE(std::holds_alternative<proto::PublishAck>(*m));
        CHECK(std::get<proto::PublishAck>(*m).request_id == 9);
    }
    SECTION("a batch over the daemon's limit") {
        test::RawSocket s(socket_of(daemon));
        hello(s);
        proto::Publish big{1, "orders", std::nullopt, {}};
        for (int i = 0; i < 4097; ++i) big.events.push_back({std::nullopt, "", {}, {}});
        s.send(big);
        auto e = error_then_close(s);
        CHECK(e.code == static_cast<std::uint32_t>(core::errc::limit_exceeded));
        CHECK_THAT(e.message, Contains("4097 items, limit 4096"));
    }
    SECTION("no Hello at all: closed after the hello timeout") {
        test::RawSocket s(socket_of(daemon));
        auto e = error_then_close(s);  // default hello_timeout_ms is 5 s
        CHECK(e.code == static_cast<std::uint32_t>(core::errc::timeout));
    }
    still_serves(daemon);
}

TEST_CASE("bad command lines and a bad config fail with clear messages and exit codes",
          "[integration]") {
    test::Daemon daemon;
    daemon.start();
    const std::string socket = socket_of(daemon);
    using Row = std::tuple<std::vector<std::string>, int, std::string>;
    for (const auto& [args, code, text] : {
             Row{{"pub"}, 2, "stream is required"},
             Row{{"--socket", socket, "sub", "s", "--from", "bogus"}, 2, "--from bogus"},
             Row{{"--socket", socket, "sub", "s", "--from", "@yesterday"}, 2, "@RFC3339"},
             Row{{"--socket", socket, "pub", "bad name", "x"}, 2, "invalid_stream_name"},
             Row{{"--socket", socket, "pub", "s", "x", "--id", "abc"}, 2, "--id must be 32 hex"},
             Row{{"--server", "host:99999", "status"}, 2, "port must be 1..65535"},
             Row{{"--server", "127.0.0.1:1", "status"}, 4, "connecting to 127.0.0.1:1"},
             Row{{"--socket", socket, "stream", "info", "missing"},
                 1,
                 "stream missing does not exist"},
             Row{{"--socket", socket, "stream", "create", "s", "--acks", "zero"},
                 2,
                 "--acks must be"},
             Row{{"--socket", socket, "frobnicate"}, 2, "frobnicate"},
         }) {
        std::vector<std::string> argv{SPIRIT_CLI};
        argv.insert(argv.end(), args.begin(), args.end());
        auto r = test::run_command(argv);
        INFO("spirit " << fmt::format("{}", fmt::join(args, " ")) << "\nstdout: " << r.out
                       << "\nstderr: " << r.err);
        CHECK(r.exit_code == code);
        CHECK_THAT(r.err, Contains(text));
    }

    // A bad config: spiritd refuses to start, naming file, line and key.
    const auto bad = daemon.dir() / "bad.toml";
    {
        std::ofstream out(bad);
        out << "[node]\nid = \"n\"\n\n[storage]\nsync = \"sometimes\"\n";
    }
    auto r = test::run_command({SPIRIT_SPIRITD, "--config", bad.string()});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains(bad.string() +
                               ":5:1: storage.sync: expected one of always, periodic, none"));
    r = test::run_command({SPIRIT_SPIRITD, "--config", bad.string(), "--check-config"});
    CHECK(r.exit_code == 2);
    r = test::run_command(
        {SPIRIT_SPIRITD, "--config", daemon.config_path().string(), "--check-config"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Contains(": ok"));
    r = test::run_command({SPIRIT_SPIRITD, "--bogus-flag"});
    CHECK(r.exit_code == 2);
    still_serves(daemon);
}

TEST_CASE("a second daemon cannot take a data dir or a Unix socket that is in use",
          "[integration]") {
    test::Daemon daemon;
    daemon.start();
    // Same data dir: refused by the store's lock.
    auto r = test::run_command({SPIRIT_SPIRITD, "--config", daemon.config_path().string()});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("is in use by another process"));
    // Another data dir, same socket: refused, and the first daemon keeps its socket.
    const auto other = daemon.dir() / "other.toml";
    {
        std::ofstream out(other);
        out << "[node]\ndata_dir = \"" << (daemon.dir() / "other-data").string()
            << "\"\n[client]\nlisten = \"\"\nunix_socket = \"" << socket_of(daemon) << "\"\n";
    }
    r = test::run_command({SPIRIT_SPIRITD, "--config", other.string()});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains(socket_of(daemon) + " is in use by another process"));
    still_serves(daemon);
}
