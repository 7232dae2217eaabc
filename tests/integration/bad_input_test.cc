// Bad input of every kind gets a clear error and the daemon keeps serving:
// random bytes, truncated frames, a 4 GiB length prefix, wrong msgpack
// types, unknown message types, messages before Hello, a publish to an
// invalid stream name, bad CLI arguments and a bad config. After each, a
// normal client publishes and reads back.
//
// Frames that decode far enough to read their request id are answered with
// an Error carrying it, and the connection carries on: a pipelining client
// loses no other request. Seeded rounds of random and mutated msgpack
// bodies behind valid length prefixes feed the decoder itself; each round
// must end with the connection serving or closed after an Error frame.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <msgpack.hpp>

#include "core/codec.h"
#include "core/identity.h"
#include "core/limits.h"
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

// A frame around `body`, with its true length.
core::Bytes framed(core::ByteView body) {
    core::Bytes out(core::frame_header_bytes);
    core::encode_frame_header(out.data(), body.size());
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

// A Status no hostile frame of these tests carries.
constexpr std::uint64_t probe_id = 0x5eed'0000'0000'0001;

// How a connection ended a hostile frame followed by a Status probe.
struct Outcome {
    bool served = false;                       // the probe's StatusReply came
    std::optional<proto::ErrorReply> closing;  // an Error without request id came
    bool closed = false;                       // the daemon closed the connection
    std::size_t refusals = 0;  // Errors with a request id, SubscriptionEnded with a code
};

Outcome probe(test::RawSocket& s) {
    s.send(proto::Status{probe_id});
    Outcome o;
    while (auto m = s.receive(seconds(5))) {
        if (auto* st = std::get_if<proto::StatusReply>(&*m); st && st->request_id == probe_id) {
            o.served = true;
            return o;
        }
        if (auto* e = std::get_if<proto::ErrorReply>(&*m)) {
            if (!e->request_id) o.closing = *e;
            if (e->request_id) ++o.refusals;
        }
        if (auto* e = std::get_if<proto::SubscriptionEnded>(&*m); e && e->code != 0) ++o.refusals;
    }
    o.closed = s.closed_by_peer(seconds(1));
    return o;
}

// Whether the connection still answers requests.
bool serves(test::RawSocket& s) {
    return probe(s).served;
}

}  // namespace

