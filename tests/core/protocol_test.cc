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

// A TopologyReply with every field and list set, as a master sends it.
TopologyReply topology_reply() {
    TopologyReply t;
    t.request_id = 22;
    t.node_id = "node-a";
    t.role = "master";
    t.epoch = core::Epoch{7};
    t.master = "node-a";
    t.state = "serving";
    t.members = {{"node-a", "127.0.0.1:7801", "data", true, true, std::nullopt, 0x0123456789abcdef,
                  2, core::Epoch{7}, ""},
                 {"node-b", "127.0.0.1:7802", "witness", false, false, 5200, 9, 1, core::Epoch{4},
                  "unreachable: connection refused"}};
    t.groups = {{"default", core::Epoch{7}, "node-a", ""}};
    t.positions_source = "master";
    t.positions = {{"node-a", "orders", core::Seq{1000}, core::Epoch{7}, 0, "master"},
                   {"node-c", "orders", core::Seq{990}, core::Epoch{7}, 10, "replicating"},
                   {"node-c", "x", core::Seq{0}, core::Epoch{0}, std::nullopt, "own"}};
    t.positions_total = 5;
    t.sublogs = {{"node-a", 0x0123456789abcdef, 15, core::TimestampNs{1'700'000'000'000'000'000}},
                 {"node-b", 9, 3, core::TimestampNs{5}}};
    t.topology_events = 18;
    t.topology_refused = 1;
    t.last_refusal = "from node-b: a gap before it";
    t.conflicts = {core::Epoch{3}, core::Epoch{5}};
    return t;
}

