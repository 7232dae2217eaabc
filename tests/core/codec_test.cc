// Every class of malformed envelope input gets an error value that names the
// problem (and the field, where there is one), never a crash or an exception.
// Method: build envelopes with msgpack-c's packer field by field, break one
// thing at a time, and check the exact errc and the detail text; then flip
// every byte of a valid envelope and feed random bytes.
#include <catch2/catch.hpp>

#include <msgpack.hpp>
#include <random>

#include "core/codec.h"
#include "core/hash_chain.h"
#include "core/limits.h"
#include "tests/support/bytes.h"

using namespace spirit;
using Catch::Matchers::Contains;

namespace {

struct Sink {
    core::Bytes& out;
    void write(const char* p, std::size_t n) {
        auto b = reinterpret_cast<const std::byte*>(p);
        out.insert(out.end(), b, b + n);
    }
};

// A value to put at one position of a hand-built envelope.
struct Field {
    enum Kind { uint, str, bin, nil, neg, array, map, u64_forced } kind;
    std::uint64_t number = 0;
    std::string text;
};

Field u(std::uint64_t v) {
    return {Field::uint, v, {}};
}
Field s(std::string v) {
    return {Field::str, 0, std::move(v)};
}
Field b(std::string v) {
    return {Field::bin, 0, std::move(v)};
}

std::vector<Field> good_fields() {
    return {
        s("orders"), u(7),  u(2),         u(1'700'000'000'000'000'000ULL), b(std::string(16, 'i')),
        s("placed"), b(""), b("payload"), b(std::string(32, 'h'))};
}

core::Bytes pack(const std::vector<Field>& fields) {
    core::Bytes out;
    Sink sink{out};
    msgpack::packer<Sink> pk(sink);
    pk.pack_array(static_cast<std::uint32_t>(fields.size()));
    for (const Field& f : fields) {
        switch (f.kind) {
            case Field::uint:
                pk.pack_uint64(f.number);
                break;
            case Field::u64_forced:
                pk.pack_fix_uint64(f.number);
                break;
            case Field::str:
                pk.pack_str(static_cast<std::uint32_t>(f.text.size()));
                pk.pack_str_body(f.text.data(), static_cast<std::uint32_t>(f.text.size()));
                break;
            case Field::bin:
                pk.pack_bin(static_cast<std::uint32_t>(f.text.size()));
                pk.pack_bin_body(f.text.data(), static_cast<std::uint32_t>(f.text.size()));
                break;
            case Field::nil:
                pk.pack_nil();
                break;
            case Field::neg:
                pk.pack_int64(-5);
                break;
            case Field::array:
                pk.pack_array(1);
                pk.pack_uint64(1);
                break;
            case Field::map:
                pk.pack_map(0);
                break;
        }
    }
    return out;
}

core::Error decode_error(const core::Bytes& bytes) {
    auto r = core::decode_envelope(bytes);
    REQUIRE_FALSE(r);
    return r.error();
}

core::Bytes sealed_sample() {
    const std::string payload = "a payload of some length";
    core::EnvelopeView f{"orders",
                         core::Seq{3},
                         core::Epoch{1},
                         core::TimestampNs{42},
                         test::event_id(9),
                         "placed",
                         {},
                         core::as_bytes(payload),
                         {}};
    core::Bytes out;
    core::seal_envelope(out, f, core::genesis_hash);
    return out;
}

}  // namespace

TEST_CASE("a well-formed hand-built envelope decodes", "[core][unit]") {
    const core::Bytes bytes = pack(good_fields());
    auto r = core::decode_envelope(bytes);
    REQUIRE(r);
    CHECK(r->stream == "orders");
    CHECK(r->seq == core::Seq{7});
    CHECK(r->epoch == core::Epoch{2});
    CHECK(core::as_chars(r->payload) == "payload");
}

TEST_CASE("every truncation of an envelope is a malformed error", "[core][unit]") {
    core::Bytes full = sealed_sample();
    for (std::size_t n = 0; n < full.size(); ++n) {
        INFO("length " << n);
        core::Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
        core::Error e = decode_error(cut);
        CHECK(e.is(core::errc::malformed));
        CHECK_THAT(e.detail, Contains("envelope"));
    }
}

TEST_CASE("a field of the wrong type is refused naming the field", "[core][unit]") {
    const char* names[] = {"stream", "seq",      "epoch",   "timestamp_ns", "id",
                           "type",   "metadata", "payload", "hash"};
    // For each position, a value of a type that position never holds.
    const Field wrong[] = {u(1),
                           s("x"),
                           b("x"),
                           s("x"),
                           s(std::string(16, 'i')),
                           b("x"),
                           s(""),
                           s("x"),
                           s(std::string(32, 'h'))};
    for (std::size_t i = 0; i < 9; ++i) {
        for (Field other : {wrong[i], Field{Field::nil}, Field{Field::neg}, Field{Field::array},
                            Field{Field::map}}) {
            auto fields = good_fields();
            fields[i] = other;
            INFO("field " << i << " kind " << other.kind);
            core::Error e = decode_error(pack(fields));
            CHECK(e.is(core::errc::malformed));
            CHECK_THAT(e.detail, Contains(std::string("(") + names[i] + ")"));
        }
    }
}

