// Sealing and checking `$topology` events (core/topology_codec.h).
#include "core/topology_codec.h"

#include <fmt/format.h>

#include "core/assert.h"
#include "core/hash_chain.h"
#include "core/limits.h"
#include "core/protocol_codec.h"

namespace spirit::core {

namespace {

using protocol::detail::pack_bin;
using protocol::detail::pack_policy;
using protocol::detail::read_policy;
using protocol::detail::pack_text;
using protocol::detail::Packer;
using protocol::detail::Reader;
using protocol::detail::Sink;

constexpr std::uint64_t format_version = 1;
constexpr std::size_t node_id_bytes_max = 64;
constexpr std::size_t reason_bytes_max = 1024;
constexpr std::size_t voters_max = 64;

struct BodyWriter {
    Packer& pk;
    void operator()(const topo::NodeStarted& b) {
        pk.pack_array(2);
        pk.pack_uint64(b.incarnation);
        pk.pack_uint8(b.witness ? 1 : 0);
    }
    void operator()(const topo::Voted& b) {
        pk.pack_array(3);
        pack_text(pk, b.group);
        pk.pack_uint64(b.epoch.value());
        pack_text(pk, b.candidate.value());
    }
    void operator()(const topo::MasterElected& b) {
        pk.pack_array(3);
        pack_text(pk, b.group);
        pk.pack_uint64(b.epoch.value());
        pk.pack_array(static_cast<std::uint32_t>(b.voters.size()));
        for (const NodeId& v : b.voters) pack_text(pk, v.value());
    }
    void operator()(const topo::SteppedDown& b) {
        pk.pack_array(3);
        pack_text(pk, b.group);
        pk.pack_uint64(b.epoch.value());
        pack_text(pk, b.reason);
    }
    void operator()(const topo::StreamCompleted& b) {
        pk.pack_array(3);
        pack_text(pk, b.stream);
        pk.pack_uint64(b.epoch.value());
        pk.pack_uint64(b.seq.value());
    }
    void operator()(const topo::SuffixQuarantined& b) {
        pk.pack_array(4);
        pack_text(pk, b.stream);
        pk.pack_uint64(b.epoch.value());
        pk.pack_uint64(b.after_seq.value());
        pk.pack_uint64(b.count);
    }
    void operator()(const topo::StreamCreated& b) {
        pk.pack_array(8);
        pack_text(pk, b.stream);
        pk.pack_uint64(b.epoch.value());
        pack_policy(pk, b.policy);
    }
    void operator()(const topo::StreamDeleted& b) {
        pk.pack_array(2);
        pack_text(pk, b.stream);
        pk.pack_uint64(b.epoch.value());
    }
    void operator()(const topo::StreamPolicyChanged& b) {
        pk.pack_array(8);
        pack_text(pk, b.stream);
        pk.pack_uint64(b.epoch.value());
        pack_policy(pk, b.policy);
    }
};

// The fields the hash covers, as an array of `fields` (7, or 10 sealed).
void pack_fields(Packer& pk, const TopologyEvent& e, std::uint32_t fields) {
    pk.pack_array(fields);
    pk.pack_uint64(format_version);
    pack_text(pk, e.key.author.node.value());
    pk.pack_uint64(e.key.author.instance);
    pk.pack_uint64(e.key.seq);
    pk.pack_uint64(e.timestamp.value());
    pk.pack_uint8(static_cast<std::uint8_t>(topology_kind(e.body)));
    std::visit(BodyWriter{pk}, e.body);
}

Digest hash_of(const TopologyEvent& e, const Digest& prev_hash) {
    Bytes body;
    Sink sink{body};
    Packer pk(sink);
    pack_fields(pk, e, 7);
    Blake2b256 h;
    h.update(ByteView(prev_hash.bytes));
    h.update(body);
    return h.finish();
}

// Reads the body of `kind` from the group field at the reader's position.
TopologyBody read_body(Reader& r, topo::Kind kind) {
    TopologyBody out;
    const bool present = r.opt_group("fields", [&](Reader& f) {
        switch (kind) {
            case topo::Kind::node_started:
                out = topo::NodeStarted{f.u64("incarnation"),
                                        f.bounded<std::uint8_t>("witness") != 0};
                return;
            case topo::Kind::voted:
                out = topo::Voted{f.owned_text("group", 64), Epoch{f.u64("epoch")},
                                  NodeId(f.owned_text("candidate", node_id_bytes_max))};
                return;
            case topo::Kind::master_elected: {
                topo::MasterElected m{f.owned_text("group", 64), Epoch{f.u64("epoch")}, {}};
                const auto list = f.list("voters", voters_max);
                for (const msgpack::object& v : list.items) {
                    if (v.type != msgpack::type::STR || v.via.str.size > node_id_bytes_max) {
                        f.refuse("voters", "a voter that is not a node id");
                        return;
                    }
                    m.voters.emplace_back(std::string(v.via.str.ptr, v.via.str.size));
                }
                out = std::move(m);
                return;
            }
            case topo::Kind::stepped_down:
                out = topo::SteppedDown{f.owned_text("group", 64), Epoch{f.u64("epoch")},
                                        f.owned_text("reason", reason_bytes_max)};
                return;
            case topo::Kind::stream_completed:
                out = topo::StreamCompleted{f.owned_text("stream", limits::stream_name_bytes_max),
                                            Epoch{f.u64("epoch")}, Seq{f.u64("seq")}};
                return;
            case topo::Kind::suffix_quarantined:
                out = topo::SuffixQuarantined{f.owned_text("stream", limits::stream_name_bytes_max),
                                              Epoch{f.u64("epoch")}, Seq{f.u64("after_seq")},
                                              f.u64("count")};
                return;
            case topo::Kind::stream_created: {
                topo::StreamCreated c{f.owned_text("stream", limits::stream_name_bytes_max),
                                      Epoch{f.u64("epoch")}, {}};
                c.policy = read_policy(f);
                out = std::move(c);
                return;
            }
            case topo::Kind::stream_deleted:
                out = topo::StreamDeleted{f.owned_text("stream", limits::stream_name_bytes_max),
                                          Epoch{f.u64("epoch")}};
                return;
            case topo::Kind::stream_policy_changed: {
                topo::StreamPolicyChanged c{f.owned_text("stream", limits::stream_name_bytes_max),
                                            Epoch{f.u64("epoch")}, {}};
                c.policy = read_policy(f);
                out = std::move(c);
                return;
            }
        }
    });
    if (!present && !r.failed()) r.fail("fields", "nil; the event's fields are needed");
    return out;
}

}  // namespace

Bytes seal_topology_event(const TopologyEvent& event, const Digest& prev_hash,
                          const Identity& identity, Digest* hash_out) {
    const Digest hash = hash_of(event, prev_hash);
    const Signature signature = identity.sign(ByteView(hash.bytes));
    Bytes out;
    Sink sink{out};
    Packer pk(sink);
    pack_fields(pk, event, 10);
    pack_bin(pk, ByteView(prev_hash.bytes));
    pack_bin(pk, ByteView(hash.bytes));
    pack_bin(pk, ByteView(signature.bytes));
    if (hash_out != nullptr) *hash_out = hash;
    return out;
}

Result<SealedTopologyEvent> decode_topology_event(ByteView bytes) {
    msgpack::object_handle handle;
    SPIRIT_TRY(protocol::detail::unpack(bytes, voters_max, handle));
    const msgpack::object& root = handle.get();
    if (root.type != msgpack::type::ARRAY) {
        return make_error(errc::malformed, "a $topology event is not an array");
    }
    Reader r(root, "TopologyEvent", 0);
    SealedTopologyEvent out;
    const std::uint64_t version = r.u64("version");
    if (!r.failed() && version != format_version) {
        r.refuse("version",
                 fmt::format("format {} (this build reads {})", version, format_version));
    }
    out.event.key.author.node = NodeId(r.owned_text("node", node_id_bytes_max));
    out.event.key.author.instance = r.u64("instance");
    out.event.key.seq = r.u64("seq");
    out.event.timestamp = TimestampNs{r.u64("timestamp")};
    const std::uint64_t kind = r.u64("kind");
    if (!r.failed() && (kind < 1 || kind > std::variant_size_v<TopologyBody>)) {
        r.refuse("kind", fmt::format("unknown kind {}", kind));
    }
    if (!r.failed()) out.event.body = read_body(r, static_cast<topo::Kind>(kind));
    out.prev_hash = r.fixed<Digest>("prev_hash");
    out.hash = r.fixed<Digest>("hash");
    out.signature = r.fixed<Signature>("signature");
    if (r.failed()) return Unexpected{std::move(*r.error())};
    return out;
}

Result<void> verify_topology_event(const SealedTopologyEvent& sealed, const PublicKey& key,
                                   const Digest& expected_prev) {
    const std::string name = topology_event_name(sealed.event.key);
    if (sealed.prev_hash != expected_prev) {
        return make_error(
            errc::hash_mismatch,
            fmt::format("$topology event {} chains on {}, but the author's event "
                        "before it here has hash {}",
                        name, digest_hex(sealed.prev_hash, 8), digest_hex(expected_prev, 8)));
    }
    const Digest hash = hash_of(sealed.event, sealed.prev_hash);
    if (hash != sealed.hash) {
        return make_error(errc::hash_mismatch,
                          fmt::format("$topology event {}: its fields hash to {}, it says {}", name,
                                      digest_hex(hash, 8), digest_hex(sealed.hash, 8)));
    }
    if (!verify_signature(key, ByteView(sealed.hash.bytes), sealed.signature)) {
        return make_error(errc::bad_signature,
                          fmt::format("$topology event {}: the signature does not verify with "
                                      "{}'s public key",
                                      name, sealed.event.key.author.node.value()));
    }
    return {};
}

std::string topology_event_name(const TopologyKey& key) {
    return key.author.text() + "/" + std::to_string(key.seq);
}

const char* topology_kind_name(topo::Kind kind) {
    switch (kind) {
        case topo::Kind::node_started:
            return "node_started";
        case topo::Kind::voted:
            return "voted";
        case topo::Kind::master_elected:
            return "master_elected";
        case topo::Kind::stepped_down:
            return "stepped_down";
        case topo::Kind::stream_completed:
            return "stream_completed";
        case topo::Kind::suffix_quarantined:
            return "suffix_quarantined";
        case topo::Kind::stream_created:
            return "stream_created";
        case topo::Kind::stream_deleted:
            return "stream_deleted";
        case topo::Kind::stream_policy_changed:
            return "stream_policy_changed";
    }
    return "unknown";
}

}  // namespace spirit::core
