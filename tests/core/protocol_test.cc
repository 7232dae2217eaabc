// The client protocol codec: every message survives encode -> decode ->
// encode byte for byte; hostile frames (truncated, wrong types, unknown
// types, oversized lists, trailing bytes, random bytes) get errors naming
// the message and field.
#include <catch2/catch.hpp>

#include <random>

#include "core/codec.h"
#include "core/limits.h"
#include "core/protocol.h"
#include "tests/support/bytes.h"

using namespace spirit;
using namespace spirit::core::protocol;
using Catch::Matchers::Contains;

namespace {

core::ByteView body_of(const core::Bytes& frame) {
    REQUIRE(frame.size() >= core::frame_header_bytes);
    auto n = core::decode_frame_header(frame, core::limits::frame_bytes_max);
    REQUIRE(n);
    REQUIRE(*n == frame.size() - core::frame_header_bytes);
    return core::ByteView(frame).subspan(core::frame_header_bytes);
}

core::Bytes frame_of(const Message& m) {
    core::Bytes out;
    encode(out, m);
    return out;
}

core::Error decode_error(const core::Bytes& body) {
    auto r = decode(body, 4096);
    REQUIRE_FALSE(r);
    return r.error();
}

const std::string payload_a = "payload-a";
const std::string payload_b = "";

std::vector<Message> samples() {
    core::StreamPolicy policy{
        core::Redundancy::immediate, {core::Acks::Kind::count, 2}, {10, 20, 30}};
    StreamDescription description{
        "orders", policy,         core::Seq{3},           core::Seq{9},   7,
        900,      core::Epoch{2}, core::TimestampNs{123}, core::Digest{}, core::TimestampNs{100}};
    description.last_hash.bytes[5] = std::byte{9};
    Publish publish{7, "orders", core::Seq{41}, {}};
    publish.events.push_back({test::event_id(1), "t", {}, core::as_bytes(payload_a)});
    publish.events.push_back(
        {std::nullopt, "", core::as_bytes(payload_a), core::as_bytes(payload_b)});
    Events events{5, {core::as_bytes(payload_a), core::as_bytes(payload_b)}};
    Forward forward{3, "orders", core::Seq{4}, {}};
    forward.events.push_back({test::event_id(2), "t", {}, core::as_bytes(payload_a)});
    return {
        Hello{1, "cli", std::string(20, 't')},
        Hello{1, "cli", std::nullopt},
        publish,
        Publish{8, "x", std::nullopt, {}},
        Subscribe{3, "orders.>", From::time, 1234, std::string("billing"), 100, 0},
        Subscribe{4, "orders", From::new_, 0, std::nullopt, 1, 1},
        Credit{3, 50, 1 << 20},
        Ack{3, "orders", core::Seq{77}},
        Unsubscribe{3},
        Status{9},
        StreamList{10, "orders", 100},
        StreamList{10, "", 0},
        StreamInfo{11, "orders"},
        StreamCreate{12, "orders", policy},
        StreamDelete{13, "orders"},
        Verify{14, "orders"},
        Welcome{1, "node-a", "spiritd 0.1.0", 8 << 20, 4096},
        PublishAck{7,
                   AckKind::replicated,
                   core::Seq{1},
                   core::Seq{2},
                   core::Epoch{3},
                   core::TimestampNs{4},
                   core::Digest{},
                   {{1, core::Seq{9}}},
                   {"node-a", "node-b"}},
        events,
        Subscribed{5, {{"orders", core::Seq{10}, {}}, {"orders.eu", core::Seq{1}, {}}}},
        SubscriptionEnded{5, 200, "stream orders was deleted"},
        ErrorReply{7, 202, "stream orders: expected last seq 1, but it is 2"},
        ErrorReply{std::nullopt, 100, "bad frame"},
        StatusReply{1,
                    "node-a",
                    "spiritd",
                    5,
                    6,
                    7,
                    8,
                    9,
                    10,
                    11,
                    12,
                    13,
                    14,
                    "disk full",
                    "master",
                    "node-a",
                    {{"node-b", true, 5, "ok"}, {"node-c", false, 0, "down"}},
                    {{"orders", "refused"}},
                    7},
        StreamListReply{2, {description, description}, "orders"},
        StreamListReply{2, {}, ""},
        StreamInfoReply{3, description},
        Done{4},
        VerifyReply{5, "orders", 10, core::Seq{1}, core::Seq{10}, core::Seq{4}, "hash mismatch"},
        VerifyReply{5, "orders", 10, core::Seq{1}, core::Seq{10}, std::nullopt, ""},
        PeerHello{1, "prod", "node-b"},
        Heartbeat{},
        Positions{{{"orders", core::Seq{9}, description.last_hash}, {"x", core::Seq{0}, {}}}},
        Replicate{"orders",
                  policy,
                  core::Seq{4},
                  description.last_hash,
                  {core::as_bytes(payload_a), core::as_bytes(payload_b)}},
        ReplicaAck{"orders", core::Seq{6}},
        ReplicaRefused{"orders", core::Seq{7}, 300, "stream orders seq 7: hash mismatch"},
        forward,
        ForwardAck{PublishAck{3,
                              AckKind::durable,
                              core::Seq{5},
                              core::Seq{6},
                              core::Epoch{1},
                              core::TimestampNs{9},
                              core::Digest{},
                              {},
                              {"node-a"}}},
        ForwardError{3, 204, "overloaded"},
    };
}

}  // namespace