// A ';' in a TEST_CASE name splits it in catch_discover_tests (a CMake
// list) into ctest names that match nothing, and Catch2 passes a run that
// matched nothing: this test never ran under that name. No ';' in names.
TEST_CASE("hostile bytes get an error naming the problem and the daemon keeps serving",
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
    SECTION("random bytes, length prefix and all") {
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
    SECTION("a batch over the daemon's limit is refused; the connection stays usable") {
        test::RawSocket s(socket_of(daemon));
        hello(s);
        proto::Publish big{1, "orders", std::nullopt, {}};
        for (int i = 0; i < 4097; ++i) big.events.push_back({std::nullopt, "", {}, {}});
        s.send(big);
        auto m = s.receive();
        REQUIRE(m);
        auto* e = std::get_if<proto::ErrorReply>(&*m);
        REQUIRE(e);
        CHECK(e->request_id == 1u);
        CHECK(e->code == static_cast<std::uint32_t>(core::errc::invalid_argument));
        CHECK(e->message == "Publish field 4 (events): 4097 items, limit 4096");
        CHECK(serves(s));
    }
    SECTION("a request id that is not an integer: no request to answer, so the connection ends") {
        test::RawSocket s(socket_of(daemon));
        hello(s);
        s.send(framed(test::hex("9502 a178 a16f c0 90")));  // [2, "x", "o", nil, []]
        auto e = error_then_close(s);
        CHECK(e.code == static_cast<std::uint32_t>(core::errc::malformed));
        CHECK(e.message ==
              "Publish field 1 (request_id): expected an unsigned integer, got string");
    }
    SECTION("a Credit of the wrong shape ends its subscription; the connection stays usable") {
        test::RawSocket s(socket_of(daemon));
        hello(s);
        s.send(proto::Subscribe{5, "orders", proto::From::new_, 0, std::nullopt, 10, 0});
        auto m = s.receive();
        REQUIRE(m);
        REQUIRE(std::holds_alternative<proto::Subscribed>(*m));
        s.send(framed(test::hex("9404 05 a178 00")));  // [4, 5, "x", 0]
        m = s.receive();
        REQUIRE(m);
        auto* ended = std::get_if<proto::SubscriptionEnded>(&*m);
        REQUIRE(ended);
        CHECK(ended->subscription_id == 5);
        CHECK(ended->code == static_cast<std::uint32_t>(core::errc::malformed));
        CHECK(ended->message ==
              "Credit field 2 (events): expected an unsigned integer, got string");
        CHECK(serves(s));
    }
    SECTION("no Hello at all: closed after the hello timeout") {
        test::RawSocket s(socket_of(daemon));
        auto e = error_then_close(s);  // default hello_timeout_ms is 5 s
        CHECK(e.code == static_cast<std::uint32_t>(core::errc::timeout));
    }
    still_serves(daemon);
}

namespace {

// Valid client frames' bodies, to mutate.
std::vector<core::Bytes> corpus() {
    static const std::string payload = R"({"sku":"A-1"})";
    proto::Publish publish{11, "fuzz", std::nullopt, {}};
    publish.events.push_back({test::event_id(1), "placed", {}, core::as_bytes(payload)});
    publish.events.push_back({std::nullopt, "t", core::as_bytes(payload), {}});
    const core::StreamPolicy policy{
        core::Redundancy::immediate, {core::Acks::Kind::count, 1}, {10, 0, 0}};
    const std::vector<proto::Message> messages = {
        publish,
        proto::Publish{12, "fuzz", core::Seq{3}, {}},
        proto::Subscribe{13, "fuzz", proto::From::first, 0, std::string("d"), 5, 0},
        proto::Credit{13, 1, 0},
        proto::Ack{13, "fuzz", core::Seq{1}},
        proto::Unsubscribe{13},
        proto::StreamCreate{14, "fuzz.created", policy},
        proto::StreamList{15, "", 10},
        proto::StreamInfo{16, "fuzz"},
        proto::Verify{17, "fuzz"},
        proto::Status{18},
        proto::ClusterSetMaster{19, "node-b"},
        proto::QuarantineList{20, "fuzz"},
        proto::QuarantineRead{21, "fuzz", core::Seq{3}, core::Epoch{1}, core::Digest{}, 10},
        proto::QuarantineRepublish{22, "fuzz", {{core::Seq{1}, core::Epoch{1}}}},
    };
    std::vector<core::Bytes> out;
    for (const proto::Message& m : messages) {
        core::Bytes frame;
        proto::encode(frame, m);
        out.emplace_back(frame.begin() + core::frame_header_bytes, frame.end());
    }
    return out;
}

// `body` (valid msgpack) with one element of its top-level array, or of an
// array inside it, replaced by a value of another kind or size: so the
// frame stays whole msgpack and the message's reader meets the problem.
core::Bytes replace_a_value(std::mt19937_64& rng, const core::Bytes& body) {
    msgpack::object_handle handle =
        msgpack::unpack(reinterpret_cast<const char*>(body.data()), body.size());
    msgpack::object root = handle.get();
    msgpack::zone& zone = *handle.zone();
    msgpack::object* array = &root;
    // Sometimes one level down (an event, a list of events), never the type.
    for (int depth = 0; depth < 2 && rng() % 2 == 0; ++depth) {
        const std::size_t i = rng() % array->via.array.size;
        if (array->via.array.ptr[i].type != msgpack::type::ARRAY ||
            array->via.array.ptr[i].via.array.size == 0) {
            break;
        }
        array = &array->via.array.ptr[i];
    }
    const std::size_t size = array->via.array.size;
    const std::size_t at = array == &root ? 1 + rng() % (size - 1) : rng() % size;
    static constexpr std::uint64_t numbers[] = {0, 1, 2, 5, 9, 255, 256, 300, 1ull << 32, ~0ull};
    static constexpr std::size_t lengths[] = {0, 1, 15, 16, 17, 33, 201, 256};
    const std::size_t length = lengths[rng() % std::size(lengths)];
    msgpack::object value;  // nil
    switch (rng() % 7) {
        case 0:
            value = msgpack::object(numbers[rng() % std::size(numbers)], zone);
            break;
        case 1:
            value = msgpack::object(std::string(length, 's'), zone);
            break;
        case 2:
            value = msgpack::object(std::vector<char>(length, 'b'), zone);
            break;
        case 3:
            value = msgpack::object(std::vector<std::uint64_t>(length % 3, 7), zone);
            break;
        case 4:
            value = msgpack::object(std::int64_t{-1}, zone);
            break;
        case 5:
            value = msgpack::object(rng() % 2 == 0, zone);
            break;
        default:
            break;
    }
    array->via.array.ptr[at] = value;
    msgpack::sbuffer out;
    msgpack::pack(out, root);
    const auto* p = reinterpret_cast<const std::byte*>(out.data());
    return core::Bytes(p, p + out.size());
}

// One hostile body: random bytes, random bytes behind an array head and a
// client type (so the reader runs), a valid body with bytes flipped,
// inserted or cut, or a valid body with one value replaced.
core::Bytes hostile_body(std::mt19937_64& rng, const std::vector<core::Bytes>& bodies) {
    static constexpr std::uint8_t interesting[] = {0x00, 0x7f, 0x80, 0x90, 0x9f, 0xc0,
                                                   0xc1, 0xc4, 0xcc, 0xcd, 0xce, 0xcf,
                                                   0xd9, 0xdc, 0xdd, 0xde, 0xff};
    auto byte = [&] { return static_cast<std::byte>(rng()); };
    const std::uint64_t kind = rng() % 8;
    core::Bytes body;
    if (kind == 0) {
        body.resize(1 + rng() % 300);
        for (auto& b : body) b = byte();
    } else if (kind == 1) {
        body.resize(2 + rng() % 300);
        for (auto& b : body) b = byte();
        body[0] = static_cast<std::byte>(0x91 + rng() % 8);
        body[1] = static_cast<std::byte>(1 + rng() % 12);
    } else if (kind < 6) {
        body = replace_a_value(rng, bodies[rng() % bodies.size()]);
    } else {
        body = bodies[rng() % bodies.size()];
        const std::uint64_t edits = 1 + rng() % 3;
        for (std::uint64_t k = 0; k < edits && !body.empty(); ++k) {
            const std::size_t at = rng() % body.size();
            switch (rng() % 4) {
                case 0:
                    body[at] = byte();
                    break;
                case 1:
                    body[at] = static_cast<std::byte>(interesting[rng() % std::size(interesting)]);
                    break;
                case 2:
                    body.resize(std::max<std::size_t>(1, at));
                    break;
                default:
                    body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), byte());
                    break;
            }
        }
    }
    return body;
}

}  // namespace

