// core/stream_policy.h: the per-stream policy chosen at creation (explicitly
// or by the config's name patterns): redundancy, acks and retention.
#pragma once

#include <cstdint>

namespace spirit::core {

// How a publish is acknowledged. Values are stored on disk: never renumber.
enum class Redundancy : std::uint8_t {
    eventual = 0,   // after the master's own durable commit; slaves follow
    immediate = 1,  // after `acks` copies (master included) are durable
};

// How many durable copies an immediate publish waits for. Stored on disk.
struct Acks {
    enum class Kind : std::uint8_t { majority = 0, all = 1, count = 2 };
    Kind kind = Kind::majority;
    std::uint8_t count = 0;  // copies, master included; only for Kind::count

    friend bool operator==(const Acks&, const Acks&) = default;
};

// Retention limits; 0 means "no limit". Events beyond a limit are trimmed
// from the start of the stream.
struct Retention {
    std::uint64_t events_max = 0;
    std::uint64_t bytes_max = 0;
    std::uint64_t age_ms_max = 0;

    friend bool operator==(const Retention&, const Retention&) = default;
};

struct StreamPolicy {
    Redundancy redundancy = Redundancy::eventual;
    Acks acks;
    Retention retention;

    friend bool operator==(const StreamPolicy&, const StreamPolicy&) = default;
};

}  // namespace spirit::core
