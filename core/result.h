// core/result.h: errors as values. Every fallible function returns
// Result<T>; an Error carries a std::error_code (spirit::core::errc, or the
// uv/lmdb/generic category it came from) and a detail that names what was
// wrong ("stream orders seq 42: hash mismatch ...").
#pragma once

#include <string>
#include <system_error>
#include <utility>

#include <tl/expected.hpp>

namespace spirit::core {

// spirit's own error codes. The numbers are on the wire (Error frames,
// PublishAck errors) and in docs/protocol.md: never renumber, never reuse.
enum class errc : int {
    // 1xx: the request or the bytes are wrong.
    malformed = 100,            // bytes that do not decode as the expected message
    limit_exceeded = 101,       // a size or count over its limit
    invalid_argument = 102,     // a value out of its range
    invalid_stream_name = 103,  // a stream name that breaks the naming rules
    unknown_message = 104,      // a message type this version does not know
    unsupported_version = 105,  // protocol version mismatch
    unauthorized = 106,         // missing or wrong token, or no right for the stream
    // 2xx: the request is fine but the state does not allow it.
    not_found = 200,              // no such stream, consumer or position
    already_exists = 201,         // create of something that exists
    expected_seq_mismatch = 202,  // optimistic concurrency: the stream moved on
    not_master = 203,             // this node does not order writes for the stream
    overloaded = 204,             // a queue is full; retry later
    shutting_down = 205,          // the daemon is stopping
    timeout = 206,                // a deadline passed before the request completed
    busy = 207,                   // the stream is in a state that forbids this now
    connection_lost = 208,        // the connection closed before the reply: outcome unknown
    unavailable = 209,            // the stream cannot take writes now (its master completes it)
    stale_epoch = 210,            // a peer spoke for an epoch older than this node knows
    // 3xx: integrity.
    hash_mismatch = 300,  // a chain hash does not match its envelope
    corrupt = 301,        // stored bytes that fail to decode
    bad_signature = 302,  // a signature that does not verify with its author's public key
    // 4xx: storage.
    storage_full = 400,    // disk or LMDB map full; appends resume when space returns
    storage_io = 401,      // an I/O error on commit
    storage_failed = 402,  // the store refuses writes after an I/O error; restart to recover
    // 5xx: configuration and internal.
    config_invalid = 500,
    internal = 501,
};

const std::error_category& spirit_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), spirit_category()};
}

// Stable short name of a code ("hash_mismatch"), for logs and JSON output.
const char* errc_name(errc e) noexcept;

struct Error {
    std::error_code code;
    std::string detail;  // what was wrong, naming the stream/seq/peer/key/field

    bool is(errc e) const { return code == make_error_code(e); }
    // "detail (code name)"; the text users see.
    std::string message() const;
};

template <class T>
using Result = tl::expected<T, Error>;

using Unexpected = tl::unexpected<Error>;

inline Unexpected make_error(errc e, std::string detail) {
    return Unexpected{Error{make_error_code(e), std::move(detail)}};
}

inline Unexpected make_error(std::error_code code, std::string detail) {
    return Unexpected{Error{code, std::move(detail)}};
}

}  // namespace spirit::core

template <>
struct std::is_error_code_enum<spirit::core::errc> : std::true_type {};

// Propagates the error of a Result expression, or evaluates to nothing.
#define SPIRIT_TRY(expr)                                                              \
    do {                                                                              \
        auto&& spirit_try_result_ = (expr);                                           \
        if (!spirit_try_result_) [[unlikely]] {                                       \
            return ::spirit::core::Unexpected{std::move(spirit_try_result_).error()}; \
        }                                                                             \
    } while (false)
