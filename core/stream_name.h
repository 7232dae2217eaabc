// core/stream_name.h: the naming rules for streams, checked wherever a name
// enters the system (publish, create, subscribe, a peer's envelope).
#pragma once

#include <string_view>

#include "core/result.h"

namespace spirit::core {

// Whether the name is reserved for the daemon's own streams ("$topology").
enum class NameScope { user, system };

// A valid name is 1..limits::stream_name_bytes_max bytes of
// [A-Za-z0-9_.:@/=+-], starting with a letter, digit or '_'. System streams
// are '$' followed by such a name; users may read them but not publish.
// Returns invalid_stream_name naming the first offending byte.
[[nodiscard]] Result<void> validate_stream_name(std::string_view name,
                                                NameScope scope = NameScope::user);

// The bytes a name may start with (after any '$'), and the bytes it may
// hold; core/stream_pattern.h builds its tokens from the same sets.
bool is_stream_name_start(char c) noexcept;
bool is_stream_name_char(char c) noexcept;

// True for '$'-prefixed names.
inline bool is_system_stream(std::string_view name) {
    return !name.empty() && name.front() == '$';
}

// Whether `text` is well-formed UTF-8 (no overlongs, no surrogates).
bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace spirit::core