// A StatusReply with the fields added after `state` set.
StatusReply operations_status() {
    StatusReply s;
    s.request_id = 1;
    s.node_id = "node-a";
    s.role = "master";
    s.peers = {{"node-b", true, 5, "ok", 1500}};
    s.map_bytes = 1 << 30;
    s.used_bytes = 1 << 20;
    s.disk_free_bytes = 7;
    s.ready = true;
    s.ready_detail = "";
    s.consumers = {{"billing", "orders", core::Seq{3}, core::Seq{9}, 6},
                   {"audit", "x", core::Seq{0}, core::Seq{1}, 1}};
    return s;
}

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
    Forward forward{core::Epoch{2}, 3, "orders", core::Seq{4}, {}};
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
        StreamAlter{15, "orders", policy},
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
                    7,
                    4,
                    "completing: 1 of 3 copies reported"},
        StreamListReply{2, {description, description}, "orders"},
        StreamListReply{2, {}, ""},
        StreamInfoReply{3, description},
        Done{4},
        VerifyReply{5, "orders", 10, core::Seq{1}, core::Seq{10}, core::Seq{4}, "hash mismatch"},
        VerifyReply{5, "orders", 10, core::Seq{1}, core::Seq{10}, std::nullopt, ""},
        ClusterSetMaster{15, "node-b"},
        QuarantineList{16, "orders"},
        QuarantineList{16, ""},
        QuarantineRead{17, "orders", core::Seq{16}, core::Epoch{2}, description.last_hash, 100},
        QuarantineRead{17, "orders", core::Seq{0}, core::Epoch{0}, std::nullopt, 0},
        QuarantineRepublish{
            18, "orders", {{core::Seq{17}, core::Epoch{2}}, {core::Seq{300}, core::Epoch{7}}}},
        QuarantineListReply{19,
                            {{"orders",
                              5,
                              core::Seq{16},
                              core::Seq{20},
                              {{core::Epoch{1}, 2}, {core::Epoch{3}, 3}}},
                             {"x", 1, core::Seq{1}, core::Seq{1}, {{core::Epoch{1}, 1}}}}},
        QuarantineListReply{19, {}},
        QuarantineReadReply{
            20,
            "orders",
            {core::as_bytes(payload_a), core::as_bytes(payload_b)},
            QuarantinePosition{core::Seq{17}, core::Epoch{3}, description.last_hash}},
        QuarantineReadReply{20, "orders", {}, std::nullopt},
        Backup{21},
        Topology{22},
        topology_reply(),
        TopologyReply{},
        BackupChunk{21, 4096, 1 << 20, core::as_bytes(payload_a)},
        BackupChunk{21, 0, 0, core::as_bytes(payload_b)},
        BackupDone{21, 4105, description.last_hash},
        operations_status(),
        PeerHello{2, "prod", "node-b", core::Epoch{4}, "node-a", true},
        PeerHello{2, "prod", "node-b", core::Epoch{0}, "", false},
        Heartbeat{core::Epoch{4}, "node-a", true},
        Positions{core::Epoch{4},
                  false,
                  {{"orders", core::Epoch{3}, core::Seq{9}, description.last_hash, policy},
                   {"x", core::Epoch{0}, core::Seq{0}, {}, {}}},
                  true},
        Replicate{core::Epoch{4},
                  "orders",
                  policy,
                  core::Seq{4},
                  description.last_hash,
                  core::Seq{3},
                  core::Seq{5},
                  {core::as_bytes(payload_a), core::as_bytes(payload_b)}},
        Replicate{core::Epoch{4},
                  "orders",
                  policy,
                  core::Seq{4},
                  description.last_hash,
                  core::Seq{4},
                  core::Seq{4},
                  {}},
        ReplicaAck{core::Epoch{4}, "orders", core::Seq{6}, description.last_hash, core::Epoch{4}},
        ReplicaRefused{core::Epoch{4}, "orders", core::Seq{7}, 300,
                       "stream orders seq 7: hash mismatch", core::Seq{6}, description.last_hash},
        forward,
        ForwardAck{core::Epoch{4}, PublishAck{3,
                                              AckKind::durable,
                                              core::Seq{5},
                                              core::Seq{6},
                                              core::Epoch{1},
                                              core::TimestampNs{9},
                                              core::Digest{},
                                              {},
                                              {"node-a"}}},
        ForwardError{core::Epoch{4}, 3, 204, "overloaded"},
        Probe{core::Epoch{4}, "orders", {core::Seq{1}, core::Seq{500}, core::Seq{999}}},
        ProbeReply{core::Epoch{4},
                   "orders",
                   {{core::Seq{1}, description.last_hash}, {core::Seq{500}, std::nullopt}}},
        Truncate{core::Epoch{4}, "orders", core::Seq{100}, description.last_hash, false,
                 core::Seq{120}},
        Truncate{core::Epoch{4}, "gone", core::Seq{0}, core::Digest{}, true},
        Fetch{core::Epoch{4}, "orders", core::Seq{101}, core::Seq{200}},
        FetchReply{core::Epoch{4},
                   "orders",
                   0,
                   "",
                   core::Seq{100},
                   description.last_hash,
                   {core::as_bytes(payload_a)}},
        FetchReply{core::Epoch{4}, "orders", 200, "no such seq", core::Seq{0}, {}, {}},
        Visible{core::Epoch{4}, "orders", core::Seq{6}},
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
        CHECK(e.is(core::errc::malformed));
        CHECK_THAT(e.detail,
                   Contains("Publish field 4 (events) [0] field 3 (payload): expected bin"));
    }
    SECTION("a batch over the limit") {
        Publish p{1, "o", std::nullopt, {}};
        for (int i = 0; i < 10; ++i) p.events.push_back({std::nullopt, "t", {}, {}});
        core::Bytes frame = frame_of(p);
        auto r = decode(body_of(frame), 5);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::invalid_argument));
        CHECK_THAT(r.error().detail, Contains("Publish field 4 (events): 10 items, limit 5"));
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
        CHECK(e.is(core::errc::invalid_argument));
        CHECK_THAT(e.detail,
                   Contains("Publish field 4 (events) [0] field 0 (id): 1 bytes, expected 16"));
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