TEST_CASE("every message survives encode, decode and encode byte for byte", "[core][unit]") {
    for (const Message& m : samples()) {
        core::Bytes frame = frame_of(m);
        INFO("message index " << m.index() << " frame " << core::to_hex(frame));
        auto decoded = decode(body_of(frame), 4096);
        REQUIRE(decoded);
        CHECK(decoded->index() == m.index());
        CHECK(core::to_hex(frame_of(*decoded)) == core::to_hex(frame));
    }
}

TEST_CASE("decoded publishes keep every event field", "[core][unit]") {
    core::Bytes frame = frame_of(samples()[2]);
    auto decoded = decode(body_of(frame), 4096);
    REQUIRE(decoded);
    const Publish& p = std::get<Publish>(*decoded);
    CHECK(p.request_id == 7);
    CHECK(p.stream == "orders");
    CHECK(p.expected_last_seq == core::Seq{41});
    REQUIRE(p.events.size() == 2);
    CHECK(p.events[0].id == test::event_id(1));
    CHECK(core::as_chars(p.events[0].payload) == "payload-a");
    CHECK_FALSE(p.events[1].id);
    CHECK(core::as_chars(p.events[1].metadata) == "payload-a");
}

TEST_CASE("events frames built incrementally decode to the same envelopes", "[core][unit]") {
    core::Bytes out;
    EventsFrameBuilder builder(out, 42);
    builder.add(core::as_bytes(payload_a));
    builder.add(core::as_bytes(std::string(300, 'z')));
    CHECK(builder.finish() == 2);
    auto decoded = decode(body_of(out), 4096);
    REQUIRE(decoded);
    const Events& e = std::get<Events>(*decoded);
    CHECK(e.subscription_id == 42);
    REQUIRE(e.envelopes.size() == 2);
    CHECK(core::as_chars(e.envelopes[1]) == std::string(300, 'z'));
}

TEST_CASE("publish frames packed event by event are the bytes encode() writes", "[core][unit]") {
    const std::vector<Message> all = samples();
    const Publish& sample = std::get<Publish>(all[2]);
    PublishEvents packed;
    for (const core::EventDraft& e : sample.events) packed.add(e);
    CHECK(packed.count() == sample.events.size());
    core::Bytes out = test::hex("ff");  // appends after what the buffer holds
    packed.write_frame(out, sample.request_id, sample.stream, sample.expected_last_seq);
    core::Bytes want = test::hex("ff");
    encode(want, sample);
    CHECK(out == want);

    // 300 events: the list's length needs more than a fixarray.
    PublishEvents many;
    Publish p{9, "s", std::nullopt, {}};
    const std::string payload(100, 'p');
    for (int i = 0; i < 300; ++i) {
        p.events.push_back(core::EventDraft{std::nullopt, "t", {}, core::as_bytes(payload)});
        many.add(p.events.back());
    }
    core::Bytes a;
    many.write_frame(a, 9, "s", std::nullopt);
    core::Bytes b;
    encode(b, p);
    CHECK(a == b);
    auto decoded = decode(body_of(a), 1 << 20);
    REQUIRE(decoded);
    CHECK(std::get<Publish>(*decoded).events.size() == 300);
}

