// Envelope and frame codecs. msgpack-c does the byte-level work: its packer
// writes the shortest forms, and its visitor parser reads without building an
// object tree, so decoding allocates nothing per field and we see every
// declared size before anything is copied.
#include "core/codec.h"

#include <array>
#include <cstring>

#include <fmt/format.h>
#include <msgpack.hpp>

#include "core/assert.h"
#include "core/hash_chain.h"
#include "core/limits.h"
#include "core/stream_name.h"

namespace spirit::core {

const char* envelope_field_name(EnvelopeField field) noexcept {
    switch (field) {
        case EnvelopeField::stream:
            return "stream";
        case EnvelopeField::seq:
            return "seq";
        case EnvelopeField::epoch:
            return "epoch";
        case EnvelopeField::timestamp_ns:
            return "timestamp_ns";
        case EnvelopeField::id:
            return "id";
        case EnvelopeField::type:
            return "type";
        case EnvelopeField::metadata:
            return "metadata";
        case EnvelopeField::payload:
            return "payload";
        case EnvelopeField::hash:
            return "hash";
    }
    return "unknown";
}

namespace {

// The hash covers an array(8) header where the stored envelope has array(9).
constexpr std::byte array8_header{0x98};
constexpr std::byte array9_header{0x99};
// bin8 header of the 32-byte hash that ends every envelope.
constexpr std::size_t hash_tail_bytes = 2 + Digest::size_bytes;

// msgpack-c packer sink appending to a Bytes.
struct BytesSink {
    Bytes& out;
    void write(const char* data, std::size_t size) {
        const auto* p = reinterpret_cast<const std::byte*>(data);
        out.insert(out.end(), p, p + size);
    }
};

std::size_t uint_size(std::uint64_t v) noexcept {
    if (v < 128) return 1;
    if (v <= 0xff) return 2;
    if (v <= 0xffff) return 3;
    if (v <= 0xffffffff) return 5;
    return 9;
}

std::size_t str_size(std::size_t n) noexcept {
    if (n < 32) return 1 + n;
    if (n <= 0xff) return 2 + n;
    if (n <= 0xffff) return 3 + n;
    return 5 + n;
}

std::size_t bin_size(std::size_t n) noexcept {
    if (n <= 0xff) return 2 + n;
    if (n <= 0xffff) return 3 + n;
    return 5 + n;
}

template <class Writer>
void pack_str(msgpack::packer<Writer>& pk, std::string_view s) {
    pk.pack_str(static_cast<std::uint32_t>(s.size()));
    pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

template <class Writer>
void pack_bin(msgpack::packer<Writer>& pk, ByteView b) {
    pk.pack_bin(static_cast<std::uint32_t>(b.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<std::uint32_t>(b.size()));
}

const char* kind_name(int kind) {
    static constexpr std::array<const char*, 9> names = {
        "nil", "boolean", "integer", "negative integer", "float", "str", "bin", "ext", "array"};
    if (kind < 0 || static_cast<std::size_t>(kind) >= names.size()) return "map";
    return names[static_cast<std::size_t>(kind)];
}

// Visitor that maps array positions to envelope fields and refuses anything
// else. The first problem is kept in `error` and stops the parse.
class EnvelopeVisitor : public msgpack::null_visitor {
 public:
    enum Kind { k_nil, k_bool, k_uint, k_neg, k_float, k_str, k_bin, k_ext, k_array, k_map };

    EnvelopeView view;
    std::optional<Error> error;

    bool start_array(std::uint32_t count) {
        if (depth_ == 1) return wrong_kind(k_array);
        if (count != envelope_field_count) {
            return fail(errc::malformed, fmt::format("envelope: array of {} elements, expected {}",
                                                     count, envelope_field_count));
        }
        depth_ = 1;
        return true;
    }
    bool end_array_item() {
        ++index_;
        return true;
    }
    bool end_array() { return true; }
    bool start_map(std::uint32_t) { return wrong_kind(k_map); }
    bool visit_nil() { return wrong_kind(k_nil); }
    bool visit_boolean(bool) { return wrong_kind(k_bool); }
    bool visit_negative_integer(std::int64_t) { return wrong_kind(k_neg); }
    bool visit_float32(float) { return wrong_kind(k_float); }
    bool visit_float64(double) { return wrong_kind(k_float); }
    bool visit_ext(const char*, std::uint32_t) { return wrong_kind(k_ext); }

    bool visit_positive_integer(std::uint64_t v) {
        if (depth_ != 1) return wrong_kind(k_uint);
        switch (field()) {
            case EnvelopeField::seq:
                view.seq = Seq{v};
                return true;
            case EnvelopeField::epoch:
                view.epoch = Epoch{v};
                return true;
            case EnvelopeField::timestamp_ns:
                view.timestamp_ns = TimestampNs{v};
                return true;
            default:
                return wrong_kind(k_uint);
        }
    }

    bool visit_str(const char* data, std::uint32_t size) {
        if (depth_ != 1) return wrong_kind(k_str);
        std::string_view s(data, size);
        switch (field()) {
            case EnvelopeField::stream:
                if (size > limits::stream_name_bytes_max) {
                    return over_limit(size, limits::stream_name_bytes_max);
                }
                view.stream = s;
                return true;
            case EnvelopeField::type:
                if (size > limits::type_bytes_max) return over_limit(size, limits::type_bytes_max);
                view.type = s;
                return true;
            default:
                return wrong_kind(k_str);
        }
    }

    bool visit_bin(const char* data, std::uint32_t size) {
        if (depth_ != 1) return wrong_kind(k_bin);
        ByteView b(reinterpret_cast<const std::byte*>(data), size);
        switch (field()) {
            case EnvelopeField::id:
                if (size != EventId::size_bytes) return wrong_length(size, EventId::size_bytes);
                std::memcpy(view.id.bytes.data(), data, size);
                return true;
            case EnvelopeField::metadata:
                if (size > limits::metadata_bytes_max) {
                    return over_limit(size, limits::metadata_bytes_max);
                }
                view.metadata = b;
                return true;
            case EnvelopeField::payload:
                if (size > limits::payload_bytes_max) {
                    return over_limit(size, limits::payload_bytes_max);
                }
                view.payload = b;
                return true;
            case EnvelopeField::hash:
                if (size != Digest::size_bytes) return wrong_length(size, Digest::size_bytes);
                std::memcpy(view.hash.bytes.data(), data, size);
                return true;
            default:
                return wrong_kind(k_bin);
        }
    }

    void parse_error(std::size_t, std::size_t offset) {
        if (!error)
            fail(errc::malformed, fmt::format("envelope: invalid msgpack at byte {}", offset));
    }
    void insufficient_bytes(std::size_t, std::size_t offset) {
        if (!error) {
            fail(errc::malformed, fmt::format("envelope: truncated at byte {} (in field {})",
                                              offset, field_label()));
        }
    }

 private:
    EnvelopeField field() const { return static_cast<EnvelopeField>(index_); }

    std::string field_label() const {
        if (depth_ == 0) return "header";
        return fmt::format("{} ({})", index_, envelope_field_name(field()));
    }

    bool fail(errc code, std::string detail) {
        if (!error) error = Error{make_error_code(code), std::move(detail)};
        return false;
    }
    bool wrong_kind(Kind got) {
        if (depth_ == 0) {
            return fail(errc::malformed,
                        fmt::format("envelope: expected an array of {} fields, got {}",
                                    envelope_field_count, kind_name(got)));
        }
        return fail(errc::malformed,
                    fmt::format("envelope field {}: wrong type {}", field_label(), kind_name(got)));
    }
    bool over_limit(std::size_t size, std::size_t max) {
        return fail(errc::limit_exceeded,
                    fmt::format("envelope field {}: {} bytes, limit {}", field_label(), size, max));
    }
    bool wrong_length(std::size_t size, std::size_t want) {
        return fail(errc::malformed, fmt::format("envelope field {}: {} bytes, expected {}",
                                                 field_label(), size, want));
    }

    unsigned depth_ = 0;
    unsigned index_ = 0;
};

}  // namespace

std::size_t sealed_envelope_size(const EnvelopeView& f) noexcept {
    return 1 + str_size(f.stream.size()) + uint_size(f.seq.value()) + uint_size(f.epoch.value()) +
           uint_size(f.timestamp_ns.value()) + bin_size(EventId::size_bytes) +
           str_size(f.type.size()) + bin_size(f.metadata.size()) + bin_size(f.payload.size()) +
           hash_tail_bytes;
}

namespace {

// Appends every field of `f` but the hash, in an array(9) header.
void pack_unsealed(Bytes& out, const EnvelopeView& f) {
    SPIRIT_ASSERT(f.stream.size() <= limits::stream_name_bytes_max);
    SPIRIT_ASSERT(f.type.size() <= limits::type_bytes_max);
    SPIRIT_ASSERT(f.metadata.size() <= limits::metadata_bytes_max);
    SPIRIT_ASSERT(f.payload.size() <= limits::payload_bytes_max);
    out.reserve(out.size() + sealed_envelope_size(f));
    BytesSink sink{out};
    msgpack::packer<BytesSink> pk(sink);
    pk.pack_array(envelope_field_count);
    pack_str(pk, f.stream);
    pk.pack_uint64(f.seq.value());
    pk.pack_uint64(f.epoch.value());
    pk.pack_uint64(f.timestamp_ns.value());
    pack_bin(pk, ByteView(f.id.bytes));
    pack_str(pk, f.type);
    pack_bin(pk, f.metadata);
    pack_bin(pk, f.payload);
}

}  // namespace

void encode_envelope(Bytes& out, const EnvelopeView& f) {
    const std::size_t start = out.size();
    pack_unsealed(out, f);
    BytesSink sink{out};
    msgpack::packer<BytesSink> pk(sink);
    pack_bin(pk, ByteView(f.hash.bytes));
    SPIRIT_ASSERT(out.size() - start == sealed_envelope_size(f));
}

Digest seal_envelope(Bytes& out, const EnvelopeView& f, const Digest& prev_hash) {
    const std::size_t start = out.size();
    pack_unsealed(out, f);
    BytesSink sink{out};
    msgpack::packer<BytesSink> pk(sink);

    Blake2b256 h;
    h.update(ByteView(prev_hash.bytes));
    h.update(ByteView(&array8_header, 1));
    h.update(ByteView(out.data() + start + 1, out.size() - start - 1));
    Digest digest = h.finish();
    pack_bin(pk, ByteView(digest.bytes));
    SPIRIT_ASSERT(out[start] == array9_header);
    SPIRIT_ASSERT(out.size() - start == sealed_envelope_size(f));
    return digest;
}

Result<EnvelopeView> decode_envelope(ByteView encoded) {
    if (encoded.size() > limits::envelope_bytes_max) {
        return make_error(errc::limit_exceeded,
                          fmt::format("envelope of {} bytes, limit {}", encoded.size(),
                                      limits::envelope_bytes_max));
    }
    EnvelopeVisitor visitor;
    std::size_t offset = 0;
    bool ok = msgpack::parse(reinterpret_cast<const char*>(encoded.data()), encoded.size(), offset,
                             visitor);
    if (visitor.error) return Unexpected{std::move(*visitor.error)};
    if (!ok) return make_error(errc::malformed, "envelope: invalid msgpack");
    if (offset != encoded.size()) {
        return make_error(
            errc::malformed,
            fmt::format("envelope: {} trailing bytes after the array", encoded.size() - offset));
    }
    EnvelopeView& v = visitor.view;
    if (auto name = validate_stream_name(v.stream, NameScope::system); !name) {
        return make_error(errc::malformed, "envelope field 0 (stream): " + name.error().detail);
    }
    if (v.seq.value() == 0) return make_error(errc::malformed, "envelope field 1 (seq): seq 0");
    if (v.epoch.value() == 0) {
        return make_error(errc::malformed, "envelope field 2 (epoch): epoch 0");
    }
    if (!is_valid_utf8(v.type)) {
        return make_error(errc::malformed, "envelope field 5 (type): not valid UTF-8");
    }
    if (sealed_envelope_size(v) != encoded.size()) {
        return make_error(
            errc::malformed,
            fmt::format("envelope of stream {} seq {}: not in canonical form "
                        "({} bytes, canonical {})",
                        v.stream, v.seq.value(), encoded.size(), sealed_envelope_size(v)));
    }
    return v;
}

Digest chain_hash_of(ByteView encoded, const Digest& prev_hash) {
    SPIRIT_ASSERT(encoded.size() > 1 + hash_tail_bytes);
    Blake2b256 h;
    h.update(ByteView(prev_hash.bytes));
    h.update(ByteView(&array8_header, 1));
    h.update(encoded.subspan(1, encoded.size() - 1 - hash_tail_bytes));
    return h.finish();
}

Result<EnvelopeView> verify_envelope(ByteView encoded, const Digest& prev_hash) {
    auto view = decode_envelope(encoded);
    if (!view) return view;
    Digest want = chain_hash_of(encoded, prev_hash);
    if (want != view->hash) {
        return make_error(errc::hash_mismatch,
                          fmt::format("stream {} seq {}: hash mismatch, stored {}, computed {} "
                                      "(previous hash {})",
                                      view->stream, view->seq.value(), digest_hex(view->hash),
                                      digest_hex(want), digest_hex(prev_hash)));
    }
    return view;
}

void encode_frame_header(std::byte* out, std::size_t body_bytes) {
    SPIRIT_ASSERT(body_bytes <= limits::frame_bytes_max);
    store_be32(out, static_cast<std::uint32_t>(body_bytes));
}

Result<std::size_t> decode_frame_header(ByteView header4, std::size_t frame_bytes_max) {
    SPIRIT_ASSERT(header4.size() >= frame_header_bytes);
    std::size_t length = load_be32(header4.data());
    if (length > frame_bytes_max) {
        return make_error(errc::limit_exceeded, fmt::format("frame of {} bytes announced, limit {}",
                                                            length, frame_bytes_max));
    }
    return length;
}

}  // namespace spirit::core
