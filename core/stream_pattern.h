// core/stream_pattern.h: the pattern language over stream names, used by
// pattern subscriptions, [[streams]] defaults and [[client.grants]].
//
// A pattern is a stream name split on '.' into tokens, where a token may
// also be '*' (exactly one token of a name) or, as the last token only, '>'
// (one or more tokens). "orders.*" matches "orders.eu"; "orders.>" matches
// "orders.eu" and "orders.eu.x"; neither matches "orders". Literal tokens
// follow the name rules of core/stream_name.h. Pure functions, no state.
#pragma once

#include <string_view>

#include "core/result.h"

namespace spirit::core {

// Checks a pattern: 1..limits::stream_name_bytes_max bytes (a longer one
// could match no name); tokens that are '*', '>' (last only) or non-empty
// runs of stream-name bytes; a literal first token starts like a name (a
// letter, digit or '_'). '$' (system streams) is not allowed.
// Returns invalid_argument naming the pattern and the first problem, e.g.
// `pattern "a.>.b": '>' is token 2 of 3; it may only be the last token`.
[[nodiscard]] Result<void> validate_pattern(std::string_view pattern);

// Whether `name` matches `pattern`. An exact name is a pattern matching
// itself. Validate a pattern from outside first: an invalid one is only
// compared token by token, never refused here.
bool pattern_matches(std::string_view pattern, std::string_view name);

// Whether every name that `inner` (a name or a pattern) matches is also
// matched by `outer`: "orders.>" covers "orders.*.eu" and "orders.eu", but
// not "orders"; "orders.*" does not cover "orders.>".
bool pattern_covers(std::string_view outer, std::string_view inner);

}  // namespace spirit::core
