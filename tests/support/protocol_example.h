// tests/support/protocol_example.h: the example session of docs/protocol.md,
// twice: as the page documents it (hex read out of the markdown at test
// time) and as the codec builds it from the messages it describes. The
// golden test compares the two; an integration test plays the documented
// client frames to a real spiritd and compares its answers with the built
// daemon frames, so the page shows what the daemon really sends.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/ids.h"
#include "core/protocol.h"

namespace spirit::test {

// One frame of the page's example: a line naming it ("client Hello"), the
// frame in hex (length, then body, over one or more lines), and a line or
// more describing it ("[1, 1, \"cli\", nil]").
struct DocumentedFrame {
    std::string name;
    core::Bytes frame;
    std::string description;
    std::size_t line = 0;  // of the name in the markdown file, 1-based
};

// The frames of the first code block after the heading "## An example
// session" of `markdown`. Fails the running test (Catch2) if the block is
// missing or a hex line does not parse.
std::vector<DocumentedFrame> read_documented_session(const std::filesystem::path& markdown);

// docs/protocol.md in this source tree.
std::filesystem::path protocol_doc();

// The timestamp the page's example uses (2023-11-14T22:13:20Z).
inline constexpr core::TimestampNs example_timestamp{1'700'000'000'000'000'000ULL};

struct ExampleFrame {
    std::string name;
    core::protocol::Message message;  // may view `ExampleSession::envelope`
    core::Bytes frame;  // as its sender writes it (the daemon's Events by EventsFrameBuilder)
};

struct ExampleSession {
    core::Bytes envelope;  // the sealed envelope of orders seq 1
    std::vector<ExampleFrame> frames;
};

// The example, built by the codec, with the event stored at `timestamp`
// (which also decides its chain hash).
ExampleSession example_session(core::TimestampNs timestamp = example_timestamp);

// `frame` as the page writes it: "  LLLLLLLL  body...", 64 hex digits of
// body per line, continuation lines indented under the body.
std::string documented_hex(core::ByteView frame);

}  // namespace spirit::test