TEST_CASE(
    "random and mutated msgpack bodies behind valid length prefixes get an Error or an "
    "answer and other connections are served",
    "[integration]") {
    test::Daemon daemon;
    daemon.start();
    auto bystander = daemon.client();  // connected through all the rounds
    const std::vector<core::Bytes> bodies = corpus();
    const std::uint64_t seed = 20'261'130;
    std::mt19937_64 rng(seed);
    std::size_t served = 0;
    std::size_t closed = 0;
    std::size_t refusals = 0;
    for (int round = 0; round < 600; ++round) {
        const bool greet = rng() % 8 != 0;  // some rounds skip Hello
        const core::Bytes body = hostile_body(rng, bodies);
        INFO("seed " << seed << " round " << round << (greet ? " after Hello" : " before Hello")
                     << " body " << core::to_hex(body));
        test::RawSocket s(socket_of(daemon));
        if (greet) hello(s);
        s.send(framed(body));
        const Outcome o = probe(s);
        // Either the daemon answered and kept serving, or it said why in an
        // Error without request id and closed.
        CHECK((o.served || (o.closing && o.closed)));
        if (o.served) ++served;
        if (o.closed) ++closed;
        refusals += o.refusals;
    }
    INFO("served " << served << ", closed " << closed << ", refusals with an id " << refusals);
    CHECK(served > 100);
    CHECK(closed > 100);
    CHECK(refusals > 50);  // requests the decoder refused and named, connection kept
    const std::string payload = "bystander";
    core::EventDraft e{std::nullopt, "t", {}, core::as_bytes(payload)};
    CHECK(bystander->publish("health", std::span(&e, 1)));
    still_serves(daemon);
}

