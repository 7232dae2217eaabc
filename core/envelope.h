// core/envelope.h: one event as it is stored and sent. The encoding and the
// chain hash are in core/codec.h; docs/format.md is their specification.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/ids.h"

namespace spirit::core {

// Envelope fields in wire order. The numbers are the positions in the
// encoded msgpack array: on disk and on the wire, never renumber.
enum class EnvelopeField : unsigned {
    stream = 0,
    seq = 1,
    epoch = 2,
    timestamp_ns = 3,
    id = 4,
    type = 5,
    metadata = 6,
    payload = 7,
    hash = 8,
};
inline constexpr unsigned envelope_field_count = 9;

// Name of a field for error messages ("id").
const char* envelope_field_name(EnvelopeField field) noexcept;

// What a producer supplies for one event; the master adds the rest. A view:
// the bytes belong to the caller and need only outlive the call they are
// passed to (the sequencer copies them into the sealed envelope).
struct EventDraft {
    std::optional<EventId> id;  // set: idempotency key; unset: the master generates one
    std::string_view type;
    ByteView metadata;
    ByteView payload;
};

// A non-owning view of an envelope. When it comes from decode_envelope the
// views point into the decoded bytes and are valid only while they are.
struct EnvelopeView {
    std::string_view stream;
    Seq seq;
    Epoch epoch;
    TimestampNs timestamp_ns;
    EventId id;
    std::string_view type;
    ByteView metadata;
    ByteView payload;
    Digest hash;  // ignored by seal_envelope, which computes it
};

// An owning envelope, for code that keeps events beyond their buffer.
struct Envelope {
    std::string stream;
    Seq seq;
    Epoch epoch;
    TimestampNs timestamp_ns;
    EventId id;
    std::string type;
    Bytes metadata;
    Bytes payload;
    Digest hash;

    EnvelopeView view() const {
        return {stream, seq, epoch, timestamp_ns, id, type, metadata, payload, hash};
    }
    static Envelope from_view(const EnvelopeView& v) {
        return {std::string(v.stream),
                v.seq,
                v.epoch,
                v.timestamp_ns,
                v.id,
                std::string(v.type),
                Bytes(v.metadata.begin(), v.metadata.end()),
                Bytes(v.payload.begin(), v.payload.end()),
                v.hash};
    }
    friend bool operator==(const Envelope&, const Envelope&) = default;
};

}  // namespace spirit::core