TEST_CASE("type numbers are known exactly within each family's range", "[core][unit]") {
    for (const TypeRange& range : type_ranges) {
        const auto first = static_cast<std::uint64_t>(range.first);
        const auto last = static_cast<std::uint64_t>(range.last);
        for (std::uint64_t n = first; n <= last; ++n) {
            auto type = type_from_number(n);
            REQUIRE(type);
            CHECK(family_of(*type) == range.family);
            CHECK(std::string(type_name(*type)) != "unknown");
        }
        CHECK_FALSE(type_from_number(last + 1));
        if (first > 0) CHECK_FALSE(type_from_number(first - 1));
    }
    CHECK_FALSE(type_from_number(0));
    CHECK_FALSE(type_from_number(256 + 1));  // Hello's number plus 256: not truncated to 8 bits
    for (const Message& m : samples()) {
        CHECK(type_from_number(static_cast<std::uint64_t>(type_of(m))) == type_of(m));
    }
}

TEST_CASE("envelope lists are read where the reader finds them", "[core][unit]") {
    // A Replicate's envelopes follow the policy's six fields; a bin of the
    // wrong kind among them is named by its index.
    Replicate r{core::Epoch{1}, "orders", core::StreamPolicy{}, core::Seq{4}, core::Digest{}, {}};
    r.envelopes = {core::as_bytes(payload_a)};
    core::Bytes frame = frame_of(r);
    auto decoded = decode(body_of(frame), 4096);
    REQUIRE(decoded);
    REQUIRE(std::get<Replicate>(*decoded).envelopes.size() == 1);
    CHECK(core::as_chars(std::get<Replicate>(*decoded).envelopes[0]) == payload_a);
    // [66, 5, [bin, 7]]
    core::Error e = decode_error(test::hex("9342 05 92 c40161 07"));
    CHECK(e.is(core::errc::malformed));
    CHECK_THAT(e.detail,
               Contains("Events field 2 (envelopes) [1]: expected bin, got unsigned integer"));
}

TEST_CASE("quarantine messages keep their fields, nested lists and positions", "[core][unit]") {
    const std::vector<Message> all = samples();
    auto find = [&](Type type, std::size_t nth) -> const Message& {
        for (const Message& m : all) {
            if (type_of(m) == type && nth-- == 0) return m;
        }
        FAIL("no sample of that type");
        return all.front();
    };
    // Five levels deep: message, streams, a stream, its epochs, an epoch.
    core::Bytes list_frame = frame_of(find(Type::quarantine_list_reply, 0));
    auto list = decode(body_of(list_frame), 4096);
    REQUIRE(list);
    const auto& streams = std::get<QuarantineListReply>(*list).streams;
    REQUIRE(streams.size() == 2);
    CHECK(streams[0].stream == "orders");
    CHECK(streams[0].events == 5);
    CHECK(streams[0].first_seq == core::Seq{16});
    CHECK(streams[0].last_seq == core::Seq{20});
    REQUIRE(streams[0].epochs.size() == 2);
    CHECK(streams[0].epochs[1].epoch == core::Epoch{3});
    CHECK(streams[0].epochs[1].events == 3);

    core::Bytes read_frame = frame_of(find(Type::quarantine_read_reply, 0));
    auto read = decode(body_of(read_frame), 4096);
    REQUIRE(read);
    const auto& page = std::get<QuarantineReadReply>(*read);
    REQUIRE(page.next);
    CHECK(page.next->seq == core::Seq{17});
    CHECK(page.next->epoch == core::Epoch{3});
    CHECK(page.envelopes.size() == 2);
    core::Bytes last_frame = frame_of(find(Type::quarantine_read_reply, 1));
    auto last = decode(body_of(last_frame), 4096);
    REQUIRE(last);
    CHECK_FALSE(std::get<QuarantineReadReply>(*last).next);

    core::Bytes from_start = frame_of(find(Type::quarantine_read, 1));
    auto start = decode(body_of(from_start), 4096);
    REQUIRE(start);
    CHECK_FALSE(std::get<QuarantineRead>(*start).after_hash);
}