TEST_CASE("hostile frames get errors that name the problem", "[core][unit]") {
    SECTION("not msgpack / truncated") {
        core::Bytes frame = frame_of(samples()[2]);
        core::Bytes body(frame.begin() + 4, frame.end());
        for (std::size_t n = 0; n + 1 < body.size(); n += 3) {
            core::Bytes cut(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(n));
            auto r = decode(cut, 4096);
            REQUIRE_FALSE(r);
            CHECK(r.error().is(core::errc::malformed));
        }
    }
    SECTION("unknown message type") {
        core::Error e = decode_error(test::hex("92 2a 01"));  // [42, 1]
        CHECK(e.is(core::errc::unknown_message));
        CHECK_THAT(e.detail, Contains("unknown message type 42"));
    }
    SECTION("not an array") {
        CHECK_THAT(decode_error(test::hex("a3616263")).detail, Contains("not a message array"));
    }
    SECTION("type not an integer") {
        CHECK_THAT(decode_error(test::hex("91a161")).detail, Contains("not an unsigned integer"));
    }
    SECTION("a field of the wrong type") {
        // Publish with request_id "x".
        core::Error e = decode_error(test::hex("9502a178a16fc090"));
        CHECK(e.is(core::errc::malformed));
        CHECK_THAT(
            e.detail,
            Contains("Publish field 1 (request_id): expected an unsigned integer, got string"));
    }
    SECTION("a missing field") {
        core::Error e = decode_error(test::hex("9202 01"));  // Publish [2, 1]
        CHECK_THAT(e.detail, Contains("Publish: field 2 (stream) is missing"));
    }
    SECTION("an event of the wrong shape") {
        // Publish [2, 1, "o", nil, [[nil, "t", bin, 5]]] : payload is an int.
        core::Error e = decode_error(test::hex("9502 01 a16f c0 91 94 c0 a174 c400 05"));
        CHECK_THAT(e.detail, Contains("Publish events[0] field 3 (payload): expected bin"));
    }
    SECTION("a batch over the limit") {
        Publish p{1, "o", std::nullopt, {}};
        for (int i = 0; i < 10; ++i) p.events.push_back({std::nullopt, "t", {}, {}});
        core::Bytes frame = frame_of(p);
        auto r = decode(body_of(frame), 5);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::limit_exceeded));
        CHECK_THAT(r.error().detail, Contains("10 items, limit 5"));
    }
    SECTION("a declared array of 4 billion items") {
        core::Error e = decode_error(test::hex("9502 01 a16f c0 ddffffffff"));
        CHECK((e.is(core::errc::limit_exceeded) || e.is(core::errc::malformed)));
    }
    SECTION("trailing bytes") {
        core::Bytes frame = frame_of(Done{1});
        core::Bytes body(frame.begin() + 4, frame.end());
        body.push_back(std::byte{0xc0});
        CHECK_THAT(decode_error(body).detail, Contains("1 bytes after the message"));
    }
    SECTION("an event id of the wrong size") {
        core::Error e = decode_error(test::hex("9502 01 a16f c0 91 94 c40101 a174 c400 c400"));
        CHECK_THAT(e.detail, Contains("(id): 1 bytes, expected 16"));
    }
    SECTION("a map or ext anywhere") {
        CHECK(decode_error(test::hex("9207 81 01 02")).is(core::errc::limit_exceeded));
        CHECK_FALSE(decode(test::hex("9207 d40101"), 4096));
    }
}

TEST_CASE("random bytes and mutated frames never crash the protocol decoder", "[core][unit]") {
    std::mt19937_64 rng(99);
    std::vector<core::Bytes> frames;
    for (const Message& m : samples()) frames.push_back(frame_of(m));
    for (int round = 0; round < 50'000; ++round) {
        core::Bytes body;
        if (round % 3 == 0) {
            body.resize(rng() % 64);
            for (auto& b : body) b = static_cast<std::byte>(rng());
        } else {
            const core::Bytes& f = frames[rng() % frames.size()];
            body.assign(f.begin() + 4, f.end());
            for (int k = 0; k < 2 && !body.empty(); ++k) {
                body[rng() % body.size()] = static_cast<std::byte>(rng());
            }
        }
        auto r = decode(body, 4096);
        if (!r) CHECK_FALSE(r.error().detail.empty());
    }
}