TEST_CASE("an envelope with the wrong shape is refused", "[core][unit]") {
    SECTION("eight fields") {
        auto fields = good_fields();
        fields.pop_back();
        CHECK_THAT(decode_error(pack(fields)).detail, Contains("array of 8 elements, expected 9"));
    }
    SECTION("ten fields") {
        auto fields = good_fields();
        fields.push_back(u(1));
        CHECK_THAT(decode_error(pack(fields)).detail, Contains("array of 10 elements"));
    }
    SECTION("not an array") {
        core::Bytes out;
        Sink sink{out};
        msgpack::packer<Sink> pk(sink);
        pk.pack_map(1);
        pk.pack_uint64(1);
        pk.pack_uint64(2);
        CHECK_THAT(decode_error(out).detail, Contains("expected an array of 9 fields, got map"));
        CHECK_THAT(decode_error(test::hex("05")).detail, Contains("got integer"));
    }
    SECTION("trailing bytes") {
        core::Bytes bytes = sealed_sample();
        bytes.push_back(std::byte{0});
        CHECK_THAT(decode_error(bytes).detail, Contains("1 trailing bytes"));
    }
    SECTION("empty input") {
        CHECK(decode_error({}).is(core::errc::malformed));
    }
}

TEST_CASE("sizes over the limits are refused before anything is copied", "[core][unit]") {
    SECTION("payload") {
        auto fields = good_fields();
        fields[7] = b(std::string(core::limits::payload_bytes_max + 1, 'p'));
        core::Error e = decode_error(pack(fields));
        CHECK(e.is(core::errc::limit_exceeded));
        CHECK_THAT(e.detail, Contains("(payload)"));
    }
    SECTION("metadata") {
        auto fields = good_fields();
        fields[6] = b(std::string(core::limits::metadata_bytes_max + 1, 'm'));
        CHECK_THAT(decode_error(pack(fields)).detail, Contains("(metadata)"));
    }
    SECTION("type") {
        auto fields = good_fields();
        fields[5] = s(std::string(core::limits::type_bytes_max + 1, 't'));
        CHECK_THAT(decode_error(pack(fields)).detail, Contains("(type)"));
    }
    SECTION("stream") {
        auto fields = good_fields();
        fields[0] = s(std::string(core::limits::stream_name_bytes_max + 1, 's'));
        CHECK_THAT(decode_error(pack(fields)).detail, Contains("(stream)"));
    }
    SECTION("a declared length of 4 GiB with a few bytes behind it") {
        // array(9), str "orders", then bin32 announcing 0xffffffff bytes.
        core::Bytes bytes = test::hex("99a66f7264657273c6ffffffff0102");
        core::Error e = decode_error(bytes);
        CHECK(e.is(core::errc::malformed));
        CHECK_THAT(e.detail, Contains("truncated"));
    }
    SECTION("the whole envelope") {
        core::Bytes bytes(core::limits::envelope_bytes_max + 1, std::byte{0x99});
        CHECK(decode_error(bytes).is(core::errc::limit_exceeded));
    }
}

TEST_CASE("fixed-size fields must have their exact size", "[core][unit]") {
    auto fields = good_fields();
    fields[4] = b(std::string(15, 'i'));
    CHECK_THAT(decode_error(pack(fields)).detail, Contains("(id): 15 bytes, expected 16"));
    fields = good_fields();
    fields[8] = b(std::string(33, 'h'));
    CHECK_THAT(decode_error(pack(fields)).detail, Contains("(hash): 33 bytes, expected 32"));
}

TEST_CASE("values the format forbids are refused naming the field", "[core][unit]") {
    auto fields = good_fields();
    fields[1] = u(0);
    CHECK_THAT(decode_error(pack(fields)).detail, Contains("(seq): seq 0"));
    fields = good_fields();
    fields[2] = u(0);
    CHECK_THAT(decode_error(pack(fields)).detail, Contains("(epoch): epoch 0"));
    fields = good_fields();
    fields[0] = s("no spaces allowed");
    CHECK_THAT(decode_error(pack(fields)).detail, Contains("(stream)"));
    fields = good_fields();
    fields[5] = s("\xc3\x28");
    CHECK_THAT(decode_error(pack(fields)).detail, Contains("(type): not valid UTF-8"));
}

TEST_CASE("a non-canonical encoding is refused, so equal events have equal bytes", "[core][unit]") {
    auto fields = good_fields();
    fields[1] = Field{Field::u64_forced, 7, {}};  // seq 7 as uint64 instead of fixint
    core::Error e = decode_error(pack(fields));
    CHECK(e.is(core::errc::malformed));
    CHECK_THAT(e.detail, Contains("not in canonical form"));
}

