// storage/outbox_record.h: the value of an `outbox` entry (docs/format.md):
//   u16 stream length, stream, u32 event count, then per event:
//   id (16), u16 type length, type, u32 metadata length, metadata,
//   u32 payload length, payload. Big-endian.
#pragma once

#include <span>
#include <string_view>

#include "core/envelope.h"
#include "core/result.h"
#include "storage/store.h"

namespace spirit::storage::detail {

// REQUIRES: every event has an id.
core::Bytes encode_outbox_entry(std::string_view stream, std::span<const core::EventDraft> events);
// errc::corrupt when the bytes are not an entry.
[[nodiscard]] core::Result<OutboxEntry> decode_outbox_entry(std::uint64_t id, core::ByteView bytes);

}  // namespace spirit::storage::detail
