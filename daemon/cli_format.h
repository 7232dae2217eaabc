// daemon/cli_format.h: text helpers of the spirit CLI: JSON strings,
// base64, RFC 3339 timestamps. Pure functions, unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.h"

namespace spirit::daemon::cli {

// A JSON string literal (quotes included) for UTF-8 text.
std::string json_string(std::string_view text);
// Standard base64 with padding.
std::string base64(core::ByteView bytes);
// "2026-11-22T03:04:05.123456789Z" for nanoseconds since the Unix epoch.
std::string rfc3339(std::uint64_t ns);
// Parses RFC 3339 ("2026-11-22T03:04:05Z", fractions, "+01:00" offsets) to
// nanoseconds since the Unix epoch; nullopt if the text is not one.
std::optional<std::uint64_t> parse_rfc3339(std::string_view text);

}  // namespace spirit::daemon::cli