TEST_CASE("any flipped byte of a sealed envelope is detected", "[core][unit]") {
    const core::Bytes good = sealed_sample();
    REQUIRE(core::verify_envelope(good, core::genesis_hash));
    for (std::size_t i = 0; i < good.size(); ++i) {
        for (std::uint8_t mask : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
            core::Bytes bad = good;
            bad[i] ^= std::byte{mask};
            INFO("byte " << i << " mask " << int(mask));
            auto r = core::verify_envelope(bad, core::genesis_hash);
            REQUIRE_FALSE(r);
            CHECK((r.error().is(core::errc::hash_mismatch) || r.error().is(core::errc::malformed) ||
                   r.error().is(core::errc::limit_exceeded)));
        }
    }
}

TEST_CASE("a decoded envelope encodes back to its stored bytes, hash and all", "[core][unit]") {
    // What a quarantine read sends: envelopes storage kept decoded.
    const std::string big(300, 'p');
    for (const std::string& payload : {std::string(), std::string("short"), big}) {
        core::EnvelopeView f{"orders.eu",        core::Seq{70'000}, core::Epoch{3},
                             core::TimestampNs{7}, test::event_id(4), "placed",
                             core::as_bytes(payload), core::as_bytes(payload), {}};
        core::Bytes sealed;
        core::seal_envelope(sealed, f, core::genesis_hash);
        auto decoded = core::decode_envelope(sealed);
        REQUIRE(decoded);
        const core::Envelope owned = core::Envelope::from_view(*decoded);
        core::Bytes again = test::hex("ff");  // appends after what the buffer holds
        core::encode_envelope(again, owned.view());
        CHECK(core::to_hex(core::ByteView(again).subspan(1)) == core::to_hex(sealed));
        CHECK(core::verify_envelope(core::ByteView(again).subspan(1), core::genesis_hash));
    }
}

TEST_CASE("a hash mismatch names the stream, the seq and both hashes", "[core][unit]") {
    const core::Bytes good = sealed_sample();
    core::Digest wrong_prev;
    wrong_prev.bytes[0] = std::byte{1};
    auto r = core::verify_envelope(good, wrong_prev);
    REQUIRE_FALSE(r);
    CHECK(r.error().is(core::errc::hash_mismatch));
    auto decoded = core::decode_envelope(good);
    REQUIRE(decoded);
    CHECK_THAT(r.error().detail, Contains("stream orders seq 3"));
    CHECK_THAT(r.error().detail, Contains(core::digest_hex(decoded->hash)));
    CHECK_THAT(r.error().detail, Contains(core::digest_hex(core::chain_hash_of(good, wrong_prev))));
}

TEST_CASE("random bytes never crash the decoder", "[core][unit]") {
    std::mt19937_64 rng(20261122);
    const core::Bytes good = sealed_sample();
    int decoded = 0;
    for (int round = 0; round < 20'000; ++round) {
        core::Bytes bytes;
        if (round % 2 == 0) {
            bytes.resize(rng() % 96);
            for (auto& x : bytes) x = static_cast<std::byte>(rng());
        } else {  // mutate a valid envelope in a few places
            bytes = good;
            for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<std::byte>(rng());
        }
        auto r = core::decode_envelope(bytes);
        if (r) {
            ++decoded;
        } else {
            CHECK_FALSE(r.error().detail.empty());
        }
    }
    CHECK(decoded < 20'000);
}

TEST_CASE("frame headers announce a bounded length", "[core][unit]") {
    std::byte header[4];
    core::encode_frame_header(header, 300);
    auto n = core::decode_frame_header(header, core::limits::frame_bytes_max);
    REQUIRE(n);
    CHECK(*n == 300);
    const core::Bytes four_gib = test::hex("ffffffff");
    auto big = core::decode_frame_header(four_gib, core::limits::frame_bytes_max);
    REQUIRE_FALSE(big);
    CHECK(big.error().is(core::errc::limit_exceeded));
    CHECK_THAT(big.error().detail, Contains("4294967295"));
}

TEST_CASE("constant_time_equal is byte equality", "[core][unit]") {
    using core::as_bytes;
    CHECK(core::constant_time_equal(as_bytes("token-0123456789"), as_bytes("token-0123456789")));
    CHECK_FALSE(
        core::constant_time_equal(as_bytes("token-0123456789"), as_bytes("token-0123456788")));
    CHECK_FALSE(
        core::constant_time_equal(as_bytes("token-0123456789"), as_bytes("token-012345678")));
    CHECK_FALSE(core::constant_time_equal(as_bytes("x"), as_bytes("")));
    CHECK(core::constant_time_equal(as_bytes(""), as_bytes("")));
}