TEST_CASE(
    "a request with a field out of range or over its limit gets invalid_argument with its "
    "id and the publishes pipelined around it are acked",
    "[integration]") {
    test::Daemon daemon;
    daemon.start();
    struct Row {
        const char* what;
        core::Bytes body;  // request id 3 (Subscribe: subscription id 3)
        std::string detail;
        bool subscription = false;
    };
    auto body = [](const proto::Message& m) {
        core::Bytes frame;
        proto::encode(frame, m);
        return core::Bytes(frame.begin() + core::frame_header_bytes, frame.end());
    };
    static const std::string big(core::limits::payload_bytes_max + 1, 'p');
    const std::string type_256(256, 't');
    const std::string name_201(201, 'n');
    auto publish = [&](std::string_view stream, std::string_view type, std::size_t payload_bytes) {
        return body(
            proto::Publish{3,
                           stream,
                           std::nullopt,
                           {{std::nullopt, type, {}, core::as_bytes(big).first(payload_bytes)}}});
    };
    const std::vector<Row> rows = {
        {"StreamCreate redundancy 5", test::hex("990a 03 a173 05 00 00 00 00 00"),
         "StreamCreate field 3 (redundancy): unknown value 5 (0 to 1)"},
        {"StreamCreate acks count 300", test::hex("990a 03 a173 01 02 cd012c 00 00 00"),
         "StreamCreate field 5 (acks_count): 300 is out of range (limit 255)"},
        {"Subscribe from 9", test::hex("9803 03 a166 09 00 c0 0a 00"),
         "Subscribe field 3 (from): unknown value 9 (0 to 4)", true},
        {"a 256-byte event type", publish("fields", type_256, 1),
         "Publish field 4 (events) [0] field 1 (type): 256 bytes, limit 255"},
        {"a payload of 1 MiB + 1", publish("fields", "t", big.size()),
         "Publish field 4 (events) [0] field 3 (payload): 1048577 bytes, limit 1048576"},
        {"a 201-byte stream name", publish(name_201, "t", 1),
         "Publish field 2 (stream): 201 bytes, limit 200"},
        {"an empty event id", test::hex("9502 03 a166 c0 91 94 c400 a174 c400 c400"),
         "Publish field 4 (events) [0] field 0 (id): 0 bytes, expected 16"},
        {"a 15-byte event id",
         test::hex("9502 03 a166 c0 91 94 c40f000102030405060708090a0b0c0d0e a174 c400 c400"),
         "Publish field 4 (events) [0] field 0 (id): 15 bytes, expected 16"},
    };
    const std::string payload = "x";
    for (const Row& row : rows) {
        INFO(row.what);
        test::RawSocket s(socket_of(daemon));
        hello(s);
        auto good = [&](std::uint64_t id) {
            return proto::Publish{
                id, "fields", std::nullopt, {{std::nullopt, "t", {}, core::as_bytes(payload)}}};
        };
        // One write: publishes 1 and 2, the bad request, publishes 4 and 5, a Status.
        core::Bytes pipelined;
        proto::encode(pipelined, good(1));
        proto::encode(pipelined, good(2));
        core::append(pipelined, framed(row.body));
        proto::encode(pipelined, good(4));
        proto::encode(pipelined, good(5));
        proto::encode(pipelined, proto::Status{6});
        s.send(pipelined);
        std::map<std::uint64_t, proto::PublishAck> acks;
        std::optional<proto::ErrorReply> error;
        std::optional<proto::SubscriptionEnded> ended;
        bool status = false;
        while (acks.size() < 4 || !(error || ended) || !status) {
            auto m = s.receive(seconds(10));
            REQUIRE(m);
            if (auto* a = std::get_if<proto::PublishAck>(&*m)) acks.emplace(a->request_id, *a);
            if (auto* e = std::get_if<proto::ErrorReply>(&*m)) error = *e;
            if (auto* x = std::get_if<proto::SubscriptionEnded>(&*m)) ended = *x;
            if (std::holds_alternative<proto::StatusReply>(*m)) status = true;
        }
        CHECK(acks.size() == 4);
        for (std::uint64_t id : {1u, 2u, 4u, 5u}) CHECK(acks.contains(id));
        CHECK(acks[1].first_seq < acks[2].first_seq);
        CHECK(acks[2].first_seq < acks[4].first_seq);
        CHECK(acks[4].first_seq < acks[5].first_seq);
        const auto invalid = static_cast<std::uint32_t>(core::errc::invalid_argument);
        if (row.subscription) {
            REQUIRE(ended);
            CHECK_FALSE(error);
            CHECK(ended->subscription_id == 3);
            CHECK(ended->code == invalid);
            CHECK(ended->message == row.detail);
        } else {
            REQUIRE(error);
            CHECK(error->request_id == 3u);
            CHECK(error->code == invalid);
            CHECK(error->message == row.detail);
        }
        CHECK(serves(s));
    }
    still_serves(daemon);
}

