// core/codec.h: the canonical msgpack encoding of envelopes and the frame
// header, and their hostile-input-safe decoders.
//
// An envelope is a msgpack array of 9 elements in EnvelopeField order, every
// element in its shortest msgpack form (docs/format.md). Because the form is
// canonical, the stored bytes are the wire bytes and the hashed bytes: an
// envelope is encoded once, at sealing, and then only copied.
#pragma once

#include <cstddef>

#include "core/bytes.h"
#include "core/envelope.h"
#include "core/result.h"

namespace spirit::core {

// Appends the sealed encoding of `fields` (fields.hash is ignored) chained on
// `prev_hash` to `out`, and returns the chain hash it computed and wrote.
// REQUIRES: fields satisfy the limits of core/limits.h (the sequencer
// validated them); asserted.
Digest seal_envelope(Bytes& out, const EnvelopeView& fields, const Digest& prev_hash);

// Appends the encoding of an envelope sealed before: as seal_envelope
// writes it, but with fields.hash as it is, not computed. For the fields
// decode_envelope read from stored bytes, these are those bytes (the
// encoding is canonical). REQUIRES: as seal_envelope.
void encode_envelope(Bytes& out, const EnvelopeView& fields);

// Exact size seal_envelope will append for `fields`.
std::size_t sealed_envelope_size(const EnvelopeView& fields) noexcept;

// Decodes one envelope. Never throws, never allocates in proportion to a
// declared size: every length is checked against the bytes present and the
// limits first. Errors (errc::malformed or limit_exceeded) name the field.
// Non-canonical encodings are refused: equal events have equal bytes.
// The returned views point into `encoded`.
[[nodiscard]] Result<EnvelopeView> decode_envelope(ByteView encoded);

// The chain hash a canonical encoded envelope must carry when it follows
// `prev_hash`. REQUIRES: `encoded` decoded successfully.
Digest chain_hash_of(ByteView encoded, const Digest& prev_hash);

// decode_envelope, then checks the stored hash against chain_hash_of.
// A mismatch is errc::hash_mismatch naming stream, seq and both hashes.
[[nodiscard]] Result<EnvelopeView> verify_envelope(ByteView encoded, const Digest& prev_hash);

// Frames: a 4-byte big-endian body length, then the body.
inline constexpr std::size_t frame_header_bytes = 4;

// Writes the header for a body of `body_bytes` into `out[0..4)`.
// REQUIRES: body_bytes <= limits::frame_bytes_max.
void encode_frame_header(std::byte* out, std::size_t body_bytes);

// Reads a frame header. errc::limit_exceeded if the announced length is over
// `frame_bytes_max`, so nothing is ever allocated for it.
[[nodiscard]] Result<std::size_t> decode_frame_header(ByteView header4,
                                                      std::size_t frame_bytes_max);

}  // namespace spirit::core
