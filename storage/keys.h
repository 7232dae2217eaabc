// storage/keys.h: the byte layout of LMDB keys. Integers are big-endian and
// fixed-width so that byte order is numeric order and MDB_APPEND works.
#pragma once

#include <array>
#include <cstring>
#include <string_view>

#include "core/bytes.h"
#include "core/ids.h"

namespace spirit::storage::detail {

// events: stream id || seq
using EventKey = std::array<std::byte, 16>;
inline EventKey event_key(core::StreamId stream, core::Seq seq) {
    EventKey k;
    core::store_be64(k.data(), stream.value());
    core::store_be64(k.data() + 8, seq.value());
    return k;
}
inline core::StreamId event_key_stream(core::ByteView k) {
    return core::StreamId{core::load_be64(k.data())};
}
inline core::Seq event_key_seq(core::ByteView k) {
    return core::Seq{core::load_be64(k.data() + 8)};
}

// quarantine: stream id || seq || epoch || first 8 bytes of the hash. The
// hash prefix keeps two different envelopes removed at the same (seq, epoch)
// apart, and makes quarantining the same envelope twice idempotent.
using QuarantineKey = std::array<std::byte, 32>;
inline QuarantineKey quarantine_key(core::StreamId stream, core::Seq seq, core::Epoch epoch,
                                    const core::Digest& hash) {
    QuarantineKey k;
    core::store_be64(k.data(), stream.value());
    core::store_be64(k.data() + 8, seq.value());
    core::store_be64(k.data() + 16, epoch.value());
    std::memcpy(k.data() + 24, hash.bytes.data(), 8);
    return k;
}

// ids: timestamp || stream id || event id -> seq. Time-ordered so that new
// entries append at the end and expired ones are removed from the front.
using IdKey = std::array<std::byte, 32>;
inline IdKey id_key(core::TimestampNs ts, core::StreamId stream, const core::EventId& id) {
    IdKey k;
    core::store_be64(k.data(), ts.value());
    core::store_be64(k.data() + 8, stream.value());
    std::memcpy(k.data() + 16, id.bytes.data(), 16);
    return k;
}

// cursors: consumer name || 0x00 || stream id. Consumer names are stream-name
// characters, so they hold no 0x00 and a prefix scan by name works.
inline core::Bytes cursor_key(std::string_view consumer, core::StreamId stream) {
    core::Bytes k(consumer.size() + 1 + 8);
    std::memcpy(k.data(), consumer.data(), consumer.size());
    k[consumer.size()] = std::byte{0};
    core::store_be64(k.data() + consumer.size() + 1, stream.value());
    return k;
}

// Keys of the `node` database.
inline constexpr std::string_view node_key_format = "format";
inline constexpr std::string_view node_key_next_stream_id = "next_stream_id";
// The value of node_key_format this code reads and writes.
inline constexpr std::string_view store_format = "spirit-store/1";

using U64Value = std::array<std::byte, 8>;
inline U64Value u64_value(std::uint64_t v) {
    U64Value out;
    core::store_be64(out.data(), v);
    return out;
}

template <std::size_t N>
core::ByteView view_of(const std::array<std::byte, N>& a) {
    return core::ByteView(a.data(), N);
}

}  // namespace spirit::storage::detail