TEST_CASE("quarantine requests and replies name a bad field", "[core][unit]") {
    SECTION("a republish of more entries than a batch holds") {
        QuarantineRepublish r{21, "orders", {}};
        for (std::uint64_t i = 1; i <= 5; ++i) r.entries.push_back({core::Seq{i}, core::Epoch{1}});
        core::Bytes frame = frame_of(r);
        auto e = decode_frame(body_of(frame), 4);
        REQUIRE_FALSE(e);
        CHECK(e.error().error.is(core::errc::invalid_argument));
        CHECK(e.error().error.detail == "QuarantineRepublish field 3 (entries): 5 items, limit 4");
        CHECK(e.error().request_id == 21u);
    }
    SECTION("an entry without its epoch") {
        // [16, 22, "o", [[17]]]
        auto e = decode_frame(test::hex("9410 16 a16f 91 91 11"), 4096);
        REQUIRE_FALSE(e);
        CHECK(e.error().error.is(core::errc::malformed));
        CHECK(e.error().error.detail ==
              "QuarantineRepublish field 3 (entries) [0]: field 1 (epoch) is missing");
        CHECK(e.error().request_id == 22u);
    }
    SECTION("an after_hash that is not 32 bytes") {
        // [15, 23, "o", 1, 1, bin of 1, 0]
        auto e = decode_frame(test::hex("970f 17 a16f 01 01 c40101 00"), 4096);
        REQUIRE_FALSE(e);
        CHECK(e.error().error.is(core::errc::invalid_argument));
        CHECK(e.error().error.detail ==
              "QuarantineRead field 5 (after_hash): 1 bytes, expected 32");
        CHECK(e.error().request_id == 23u);
    }
    SECTION("a next position of the wrong shape") {
        // [76, 24, "o", [], [1, 2]]
        auto e = decode_frame(test::hex("954c 18 a16f 90 92 01 02"), 4096);
        REQUIRE_FALSE(e);
        CHECK(e.error().error.detail ==
              "QuarantineReadReply field 4 (next) [0]: field 2 (hash) is missing");
    }
    SECTION("a master's name longer than a node id") {
        ClusterSetMaster m{25, std::string(65, 'n')};
        core::Bytes frame = frame_of(m);
        auto e = decode_frame(body_of(frame), 4096);
        REQUIRE_FALSE(e);
        CHECK(e.error().error.detail == "ClusterSetMaster field 2 (master): 65 bytes, limit 64");
        CHECK(e.error().request_id == 25u);
    }
}

namespace {

// The DecodeError of a body that must not decode.
DecodeError body_error(core::ByteView body) {
    auto r = decode_frame(body, 4096);
    REQUIRE_FALSE(r);
    return r.error();
}

// The body of `m`'s frame, owned.
core::Bytes body_bytes(const Message& m) {
    core::Bytes frame = frame_of(m);
    return core::Bytes(frame.begin() + core::frame_header_bytes, frame.end());
}

core::EventDraft event(std::string_view type, std::size_t payload_bytes) {
    static const std::string payload(core::limits::payload_bytes_max + 1, 'p');
    return core::EventDraft{std::nullopt, type, {}, core::as_bytes(payload).first(payload_bytes)};
}

}  // namespace

