// daemon/cli/status_format.h: how `spirit status` prints a StatusReply: a
// block of lines for people, or one JSON object for scripts (every field
// is listed in docs/operations.md, "spirit status"). Pure functions,
// unit-tested (tests/daemon/status_format_test.cc).
#pragma once

#include <cstdint>
#include <string>

#include "core/protocol.h"

namespace spirit::daemon::cli {

// The lines, each ending in a newline:
//   node            node-1
//   ...
//   ready           yes            (or: no: catching up with the master node-a)
//   store           1.5 MiB used of a 16.0 GiB map (0.0%); 40.2 GiB free on disk
//   consumer        billing on orders: 120 events behind (acked 880 of 1000)
std::string status_text(const core::protocol::StatusReply& s);

// One JSON object, without a newline.
std::string status_json(const core::protocol::StatusReply& s);

// "512 B", "1.5 KiB", "16.0 GiB".
std::string human_bytes(std::uint64_t bytes);

}  // namespace spirit::daemon::cli
