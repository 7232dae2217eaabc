// core/limits.h: every bound on something an outside party controls, in one
// place, tied together at compile time. Configuration may lower a limit,
// never raise it past these maxima; decoders check declared sizes against
// them before allocating anything.
#pragma once

#include <cstddef>
#include <cstdint>

namespace spirit::core::limits {

// Stream names: see core/stream_name.h for the allowed characters.
inline constexpr std::size_t stream_name_bytes_max = 200;
// Event type strings ("order-placed").
inline constexpr std::size_t type_bytes_max = 255;
// Opaque per-event metadata bytes.
inline constexpr std::size_t metadata_bytes_max = 64u << 10;
// One event's payload.
inline constexpr std::size_t payload_bytes_max = 1u << 20;

// Everything of an envelope but metadata and payload, encoded, rounded up:
// array header, stream, three uints, id, type, two bin headers, hash.
inline constexpr std::size_t envelope_header_bytes_max = 1024;
inline constexpr std::size_t envelope_bytes_max =
    payload_bytes_max + metadata_bytes_max + envelope_header_bytes_max;

// Events in one append (one Publish).
inline constexpr std::size_t batch_events_max = 4096;
// Encoded bytes of one append: a batch of maximal events does not fit, a
// batch of one maximal event does.
inline constexpr std::size_t batch_bytes_max = 8u << 20;

// A frame body on any socket: one batch plus its message framing.
inline constexpr std::size_t frame_bytes_max = batch_bytes_max + (64u << 10);

// msgpack nesting depth any decoder accepts.
inline constexpr std::size_t msgpack_depth_max = 8;

static_assert(envelope_bytes_max <= batch_bytes_max, "one maximal event must fit in a batch");
static_assert(frame_bytes_max > batch_bytes_max, "a batch must fit in one frame");
static_assert(frame_bytes_max < (std::uint64_t{1} << 32), "frame length is a u32");
static_assert(stream_name_bytes_max + type_bytes_max + 3 * 9 + 18 + 34 + 3 * 5 <
                  envelope_header_bytes_max,
              "header bound covers every fixed field at its largest encoding");

}  // namespace spirit::core::limits