TEST_CASE("a field out of range or over its limit is invalid_argument with the request id",
          "[core][unit]") {
    struct Row {
        const char* what;
        core::Bytes body;
        std::string detail;
    };
    const std::string type_256(256, 't');
    const std::string name_201(201, 'n');
    Publish long_type{41, "orders", std::nullopt, {event("t", 1), event(type_256, 1)}};
    Publish big_payload{
        42, "orders", std::nullopt, {event("t", core::limits::payload_bytes_max + 1)}};
    Publish long_name{43, name_201, std::nullopt, {event("t", 1)}};
    const std::vector<Row> rows = {
        {"redundancy 5",
         // StreamCreate [10, 40, "s", 5, 0, 0, 0, 0, 0]
         test::hex("990a 28 a173 05 00 00 00 00 00"),
         "StreamCreate field 3 (redundancy): unknown value 5 (0 to 1)"},
        {"acks kind 3", test::hex("990a 28 a173 01 03 00 00 00 00"),
         "StreamCreate field 4 (acks_kind): unknown value 3 (0 to 2)"},
        {"acks count 300", test::hex("990a 28 a173 01 02 cd012c 00 00 00"),
         "StreamCreate field 5 (acks_count): 300 is out of range (limit 255)"},
        {"a 256-byte event type", body_bytes(long_type),
         "Publish field 4 (events) [1] field 1 (type): 256 bytes, limit 255"},
        {"a payload of 1 MiB + 1", body_bytes(big_payload),
         "Publish field 4 (events) [0] field 3 (payload): 1048577 bytes, limit 1048576"},
        {"a 201-byte stream name", body_bytes(long_name),
         "Publish field 2 (stream): 201 bytes, limit 200"},
        {"an empty event id",
         test::hex(
             "9502 2c a16f c0 91 94 c400 a174 c400 c400"),  // [2, 44, "o", nil, [[bin0, ...]]]
         "Publish field 4 (events) [0] field 0 (id): 0 bytes, expected 16"},
        {"a 15-byte event id",
         test::hex("9502 2d a16f c0 91 94 c40f000102030405060708090a0b0c0d0e a174 c400 c400"),
         "Publish field 4 (events) [0] field 0 (id): 15 bytes, expected 16"},
    };
    for (const Row& row : rows) {
        INFO(row.what);
        const DecodeError e = body_error(row.body);
        CHECK(e.error.is(core::errc::invalid_argument));
        CHECK(e.error.detail == row.detail);
        REQUIRE(e.request_id);
        CHECK(*e.request_id >= 40);
        CHECK_FALSE(e.subscription_id);
        REQUIRE(e.type);
        CHECK(family_of(*e.type) == Family::client);
    }
}

TEST_CASE("a Subscribe's field error carries the subscription id", "[core][unit]") {
    // [3, 7, "orders", 9, 0, nil, 10, 0]: from 9
    const DecodeError e = body_error(test::hex("9803 07 a66f7264657273 09 00 c0 0a 00"));
    CHECK(e.error.is(core::errc::invalid_argument));
    CHECK(e.error.detail == "Subscribe field 3 (from): unknown value 9 (0 to 4)");
    CHECK(e.subscription_id == 7u);
    CHECK_FALSE(e.request_id);
    CHECK(e.type == Type::subscribe);
}

TEST_CASE("a decode error says how far the decoder got", "[core][unit]") {
    SECTION("not msgpack, not an array, no type: nothing known") {
        for (const char* hex : {"c1", "a3616263", "91a161", "92 2a 01"}) {
            INFO(hex);
            auto r = decode_frame(test::hex(hex), 4096);
            REQUIRE_FALSE(r);
            CHECK_FALSE(r.error().type);
            CHECK_FALSE(r.error().request_id);
            CHECK_FALSE(r.error().subscription_id);
        }
    }
    SECTION("a request id of the wrong type: the type only") {
        auto r = decode_frame(test::hex("9502a178a16fc090"), 4096);
        REQUIRE_FALSE(r);
        CHECK(r.error().type == Type::publish);
        CHECK_FALSE(r.error().request_id);
    }
    SECTION("a wrong type after the request id: malformed, with the id") {
        auto r = decode_frame(test::hex("9502 05 07 c0 90"), 4096);  // stream is 7
        REQUIRE_FALSE(r);
        CHECK(r.error().error.is(core::errc::malformed));
        CHECK(r.error().error.detail ==
              "Publish field 2 (stream): expected a string, got unsigned integer");
        CHECK(r.error().request_id == 5u);
    }
    SECTION("a Hello has no id") {
        auto r = decode_frame(test::hex("9401a131a3636c69c0"), 4096);
        REQUIRE_FALSE(r);
        CHECK(r.error().type == Type::hello);
        CHECK_FALSE(r.error().request_id);
        CHECK_FALSE(r.error().subscription_id);
    }
    SECTION("decode() keeps the error alone") {
        auto full = decode_frame(test::hex("9502 05 07 c0 90"), 4096);
        auto plain = decode(test::hex("9502 05 07 c0 90"), 4096);
        REQUIRE_FALSE(full);
        REQUIRE_FALSE(plain);
        CHECK(plain.error().detail == full.error().error.detail);
        CHECK(plain.error().code == full.error().error.code);
    }
}

