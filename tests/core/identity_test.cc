// Identity keys and sealed $topology events. Keys: generate, save (mode
// 0600, never over a file), load back the same public key, refuse a file
// others can read or that is not a key file, parse public keys. Events:
// every kind seals and decodes to the same value; a changed field, a
// wrong previous hash, another node's key and a flipped byte anywhere are
// each refused with the reason, never accepted.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>

#include "core/identity.h"
#include "core/topology_codec.h"
#include "tests/support/temp_dir.h"

using namespace spirit;
using core::Epoch;
using core::NodeId;

TEST_CASE("an identity saved to a key file loads back with the same public key", "[core][unit]") {
    test::TempDir dir("spirit-key");
    const auto file = dir.path() / "node.key";
    const core::Identity id = core::Identity::generate();
    REQUIRE(id.save(file));
    struct stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto loaded = core::Identity::load(file);
    REQUIRE(loaded);
    CHECK(loaded->public_key() == id.public_key());
    // Both sign alike (Ed25519 is deterministic).
    const core::Bytes msg = core::Bytes(3, std::byte{7});
    CHECK(loaded->sign(msg) == id.sign(msg));
    CHECK(core::verify_signature(id.public_key(), msg, loaded->sign(msg)));
    // Never over an existing file.
    auto again = core::Identity::generate().save(file);
    REQUIRE_FALSE(again);
    CHECK(again.error().is(core::errc::already_exists));
    CHECK(core::Identity::load(file)->public_key() == id.public_key());
}

TEST_CASE("a key file others can read, or that is not a key file, is refused by name",
          "[core][unit]") {
    test::TempDir dir("spirit-key");
    const auto file = dir.path() / "node.key";
    REQUIRE(core::Identity::generate().save(file));
    REQUIRE(::chmod(file.c_str(), 0640) == 0);
    auto open = core::Identity::load(file);
    REQUIRE_FALSE(open);
    CHECK(open.error().is(core::errc::config_invalid));
    CHECK_THAT(open.error().detail,
               Catch::Matchers::Contains(file.string()) && Catch::Matchers::Contains("chmod 600"));
    const auto junk = dir.path() / "junk.key";
    { std::ofstream(junk) << "hello\n"; }
    REQUIRE(::chmod(junk.c_str(), 0600) == 0);
    auto bad = core::Identity::load(junk);
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().detail, Catch::Matchers::Contains("not a spirit key file"));
    auto missing = core::Identity::load(dir.path() / "none.key");
    REQUIRE_FALSE(missing);
    CHECK_THAT(missing.error().detail, Catch::Matchers::Contains("none.key"));
}

TEST_CASE("public keys are 44 characters of base64", "[core][unit]") {
    const core::Identity id = core::Identity::generate();
    const std::string text = core::public_key_text(id.public_key());
    CHECK(text.size() == 44);
    auto parsed = core::parse_public_key(text);
    REQUIRE(parsed);
    CHECK(*parsed == id.public_key());
    CHECK_FALSE(core::parse_public_key(text.substr(0, 40)));
    CHECK_FALSE(core::parse_public_key(text + "AAAA"));
    CHECK_FALSE(core::parse_public_key("not base64 at all, really, no it is not!!!!"));
}

namespace {

std::vector<core::TopologyEvent> every_kind(const core::TopologyAuthor& author) {
    using namespace core::topo;
    const std::vector<core::TopologyBody> bodies = {
        NodeStarted{3, true},
        Voted{"default", Epoch{7}, NodeId{"b"}},
        MasterElected{"default", Epoch{7}, {NodeId{"a"}, NodeId{"b"}}},
        SteppedDown{"default", Epoch{7}, "heard from 1 of 3 voters"},
        StreamCompleted{"orders", Epoch{7}, core::Seq{42}},
        SuffixQuarantined{"orders", Epoch{9}, core::Seq{40}, 2},
        StreamCreated{"orders",
                      Epoch{9},
                      {core::Redundancy::immediate, {core::Acks::Kind::count, 2}, {10, 20, 30}}},
        StreamDeleted{"orders", Epoch{10}},
        StreamPolicyChanged{"audit", Epoch{11}, {core::Redundancy::eventual, {}, {0, 1 << 20, 0}}},
    };
    std::vector<core::TopologyEvent> out;
    std::uint64_t seq = 0;
    for (const auto& b : bodies) {
        out.push_back(core::TopologyEvent{{author, ++seq}, core::TimestampNs{1000 + seq}, b});
    }
    return out;
}

}  // namespace

TEST_CASE("every kind of topology event seals, decodes and verifies on its chain", "[core][unit]") {
    const core::Identity id = core::Identity::generate();
    const core::TopologyAuthor author{NodeId{"b"}, 0x0123456789abcdefULL};
    core::Digest prev{};
    for (const core::TopologyEvent& e : every_kind(author)) {
        core::Digest hash;
        const core::Bytes sealed = core::seal_topology_event(e, prev, id, &hash);
        auto decoded = core::decode_topology_event(sealed);
        REQUIRE(decoded);
        CHECK(decoded->event == e);
        CHECK(decoded->prev_hash == prev);
        CHECK(decoded->hash == hash);
        CHECK(core::verify_topology_event(*decoded, id.public_key(), prev));
        prev = hash;
    }
}

TEST_CASE("a topology event that was changed, rechained or signed by another is refused",
          "[core][unit]") {
    const core::Identity id = core::Identity::generate();
    const core::Identity other = core::Identity::generate();
    const core::TopologyAuthor author{NodeId{"b"}, 5};
    const core::TopologyEvent e = every_kind(author)[1];
    const core::Digest prev{};
    const core::Bytes sealed = core::seal_topology_event(e, prev, id);
    auto decoded = core::decode_topology_event(sealed);
    REQUIRE(decoded);

    SECTION("a changed field") {
        auto changed = *decoded;
        std::get<core::topo::Voted>(changed.event.body).candidate = NodeId{"c"};
        auto r = core::verify_topology_event(changed, id.public_key(), prev);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::hash_mismatch));
        CHECK_THAT(r.error().detail, Catch::Matchers::Contains("b~0000000000000005/2"));
    }
    SECTION("a chain that does not continue what is held") {
        core::Digest held{};
        held.bytes[0] = std::byte{1};
        auto r = core::verify_topology_event(*decoded, id.public_key(), held);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::hash_mismatch));
        CHECK_THAT(r.error().detail, Catch::Matchers::Contains("chains on"));
    }
    SECTION("another node's key") {
        auto r = core::verify_topology_event(*decoded, other.public_key(), prev);
        REQUIRE_FALSE(r);
        CHECK(r.error().is(core::errc::bad_signature));
    }
    SECTION("any flipped byte is refused, by the decoder or the checks") {
        for (std::size_t i = 0; i < sealed.size(); ++i) {
            core::Bytes flipped = sealed;
            flipped[i] ^= std::byte{0x01};
            auto d = core::decode_topology_event(flipped);
            if (!d) continue;
            INFO("byte " << i);
            CHECK_FALSE(core::verify_topology_event(*d, id.public_key(), prev));
        }
    }
    SECTION("truncated bytes never decode") {
        for (std::size_t n = 0; n < sealed.size(); ++n) {
            CHECK_FALSE(core::decode_topology_event(core::ByteView(sealed.data(), n)));
        }
    }
}
