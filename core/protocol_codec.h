// core/protocol_codec.h: internal to core/protocol*.cc. The positional
// Reader that copies a message's fields out of unpacked msgpack, the Packer
// helpers that write them, the field groups several messages share, and the
// per-family readers and writers that core/protocol.cc dispatches to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <msgpack.hpp>

#include "core/bytes.h"
#include "core/protocol.h"
#include "core/result.h"

namespace spirit::core::protocol::detail {

inline constexpr std::size_t text_bytes_max = 4096;  // names, tokens, messages
inline constexpr std::size_t list_items_max = 100'000;

// A list field as read: its items, and where it was, to name them.
struct List {
    std::span<const msgpack::object> items;
    std::uint32_t position = 0;  // of the list field in its message (or item)
    const char* field = "";
};

// Reads the elements of one msgpack array in order. The first problem is
// kept and later reads return defaults, so a message reader reads straight
// through and the caller checks once. An error names the message, the field
// by position and name and, inside a list, the list field and the item:
// "Publish field 4 (events) [0] field 1 (type): 256 bytes, limit 255".
// Descriptions are built only for an error. A field of the wrong msgpack
// type, or missing, is malformed; a value out of its range or over its size
// or count limit is invalid_argument.
class Reader {
 public:
    // The fields of message `message` ("Publish"), from position `start`.
    // REQUIRES: `array` is an array; it and `message` outlive the reader.
    Reader(const msgpack::object& array, const char* message, std::uint32_t start);
    // The fields of item `index` of `list`, read by `parent`, from 0.
    // REQUIRES: `item` is an array; `parent` and `list` outlive the reader.
    Reader(const msgpack::object& item, const Reader& parent, const List& list, std::size_t index);

    std::optional<Error>& error() { return error_; }
    bool failed() const { return error_.has_value(); }
    // Fields remain to be read (a message from a newer sender may carry
    // fields this build reads only when present).
    bool more() const { return !error_ && index_ < array_.via.array.size; }

    std::uint64_t u64(const char* field);
    std::optional<std::uint64_t> opt_u64(const char* field);
    // An unsigned integer that must fit in Int; invalid_argument if not.
    template <class Int>
    Int bounded(const char* field) {
        const std::uint64_t v = u64(field);
        if (v > std::numeric_limits<Int>::max()) {
            refuse(field, fmt::format("{} is out of range (limit {})", v,
                                      std::uint64_t{std::numeric_limits<Int>::max()}));
            return 0;
        }
        return static_cast<Int>(v);
    }
    // An enum whose values run from 0 to `last`; invalid_argument if not.
    template <class Enum>
    Enum enumerated(const char* field, Enum last) {
        const std::uint64_t v = u64(field);
        if (v > static_cast<std::uint64_t>(last)) {
            refuse(field,
                   fmt::format("unknown value {} (0 to {})", v, static_cast<std::uint64_t>(last)));
            return Enum{};
        }
        return static_cast<Enum>(v);
    }
    std::string_view text(const char* field, std::size_t max);
    std::string owned_text(const char* field, std::size_t max = text_bytes_max);
    std::optional<std::string> opt_text(const char* field, std::size_t max = text_bytes_max);
    ByteView bin(const char* field, std::size_t max);
    // A bin of exactly Fixed::size_bytes (an EventId, a Digest);
    // invalid_argument for another size.
    template <class Fixed>
    Fixed fixed(const char* field) {
        Fixed out;
        ByteView b = bin(field, std::numeric_limits<std::size_t>::max());
        if (failed()) return out;
        if (b.size() != Fixed::size_bytes) {
            refuse(field, fmt::format("{} bytes, expected {}", b.size(), Fixed::size_bytes));
            return out;
        }
        std::memcpy(out.bytes.data(), b.data(), b.size());
        return out;
    }
    template <class Fixed>
    std::optional<Fixed> opt_fixed(const char* field) {
        if (take_nil()) return std::nullopt;
        return fixed<Fixed>(field);
    }
    // A list field of at most `max` items; its items are not checked.
    List list(const char* field, std::size_t max);
    // Reads each item of `list` as an array of fields, with read(Reader&).
    template <class Read>
    void items(const List& list, Read read) {
        for (std::size_t i = 0; i < list.items.size() && !failed(); ++i) {
            const msgpack::object& item = list.items[i];
            if (item.type != msgpack::type::ARRAY) {
                fail_item(list, i, "expected an array", item);
                return;
            }
            Reader r(item, *this, list, i);
            read(r);
            if (r.failed()) error_ = std::move(r.error());
        }
    }
    // A field that is nil (returns false) or one array of fields, read with
    // read(Reader&) (returns true unless that failed). Errors inside name it
    // as item [0] of the field.
    template <class Read>
    bool opt_group(const char* field, Read read) {
        if (take_nil()) return false;
        const msgpack::object* o = next(field);
        if (o == nullptr) return false;
        const List group{{o, 1}, index_ - 1, field};
        items(group, read);
        return !failed();
    }
    // A list field of bin items (sealed envelopes), as views.
    std::vector<ByteView> envelopes(const char* field, std::size_t max);
    // A list field of unsigned integers (seqs, epochs).
    std::vector<std::uint64_t> u64s(const char* field, std::size_t max);
    // Records a problem with the field just read (the first problem wins):
    // malformed for its shape, invalid_argument (refuse) for its value.
    void fail(const char* field, const std::string& problem, errc code = errc::malformed);
    void refuse(const char* field, const std::string& problem);