TEST_CASE("backup messages and the status's operations fields keep their values", "[core][unit]") {
    BackupChunk chunk{21, 4096, 1 << 20, core::as_bytes(payload_a)};
    core::Bytes chunk_frame = frame_of(chunk);
    auto decoded_chunk = decode(body_of(chunk_frame), 4096);
    REQUIRE(decoded_chunk);
    const auto& c = std::get<BackupChunk>(*decoded_chunk);
    CHECK(c.request_id == 21);
    CHECK(c.offset == 4096);
    CHECK(c.bytes_estimate == 1 << 20);
    CHECK(core::as_chars(c.data) == payload_a);

    core::Bytes status_frame = frame_of(operations_status());
    auto decoded = decode(body_of(status_frame), 4096);
    REQUIRE(decoded);
    const auto& st = std::get<StatusReply>(*decoded);
    CHECK(st.map_bytes == 1 << 30);
    CHECK(st.used_bytes == 1 << 20);
    CHECK(st.disk_free_bytes == 7);
    CHECK(st.ready);
    REQUIRE(st.peers.size() == 1);
    CHECK(st.peers[0].lag_ms == 1500);
    REQUIRE(st.consumers.size() == 2);
    CHECK(st.consumers[0].consumer == "billing");
    CHECK(st.consumers[0].acked == core::Seq{3});
    CHECK(st.consumers[0].last_seq == core::Seq{9});
    CHECK(st.consumers[0].lag_events == 6);
}

TEST_CASE("a topology reply keeps its members, groups, positions, sublogs and conflicts",
          "[core][unit]") {
    core::Bytes frame = frame_of(topology_reply());
    auto decoded = decode(body_of(frame), 4096);
    REQUIRE(decoded);
    const auto& t = std::get<TopologyReply>(*decoded);
    CHECK(t.request_id == 22);
    CHECK(t.role == "master");
    CHECK(t.epoch == core::Epoch{7});
    REQUIRE(t.members.size() == 2);
    CHECK(t.members[0].self);
    CHECK_FALSE(t.members[0].heard_ms);
    CHECK(t.members[0].instance == 0x0123456789abcdef);
    CHECK(t.members[1].heard_ms == 5200u);
    CHECK(t.members[1].role == "witness");
    CHECK(t.members[1].voted == core::Epoch{4});
    CHECK(t.members[1].link == "unreachable: connection refused");
    REQUIRE(t.groups.size() == 1);
    CHECK(t.groups[0].master == "node-a");
    REQUIRE(t.positions.size() == 3);
    CHECK(t.positions[1].lag_events == 10u);
    CHECK_FALSE(t.positions[2].lag_events);
    CHECK(t.positions[1].state == "replicating");
    CHECK(t.positions_total == 5);
    REQUIRE(t.sublogs.size() == 2);
    CHECK(t.sublogs[0].last_ns == core::TimestampNs{1'700'000'000'000'000'000});
    CHECK(t.last_refusal == "from node-b: a gap before it");
    CHECK(t.conflicts == std::vector<core::Epoch>{core::Epoch{3}, core::Epoch{5}});

    // A list over its limit is refused, naming the field, with the request id.
    TopologyReply big;
    big.request_id = 9;
    big.positions.resize(topology_positions_max + 1);
    core::Bytes big_frame = frame_of(big);
    auto refused = decode_frame(body_of(big_frame), 4096);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().error.is(core::errc::invalid_argument));
    CHECK_THAT(refused.error().error.detail,
               Contains("TopologyReply field 10 (positions): 1001 items, limit 1000"));
    CHECK(refused.error().request_id == 9u);
}
