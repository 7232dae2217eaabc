// storage/stream_record.h: the value of a `streams` database entry: a
// stream's id, policy and committed head. Fixed-width big-endian fields
// behind a version byte (docs/format.md "streams").
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

    std::uint64_t event_count() const { return last_seq.value() + 1 - first_seq.value(); }
    friend bool operator==(const StreamRecord&, const StreamRecord&) = default;
};

inline constexpr std::size_t stream_record_bytes = 148;

core::Bytes encode_stream_record(const StreamRecord& record);
// errc::corrupt naming the stream when the bytes are not a record.
[[nodiscard]] core::Result<StreamRecord> decode_stream_record(core::ByteView bytes,
                                                              std::string_view stream);

}  // namespace spirit::storage::detail
