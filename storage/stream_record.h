// storage/stream_record.h: the value of a `streams` database entry: a
// stream's id, policy, committed head and confirmed epoch. Fixed-width
// big-endian fields behind a version byte (docs/format.md "Stream record").
// Version 2 is written; version 1 (no confirmed epoch) is still read.
#pragma once

#include "core/bytes.h"
#include "core/ids.h"
#include "core/result.h"
#include "core/stream_policy.h"

namespace spirit::storage::detail {

struct StreamRecord {
    core::StreamId id;
    core::StreamPolicy policy;
    core::Seq first_seq{1};
    core::Seq last_seq{0};
    core::Epoch last_epoch{0};
    core::TimestampNs last_timestamp_ns{0};
    core::Digest last_hash;
    core::Digest base_hash;
    std::uint64_t event_bytes = 0;
    core::TimestampNs created_ns{0};
    // The epoch of the last master this copy has durably aligned with
    // (DESIGN.md "Topology"); Epoch{0}: none yet (a stream created empty).
    // Never below the epoch of any event in the stream.
    core::Epoch confirmed_epoch{0};

    std::uint64_t event_count() const { return last_seq.value() + 1 - first_seq.value(); }
    friend bool operator==(const StreamRecord&, const StreamRecord&) = default;
};

// Sizes of the two versions, version byte included.
inline constexpr std::size_t stream_record_v1_bytes = 148;
inline constexpr std::size_t stream_record_bytes = 156;  // version 2, the one written

// Version 2.
core::Bytes encode_stream_record(const StreamRecord& record);
// Reads version 2, and version 1 with confirmed_epoch = Epoch{1} (every v1
// store was written under the fixed epoch 1). errc::corrupt naming the
// stream when the bytes are neither.
[[nodiscard]] core::Result<StreamRecord> decode_stream_record(core::ByteView bytes,
                                                              std::string_view stream);

}  // namespace spirit::storage::detail
