// The example session of docs/protocol.md against a real spiritd: the
// documented client frames, read out of the page, are sent as they are, and
// every frame the daemon answers must be byte for byte the documented one,
// but for the timestamp the daemon gave the event (and so its chain hash):
// the expected frames are rebuilt with it (tests/support/protocol_example.h).
// tests/core/protocol_golden_test.cc checks that the page's bytes are those
// frames built with the page's timestamp.
//
// A second case pins what the page says about publishes and credit, found
// first by experiment and then in the code (storage/store.cc append and
// validate, store_read.cc, daemon/server_subscriptions.cc pump): a batch's
// events share one timestamp, an id repeated in a batch is a duplicate of
// the first, the ack of an all-duplicate batch, an event larger than the
// byte credit left, and what "8 MiB per batch" counts.
#include <catch2/catch.hpp>

#include "core/codec.h"
#include "core/limits.h"
#include "tests/integration/daemon_harness.h"
#include "tests/integration/raw_socket.h"
#include "tests/support/bytes.h"
#include "tests/support/protocol_example.h"

using namespace spirit;
namespace proto = core::protocol;

TEST_CASE("a real spiritd answers the documented client frames with the documented daemon frames",
          "[integration]") {
    test::Daemon daemon;  // node id "node-1" and default limits, as the example
    daemon.start();
    const std::vector<test::DocumentedFrame> documented =
        test::read_documented_session(test::protocol_doc());
    test::ExampleSession expected = test::example_session();
    REQUIRE(documented.size() == expected.frames.size());
    test::RawSocket s((daemon.dir() / "spirit.sock").string());
    for (std::size_t i = 0; i < documented.size(); ++i) {
        const test::DocumentedFrame& doc = documented[i];
        INFO("docs/protocol.md:" << doc.line << ": " << doc.name);
        if (doc.name.starts_with("client ")) {
            s.send(doc.frame);
            continue;
        }
        auto frame = s.receive_frame();
        REQUIRE(frame);
        auto message = proto::decode(core::ByteView(*frame).subspan(core::frame_header_bytes),
                                     core::limits::batch_events_max);
        REQUIRE(message);
        if (const auto* ack = std::get_if<proto::PublishAck>(&*message)) {
            // The one thing the daemon decides: when the event was stored.
            expected = test::example_session(ack->timestamp_ns);
        }
        INFO("the daemon sent:\n" << test::documented_hex(*frame));
        CHECK(core::to_hex(*frame) == core::to_hex(expected.frames[i].frame));
    }
    // The bad publish was answered; the connection is still open.
    s.send(proto::Status{99});
    auto m = s.receive();
    REQUIRE(m);
    CHECK(std::holds_alternative<proto::StatusReply>(*m));
}

namespace {

void hello(test::RawSocket& s) {
    s.send(proto::Hello{proto::version, "semantics", std::nullopt});
    auto m = s.receive();
    REQUIRE(m);
    REQUIRE(std::holds_alternative<proto::Welcome>(*m));
}

template <class T>
T receive_as(test::RawSocket& s) {
    auto m = s.receive();
    REQUIRE(m);
    INFO("got " << proto::type_name(proto::type_of(*m)));
    REQUIRE(std::holds_alternative<T>(*m));
    return std::get<T>(*m);
}

}  // namespace

TEST_CASE("a real spiritd keeps the publish and credit rules docs/protocol.md states",
          "[integration]") {
    test::Daemon daemon;
    daemon.start();
    test::RawSocket s((daemon.dir() / "spirit.sock").string());
    hello(s);
    const std::string payload(100, 'p');
    auto event = [&](std::optional<core::EventId> id) {
        return core::EventDraft{id, "t", {}, core::as_bytes(payload)};
    };
    const core::EventId a = test::event_id(1);
    const core::EventId b = test::event_id(2);

    // One batch: ids a, b, a. The second a is a duplicate of the first.
    s.send(proto::Publish{1, "rules", std::nullopt, {event(a), event(b), event(a)}});
    const auto first = receive_as<proto::PublishAck>(s);
    CHECK(first.first_seq == core::Seq{1});
    CHECK(first.last_seq == core::Seq{2});
    REQUIRE(first.duplicates.size() == 1);
    CHECK(first.duplicates[0].index == 2);
    CHECK(first.duplicates[0].seq == core::Seq{1});
    CHECK(first.epoch == core::Epoch{1});

    // All duplicates: seqs 0, every index listed with its seq, no timestamp
    // or hash, the epoch of the request.
    s.send(proto::Publish{2, "rules", std::nullopt, {event(b), event(a)}});
    const auto again = receive_as<proto::PublishAck>(s);
    CHECK(again.first_seq == core::Seq{0});
    CHECK(again.last_seq == core::Seq{0});
    REQUIRE(again.duplicates.size() == 2);
    CHECK(again.duplicates[0].index == 0);
    CHECK(again.duplicates[0].seq == core::Seq{2});
    CHECK(again.duplicates[1].index == 1);
    CHECK(again.duplicates[1].seq == core::Seq{1});
    CHECK(again.timestamp_ns == core::TimestampNs{0});
    CHECK(again.last_hash == core::Digest{});
    CHECK(again.epoch == core::Epoch{1});
    CHECK(again.holders == std::vector<std::string>{"node-1"});

    // Byte credit of 1: each Events frame still holds one event, which uses
    // the credit up; nothing more comes until Credit adds some.
    s.send(proto::Subscribe{7, "rules", proto::From::first, 0, std::nullopt, 10, 1});
    CHECK(receive_as<proto::Subscribed>(s).positions.size() == 1);
    auto events = receive_as<proto::Events>(s);
    REQUIRE(events.envelopes.size() == 1);
    auto one = core::decode_envelope(events.envelopes[0]);
    REQUIRE(one);
    CHECK(one->seq == core::Seq{1});
    // The batch's events share one timestamp: the ack's, as its epoch is the last event's.
    CHECK(one->timestamp_ns == first.timestamp_ns);
    CHECK_FALSE(s.receive(std::chrono::milliseconds(300)));
    s.send(proto::Credit{7, 0, 1});
    events = receive_as<proto::Events>(s);
    REQUIRE(events.envelopes.size() == 1);
    auto two = core::decode_envelope(events.envelopes[0]);
    REQUIRE(two);
    CHECK(two->seq == core::Seq{2});
    CHECK(two->timestamp_ns == first.timestamp_ns);
    CHECK(two->epoch == first.epoch);
    CHECK(two->hash == first.last_hash);

    // "8 MiB per batch" counts type, metadata and payload plus 128 bytes per
    // event: 4,096 events of 2,000 bytes (7.8 MiB of payload, a frame under
    // frame_bytes_max) come to 8,720,384 and are refused, with the request id.
    const std::string big(2000, 'b');
    proto::Publish batch{3, "rules", std::nullopt, {}};
    for (int i = 0; i < 4096; ++i)
        batch.events.push_back({std::nullopt, "t", {}, core::as_bytes(big)});
    s.send(batch);
    const auto refused = receive_as<proto::ErrorReply>(s);
    CHECK(refused.request_id == 3u);
    CHECK(refused.code == static_cast<std::uint32_t>(core::errc::limit_exceeded));
    CHECK(refused.message == "stream rules: an append of 8720384 bytes, limit 8388608");
    batch.request_id = 4;
    batch.events.resize(3800);  // 3,800 x 2,129 = 8,090,200
    s.send(batch);
    CHECK(receive_as<proto::PublishAck>(s).request_id == 4);
}