TEST_CASE("an immediate stream whose acks are not a majority of the replicas is refused",
          "[integration]") {
    // A three-node cluster as this node's config sees it; the peers do not
    // run, so a valid create waits for a majority and then times out.
    test::TempDir keys("spirit-keys");
    const core::Identity key = core::Identity::generate();
    REQUIRE(key.save(keys.path() / "node.key"));
    auto other = [] { return core::public_key_text(core::Identity::generate().public_key()); };
    const std::uint16_t port = test::free_tcp_port();
    const std::string cluster = fmt::format(
        "[cluster]\nlisten = \"127.0.0.1:{}\"\nack_timeout_ms = 300\n"
        "[[cluster.members]]\nid = \"node-1\"\naddress = \"127.0.0.1:{}\"\npublic_key = \"{}\"\n"
        "[[cluster.members]]\nid = \"node-b\"\naddress = \"127.0.0.1:{}\"\npublic_key = \"{}\"\n"
        "[[cluster.members]]\nid = \"node-c\"\naddress = \"127.0.0.1:{}\"\npublic_key = \"{}\"\n",
        port, port, core::public_key_text(key.public_key()), test::free_tcp_port(), other(),
        test::free_tcp_port(), other());
    test::Daemon daemon(test::DaemonOptions{
        .extra_toml = cluster,
        .node_toml = fmt::format("key_file = \"{}\"\n", (keys.path() / "node.key").string())});
    daemon.start();
    auto create = [&](const std::string& stream, const std::string& acks) {
        return test::run_command({SPIRIT_CLI, "--socket", socket_of(daemon), "stream", "create",
                                  stream, "--redundancy", "immediate", "--acks", acks});
    };
    auto r = create("one", "1");
    INFO("stderr: " << r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("stream one: acks 1 for an immediate stream; with 3 replicas it "
                               "must be from 2 (a majority) to 3 (invalid_argument)"));
    r = create("four", "4");
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("acks 4 for an immediate stream"));
    for (const char* acks : {"2", "3"}) {
        r = create(fmt::format("ok-{}", acks), acks);
        INFO("stderr: " << r.err);
        CHECK_THAT(r.err, !Contains("acks"));
        CHECK_THAT(r.err, Contains("unavailable"));
    }
    auto client = daemon.client();
    CHECK_FALSE(client->stream_info("one"));
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
