// core/ids.h: strong types for every identifier that crosses a module
// boundary, so a seq can never be passed where an epoch is expected.
//
// Plain value types, std only: topology/ may use them.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace spirit::core {

// A number with a tag. Comparisons always; arithmetic only through the named
// helpers of each alias (Seq::next), never implicitly.
template <class Tag, class Rep>
class StrongId {
 public:
    using rep = Rep;

    constexpr StrongId() = default;
    constexpr explicit StrongId(Rep value) : value_(value) {}

    constexpr Rep value() const { return value_; }
    constexpr StrongId next() const { return StrongId{static_cast<Rep>(value_ + 1)}; }
    constexpr StrongId prev() const { return StrongId{static_cast<Rep>(value_ - 1)}; }

    friend constexpr auto operator<=>(StrongId, StrongId) = default;

 private:
    Rep value_ = 0;
};

// Position of an event in its stream: 1, 2, 3 ... with no gaps. Seq{0} means
// "before the first event" (an empty stream's last seq).
using Seq = StrongId<struct SeqTag, std::uint64_t>;

// Grows with every election; each event records the epoch of the master that
// sequenced it. A single node that never elects runs in Epoch{1}.
using Epoch = StrongId<struct EpochTag, std::uint64_t>;

// Local, dense id of a stream inside one node's store (the events key prefix).
// Never sent on the wire: peers name streams by name.
using StreamId = StrongId<struct StreamIdTag, std::uint64_t>;

// One logical tick of the topology state machine.
using Tick = StrongId<struct TickTag, std::uint64_t>;

// Nanoseconds since the Unix epoch (UTC), as stamped by a stream's master.
using TimestampNs = StrongId<struct TimestampNsTag, std::uint64_t>;

// A fixed-size byte string with value semantics and ordering.
template <class Tag, std::size_t N>
struct FixedBytes {
    static constexpr std::size_t size_bytes = N;
    std::array<std::byte, N> bytes{};

    friend constexpr auto operator<=>(const FixedBytes&, const FixedBytes&) = default;

    constexpr bool is_zero() const {
        for (std::byte b : bytes) {
            if (b != std::byte{0}) return false;
        }
        return true;
    }
};

// 16-byte event id: given by the producer for idempotency, or generated.
using EventId = FixedBytes<struct EventIdTag, 16>;

// 32-byte BLAKE2b-256 chain hash of an envelope.
using Digest = FixedBytes<struct DigestTag, 32>;

}  // namespace spirit::core

template <class Tag, class Rep>
struct std::hash<spirit::core::StrongId<Tag, Rep>> {
    std::size_t operator()(spirit::core::StrongId<Tag, Rep> id) const noexcept {
        return std::hash<Rep>{}(id.value());
    }
};

template <class Tag, std::size_t N>
struct std::hash<spirit::core::FixedBytes<Tag, N>> {
    // Mixes every byte (ids that differ only in their tail, like counters or
    // UUIDv7s of one millisecond, must not collide). Not keyed: maps that
    // hold ids chosen by outside parties use core::KeyedHash instead.
    std::size_t operator()(const spirit::core::FixedBytes<Tag, N>& v) const noexcept {
        std::uint64_t h = 0x9e3779b97f4a7c15ULL;
        for (std::size_t i = 0; i < N; ++i) {
            h = (h ^ static_cast<std::uint64_t>(v.bytes[i])) * 0x100000001b3ULL;
        }
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        return static_cast<std::size_t>(h);
    }
};