 private:
    const msgpack::object* next(const char* field);
    bool take_nil();
    void wrong(const char* field, const char* expected, const msgpack::object& got);
    void fail_item(const List& list, std::size_t index, const char* expected,
                   const msgpack::object& got);
    std::string what() const;

    const msgpack::object& array_;
    const char* message_ = nullptr;  // top level only
    const Reader* parent_ = nullptr;
    const List* list_ = nullptr;  // items only
    std::size_t item_ = 0;
    std::uint32_t index_;
    std::optional<Error> error_;
};

// Unpacks a msgpack body into `handle` with the frame limits (arrays of at
// most max(batch_events_max, list_items_max) items, no maps or ext, nesting
// at most 5); str and bin stay views into `body`. malformed or
// limit_exceeded naming what was wrong. The root is not checked.
[[nodiscard]] Result<void> unpack(ByteView body, std::size_t batch_events_max,
                                  msgpack::object_handle& handle);

// --- writing ---

struct Sink {
    Bytes& out;
    void write(const char* data, std::size_t size) {
        const auto* p = reinterpret_cast<const std::byte*>(data);
        out.insert(out.end(), p, p + size);
    }
};

using Packer = msgpack::packer<Sink>;

void pack_text(Packer& pk, std::string_view s);
void pack_bin(Packer& pk, ByteView b);
template <class Opt, class Pack>
void pack_optional(Packer& pk, const Opt& value, Pack pack) {
    if (value) {
        pack(*value);
    } else {
        pk.pack_nil();
    }
}
// The array header of a message with `fields` fields, and its type.
void pack_head(Packer& pk, Type type, std::uint32_t fields);

// --- field groups shared by several messages ---

// A policy: 6 consecutive fields (StreamCreate, a stream description, Replicate).
StreamPolicy read_policy(Reader& r);
void pack_policy(Packer& pk, const StreamPolicy& p);
// A list of events (Publish, Forward).
std::vector<EventDraft> read_events(Reader& r, std::size_t batch_events_max);
void pack_event(Packer& pk, const EventDraft& e);
void pack_events(Packer& pk, const std::vector<EventDraft>& events);
// The fields of a publish before its events (Publish, Forward).
void pack_publish_head(Packer& pk, Type type, std::uint64_t request_id, std::string_view stream,
                       std::optional<Seq> expected_last_seq);
// The fields of a receipt (PublishAck, ForwardAck).
PublishAck read_publish_ack(Reader& r, std::size_t batch_events_max);
void pack_ack_fields(Packer& pk, const PublishAck& m);

// The TopologyReply's fields after its type (core/protocol_topology.cc).
TopologyReply read_topology_reply(Reader& r);
void pack_topology_reply(Packer& pk, const TopologyReply& m);

// --- the families (core/protocol_client.cc, core/protocol_peer.cc) ---

// Read the fields of a message of `type` after the type. REQUIRES: `type`
// is of the reader's family.
Message read_client_request(Type type, Reader& r, std::size_t batch_events_max);
Message read_daemon_reply(Type type, Reader& r, std::size_t batch_events_max);
Message read_peer_message(Type type, Reader& r, std::size_t batch_events_max);

// Pack a message of the writer's family, head included. REQUIRES: it is.
void pack_client_message(Packer& pk, const Message& message);
void pack_peer_message(Packer& pk, const Message& message);
// The fields of a Replicate before its envelopes (encode() and ReplicateFrameBuilder).
void pack_replicate_head(Packer& pk, Epoch epoch, std::string_view stream,
                         const StreamPolicy& policy, Seq prev_seq, const Digest& prev_hash,
                         Seq history, Seq visible);
// The same for a FetchReply.
void pack_fetch_reply_head(Packer& pk, Epoch epoch, std::string_view stream, std::uint32_t code,
                           std::string_view message, Seq prev_seq, const Digest& prev_hash);

}  // namespace spirit::core::protocol::detail
