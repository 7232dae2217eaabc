// Pins the envelope encoding and the hash chain to tests/golden/envelopes.txt,
// which an independent implementation (make_envelope_vectors.py: Python's
// msgpack and hashlib, written from docs/format.md) produced. Any change to
// the bytes or the hashes fails here.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "core/codec.h"
#include "core/hash_chain.h"
#include "tests/support/bytes.h"

using namespace spirit;

namespace {

struct Vector {
    std::string name;
    core::Digest prev;
    core::Bytes sealed;
    core::Digest hash;
};

core::Digest digest_of(const core::Bytes& b) {
    REQUIRE(b.size() == 32);
    core::Digest d;
    std::copy(b.begin(), b.end(), d.bytes.begin());
    return d;
}

std::vector<Vector> load_vectors() {
    std::ifstream in(SPIRIT_SOURCE_DIR "/tests/golden/envelopes.txt");
    REQUIRE(in.good());
    std::vector<Vector> out;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream fields(line);
        std::string name, prev, sealed, hash;
        fields >> name >> prev >> sealed >> hash;
        out.push_back(
            {name, digest_of(test::hex(prev)), test::hex(sealed), digest_of(test::hex(hash))});
    }
    REQUIRE(out.size() == 5);
    return out;
}

}  // namespace

TEST_CASE("golden envelopes decode, verify against their chain, and re-encode to the same bytes",
          "[core][unit]") {
    for (const Vector& v : load_vectors()) {
        INFO(v.name);
        auto view = core::verify_envelope(v.sealed, v.prev);
        REQUIRE(view);
        CHECK(view->hash == v.hash);
        CHECK(core::chain_hash_of(v.sealed, v.prev) == v.hash);

        core::Bytes again;
        core::Digest sealed_hash = core::seal_envelope(again, *view, v.prev);
        CHECK(sealed_hash == v.hash);
        CHECK(core::to_hex(again) == core::to_hex(v.sealed));
        CHECK(core::sealed_envelope_size(*view) == v.sealed.size());
    }
}

TEST_CASE("the golden chain links: each envelope's hash is the next one's previous hash",
          "[core][unit]") {
    auto vectors = load_vectors();
    core::Digest prev = core::genesis_hash;
    for (int i = 0; i < 4; ++i) {
        CHECK(vectors[static_cast<std::size_t>(i)].prev == prev);
        prev = vectors[static_cast<std::size_t>(i)].hash;
    }
}

TEST_CASE("sealing the first golden event from its fields gives the pinned bytes", "[core][unit]") {
    // Spelled out field by field so a reader sees what orders-1 holds.
    const std::string payload = R"({"sku":"A-1","qty":2})";
    core::EventId id;
    for (std::size_t i = 0; i < 16; ++i) id.bytes[i] = static_cast<std::byte>(i);
    core::EnvelopeView fields{.stream = "orders",
                              .seq = core::Seq{1},
                              .epoch = core::Epoch{1},
                              .timestamp_ns = core::TimestampNs{1700000000000000000ULL},
                              .id = id,
                              .type = "order-placed",
                              .metadata = {},
                              .payload = core::as_bytes(payload),
                              .hash = {}};
    core::Bytes out;
    core::Digest hash = core::seal_envelope(out, fields, core::genesis_hash);
    const auto vectors = load_vectors();
    const Vector& want = vectors[0];
    CHECK(core::to_hex(out) == core::to_hex(want.sealed));
    CHECK(hash == want.hash);
}
