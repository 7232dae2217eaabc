// Pins the client protocol's bytes: a short session (Hello, Welcome,
// Publish, PublishAck, Subscribe, Subscribed, Events, Credit, Ack, an Error)
// encoded frame by frame must equal tests/golden/protocol_session.txt, the
// example in docs/protocol.md. SPIRIT_REWRITE=1 regenerates the file;
// commit only a diff you meant.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/codec.h"
#include "core/hash_chain.h"
#include "core/protocol.h"
#include "tests/support/bytes.h"

using namespace spirit;
namespace proto = core::protocol;

namespace {

std::vector<std::pair<std::string, proto::Message>> session(core::Bytes& envelope) {
    static const std::string payload = R"({"sku":"A-1"})";
    core::EventId id;
    for (std::size_t i = 0; i < 16; ++i) id.bytes[i] = static_cast<std::byte>(0xa0 + i);
    core::EnvelopeView e{"orders",
                         core::Seq{1},
                         core::Epoch{1},
                         core::TimestampNs{1'700'000'000'000'000'000ULL},
                         id,
                         "placed",
                         {},
                         core::as_bytes(payload),
                         {}};
    const core::Digest hash = core::seal_envelope(envelope, e, core::genesis_hash);
    proto::Publish publish{1, "orders", std::nullopt, {}};
    publish.events.push_back({id, "placed", {}, core::as_bytes(payload)});
    return {
        {"client Hello", proto::Hello{1, "cli", std::nullopt}},
        {"daemon Welcome", proto::Welcome{1, "node-1", "spiritd 0.1.0", 8454144, 4096}},
        {"client Publish", publish},
        {"daemon PublishAck", proto::PublishAck{1,
                                                proto::AckKind::durable,
                                                core::Seq{1},
                                                core::Seq{1},
                                                core::Epoch{1},
                                                core::TimestampNs{1'700'000'000'000'000'000ULL},
                                                hash,
                                                {},
                                                {"node-1"}}},
        {"client Subscribe",
         proto::Subscribe{7, "orders", proto::From::first, 0, std::string("billing"), 100, 0}},
        {"daemon Subscribed", proto::Subscribed{7, {{"orders", core::Seq{1}, core::genesis_hash}}}},
        {"daemon Events", proto::Events{7, {envelope}}},
        {"client Credit", proto::Credit{7, 1, 0}},
        {"client Ack", proto::Ack{7, "orders", core::Seq{1}}},
        {"client Publish (bad name)", proto::Publish{2, "bad name", std::nullopt, {}}},
        {"daemon Error",
         proto::ErrorReply{2, 103, "stream name \"bad name\" has byte 0x20 at offset 3"}},
    };
}

}  // namespace

TEST_CASE("the example session's frames are byte for byte the documented ones", "[core][unit]") {
    core::Bytes envelope;
    auto frames = session(envelope);
    const std::string path = SPIRIT_SOURCE_DIR "/tests/golden/protocol_session.txt";
    if (const char* rewrite = std::getenv("SPIRIT_REWRITE");
        rewrite && std::string(rewrite) == "1") {
        std::ofstream out(path);
        out << "# The example session of docs/protocol.md: one frame per line, \"name: hex\".\n";
        out << "# Pinned by tests/core/protocol_golden_test.cc.\n";
        for (const auto& [name, message] : frames) {
            core::Bytes frame;
            proto::encode(frame, message);
            out << name << ": " << core::to_hex(frame) << "\n";
        }
    }
    std::ifstream in(path);
    REQUIRE(in.good());
    std::string line;
    std::size_t i = 0;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        REQUIRE(i < frames.size());
        const auto colon = line.find(": ");
        CHECK(line.substr(0, colon) == frames[i].first);
        core::Bytes frame;
        proto::encode(frame, frames[i].second);
        CHECK(line.substr(colon + 2) == core::to_hex(frame));
        // And each documented frame decodes back to the same bytes.
        auto decoded = proto::decode(core::ByteView(frame).subspan(4), 4096);
        REQUIRE(decoded);
        core::Bytes again;
        proto::encode(again, *decoded);
        CHECK(again == frame);
        ++i;
    }
    CHECK(i == frames.size());
}
