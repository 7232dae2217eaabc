// Pins the client protocol's bytes to its documentation: the example
// session of docs/protocol.md is read out of the markdown at test time, and
// every documented frame must be byte for byte what the codec writes for
// the message the page describes (Events as the daemon's frame builder
// writes it), and must decode back to that message. A change to the codec
// that alters bytes, or an edit of the page that does not match them, fails
// here; the failure prints the frame as the page should show it.
// tests/integration/example_session_test.cc checks the same page against a
// running spiritd.
#include <catch2/catch.hpp>

#include "core/codec.h"
#include "core/limits.h"
#include "core/protocol.h"
#include "tests/support/protocol_example.h"

using namespace spirit;
namespace proto = core::protocol;

TEST_CASE("the example session in docs/protocol.md is byte for byte what the codec writes",
          "[core][unit]") {
    const std::vector<test::DocumentedFrame> documented =
        test::read_documented_session(test::protocol_doc());
    const test::ExampleSession built = test::example_session();
    REQUIRE(documented.size() == built.frames.size());
    for (std::size_t i = 0; i < documented.size(); ++i) {
        const test::DocumentedFrame& doc = documented[i];
        const test::ExampleFrame& want = built.frames[i];
        INFO("docs/protocol.md:" << doc.line << ": " << doc.name << "\nthe codec writes:\n"
                                 << test::documented_hex(want.frame));
        CHECK(doc.name == want.name);
        CHECK(core::to_hex(doc.frame) == core::to_hex(want.frame));

        // The documented frame is whole, decodes, and to the described message.
        REQUIRE(doc.frame.size() >= core::frame_header_bytes);
        auto length = core::decode_frame_header(doc.frame, core::limits::frame_bytes_max);
        REQUIRE(length);
        CHECK(*length == doc.frame.size() - core::frame_header_bytes);
        auto decoded = proto::decode(core::ByteView(doc.frame).subspan(core::frame_header_bytes),
                                     core::limits::batch_events_max);
        REQUIRE(decoded);
        const proto::Family sender =
            doc.name.starts_with("client ") ? proto::Family::client : proto::Family::daemon;
        CHECK(proto::family_of(proto::type_of(*decoded)) == sender);
        core::Bytes again;
        proto::encode(again, *decoded);
        core::Bytes described;
        proto::encode(described, want.message);
        CHECK(core::to_hex(again) == core::to_hex(described));
    }
}
