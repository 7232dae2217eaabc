// The positional Reader, the Packer helpers, and the field groups several
// messages share (policy, events, receipts).
#include "core/protocol_codec.h"

#include "core/limits.h"

namespace spirit::core::protocol::detail {

using msgpack::type::object_type;

namespace {

const char* kind_name(object_type t) {
    switch (t) {
        case object_type::NIL:
            return "nil";
        case object_type::BOOLEAN:
            return "boolean";
        case object_type::POSITIVE_INTEGER:
            return "unsigned integer";
        case object_type::NEGATIVE_INTEGER:
            return "negative integer";
        case object_type::FLOAT32:
        case object_type::FLOAT64:
            return "float";
        case object_type::STR:
            return "string";
        case object_type::BIN:
            return "bin";
        case object_type::ARRAY:
            return "array";
        case object_type::MAP:
            return "map";
        case object_type::EXT:
            return "ext";
    }
    return "unknown";
}

}  // namespace

Reader::Reader(const msgpack::object& array, const char* message, std::uint32_t start)
    : array_(array), message_(message), index_(start) {}

Reader::Reader(const msgpack::object& item, const Reader& parent, const List& list,
               std::size_t index)
    : array_(item), parent_(&parent), list_(&list), item_(index), index_(0) {}

std::uint64_t Reader::u64(const char* field) {
    const msgpack::object* o = next(field);
    if (o == nullptr) return 0;
    if (o->type != object_type::POSITIVE_INTEGER) {
        wrong(field, "an unsigned integer", *o);
        return 0;
    }
    return o->via.u64;
}

std::optional<std::uint64_t> Reader::opt_u64(const char* field) {
    if (take_nil()) return std::nullopt;
    return u64(field);
}

std::string_view Reader::text(const char* field, std::size_t max) {
    const msgpack::object* o = next(field);
    if (o == nullptr) return {};
    if (o->type != object_type::STR) {
        wrong(field, "a string", *o);
        return {};
    }
    if (o->via.str.size > max) {
        refuse(field, fmt::format("{} bytes, limit {}", o->via.str.size, max));
        return {};
    }
    return {o->via.str.ptr, o->via.str.size};
}

std::string Reader::owned_text(const char* field, std::size_t max) {
    return std::string(text(field, max));
}

std::optional<std::string> Reader::opt_text(const char* field, std::size_t max) {
    if (take_nil()) return std::nullopt;
    return owned_text(field, max);
}

ByteView Reader::bin(const char* field, std::size_t max) {
    const msgpack::object* o = next(field);
    if (o == nullptr) return {};
    if (o->type != object_type::BIN) {
        wrong(field, "bin", *o);
        return {};
    }
    if (o->via.bin.size > max) {
        refuse(field, fmt::format("{} bytes, limit {}", o->via.bin.size, max));
        return {};
    }
    return {reinterpret_cast<const std::byte*>(o->via.bin.ptr), o->via.bin.size};
}

List Reader::list(const char* field, std::size_t max) {
    const msgpack::object* o = next(field);
    if (o == nullptr) return {};
    if (o->type != object_type::ARRAY) {
        wrong(field, "an array", *o);
        return {};
    }
    if (o->via.array.size > max) {
        refuse(field, fmt::format("{} items, limit {}", o->via.array.size, max));
        return {};
    }
    return List{{o->via.array.ptr, o->via.array.size}, index_ - 1, field};
}

std::vector<ByteView> Reader::envelopes(const char* field, std::size_t max) {
    const List l = list(field, max);
    std::vector<ByteView> out;
    out.reserve(l.items.size());
    for (std::size_t i = 0; i < l.items.size(); ++i) {
        const msgpack::object& item = l.items[i];
        if (item.type != object_type::BIN) {
            fail_item(l, i, "bin", item);
            return {};
        }
        out.emplace_back(reinterpret_cast<const std::byte*>(item.via.bin.ptr), item.via.bin.size);
    }
    return out;
}

std::vector<std::uint64_t> Reader::u64s(const char* field, std::size_t max) {
    const List l = list(field, max);
    std::vector<std::uint64_t> out;
    out.reserve(l.items.size());
    for (std::size_t i = 0; i < l.items.size(); ++i) {
        const msgpack::object& item = l.items[i];
        if (item.type != object_type::POSITIVE_INTEGER) {
            fail_item(l, i, "an unsigned integer", item);
            return {};
        }
        out.push_back(item.via.u64);
    }
    return out;
}

void Reader::fail(const char* field, const std::string& problem, errc code) {
    if (error_) return;
    error_ = Error{make_error_code(code),
                   fmt::format("{} field {} ({}): {}", what(), index_ - 1, field, problem)};
}

void Reader::refuse(const char* field, const std::string& problem) {
    fail(field, problem, errc::invalid_argument);
}

const msgpack::object* Reader::next(const char* field) {
    if (error_) return nullptr;
    if (index_ >= array_.via.array.size) {
        error_ = Error{make_error_code(errc::malformed),
                       fmt::format("{}: field {} ({}) is missing", what(), index_, field)};
        return nullptr;
    }
    return &array_.via.array.ptr[index_++];
}

bool Reader::take_nil() {
    if (error_ || index_ >= array_.via.array.size) return false;
    if (array_.via.array.ptr[index_].type != object_type::NIL) return false;
    ++index_;
    return true;
}

void Reader::wrong(const char* field, const char* expected, const msgpack::object& got) {
    fail(field, fmt::format("expected {}, got {}", expected, kind_name(got.type)));
}

void Reader::fail_item(const List& list, std::size_t index, const char* expected,
                       const msgpack::object& got) {
    if (error_) return;
    error_ = Error{make_error_code(errc::malformed),
                   fmt::format("{} field {} ({}) [{}]: expected {}, got {}", what(), list.position,
                               list.field, index, expected, kind_name(got.type))};
}

std::string Reader::what() const {
    if (parent_ == nullptr) return message_;
    return fmt::format("{} field {} ({}) [{}]", parent_->what(), list_->position, list_->field,
                       item_);
}

void pack_text(Packer& pk, std::string_view s) {
    pk.pack_str(static_cast<std::uint32_t>(s.size()));
    pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void pack_bin(Packer& pk, ByteView b) {
    pk.pack_bin(static_cast<std::uint32_t>(b.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<std::uint32_t>(b.size()));
}

void pack_head(Packer& pk, Type type, std::uint32_t fields) {
    pk.pack_array(fields + 1);
    pk.pack_uint8(static_cast<std::uint8_t>(type));
}

StreamPolicy read_policy(Reader& r) {
    StreamPolicy p;
    p.redundancy = r.enumerated<Redundancy>("redundancy", Redundancy::immediate);
    p.acks.kind = r.enumerated<Acks::Kind>("acks_kind", Acks::Kind::count);
    p.acks.count = r.bounded<std::uint8_t>("acks_count");
    p.retention.events_max = r.u64("retention_events_max");
    p.retention.bytes_max = r.u64("retention_bytes_max");
    p.retention.age_ms_max = r.u64("retention_age_ms_max");
    return p;
}

void pack_policy(Packer& pk, const StreamPolicy& p) {
    pk.pack_uint8(static_cast<std::uint8_t>(p.redundancy));
    pk.pack_uint8(static_cast<std::uint8_t>(p.acks.kind));
    pk.pack_uint8(p.acks.count);
    pk.pack_uint64(p.retention.events_max);
    pk.pack_uint64(p.retention.bytes_max);
    pk.pack_uint64(p.retention.age_ms_max);
}

std::vector<EventDraft> read_events(Reader& r, std::size_t batch_events_max) {
    std::vector<EventDraft> events;
    const List list = r.list("events", batch_events_max);
    events.reserve(list.items.size());
    r.items(list, [&](Reader& e) {
        EventDraft d;
        d.id = e.opt_fixed<EventId>("id");
        d.type = e.text("type", limits::type_bytes_max);
        d.metadata = e.bin("metadata", limits::metadata_bytes_max);
        d.payload = e.bin("payload", limits::payload_bytes_max);
        events.push_back(d);
    });
    return events;
}

void pack_event(Packer& pk, const EventDraft& e) {
    pk.pack_array(4);
    pack_optional(pk, e.id, [&](const EventId& id) { pack_bin(pk, ByteView(id.bytes)); });
    pack_text(pk, e.type);
    pack_bin(pk, e.metadata);
    pack_bin(pk, e.payload);
}

void pack_events(Packer& pk, const std::vector<EventDraft>& events) {
    pk.pack_array(static_cast<std::uint32_t>(events.size()));
    for (const EventDraft& e : events) pack_event(pk, e);
}

void pack_publish_head(Packer& pk, Type type, std::uint64_t request_id, std::string_view stream,
                       std::optional<Seq> expected_last_seq) {
    pack_head(pk, type, 4);
    pk.pack_uint64(request_id);
    pack_text(pk, stream);
    pack_optional(pk, expected_last_seq, [&](Seq s) { pk.pack_uint64(s.value()); });
}

PublishAck read_publish_ack(Reader& r, std::size_t batch_events_max) {
    PublishAck m;
    m.request_id = r.u64("request_id");
    m.kind = r.enumerated<AckKind>("kind", AckKind::accepted);
    m.first_seq = Seq{r.u64("first_seq")};
    m.last_seq = Seq{r.u64("last_seq")};
    m.epoch = Epoch{r.u64("epoch")};
    m.timestamp_ns = TimestampNs{r.u64("timestamp_ns")};
    m.last_hash = r.fixed<Digest>("last_hash");
    const List dups = r.list("duplicates", batch_events_max);
    r.items(dups, [&](Reader& d) {
        m.duplicates.push_back(Duplicate{d.bounded<std::uint32_t>("index"), Seq{d.u64("seq")}});
    });
    const List holders = r.list("holders", 256);
    r.items(holders, [&](Reader& h) { m.holders.push_back(h.owned_text("node_id")); });
    return m;
}

void pack_ack_fields(Packer& pk, const PublishAck& m) {
    pk.pack_uint64(m.request_id);
    pk.pack_uint8(static_cast<std::uint8_t>(m.kind));
    pk.pack_uint64(m.first_seq.value());
    pk.pack_uint64(m.last_seq.value());
    pk.pack_uint64(m.epoch.value());
    pk.pack_uint64(m.timestamp_ns.value());
    pack_bin(pk, ByteView(m.last_hash.bytes));
    pk.pack_array(static_cast<std::uint32_t>(m.duplicates.size()));
    for (const Duplicate& d : m.duplicates) {
        pk.pack_array(2);
        pk.pack_uint32(d.index);
        pk.pack_uint64(d.seq.value());
    }
    pk.pack_array(static_cast<std::uint32_t>(m.holders.size()));
    for (const std::string& h : m.holders) {
        pk.pack_array(1);
        pack_text(pk, h);
    }
}

}  // namespace spirit::core::protocol::detail
