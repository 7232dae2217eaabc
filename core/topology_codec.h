// core/topology_codec.h: a `$topology` event sealed by its author: encoded,
// chained on the author's previous event and signed with the author's
// identity key (docs/topology.md, "Events", is the specification).
//
//   body(n) = msgpack array [1, node, instance, seq, timestamp, kind, fields]
//   hash(n) = BLAKE2b-256(hash(n-1) || body(n)), hash(0) = 32 zero bytes
//   sealed  = msgpack array [1, node, instance, seq, timestamp, kind,
//                            fields, prev_hash, hash, signature]
//   signature = Ed25519(author's key, hash(n))
//
// The sealed bytes are what a node stores (the payload of an event of its
// local `$topology` stream) and sends to its peers. A receiver decodes,
// recomputes the hash from the fields, checks that it continues what it
// holds of that author and that the signature verifies with the author's
// configured public key; anything else is refused with the reason.
#pragma once

#include <string>

#include "core/bytes.h"
#include "core/identity.h"
#include "core/result.h"
#include "core/topology_event.h"

namespace spirit::core {

struct SealedTopologyEvent {
    TopologyEvent event;
    Digest prev_hash;
    Digest hash;
    Signature signature;
};

// Seals `event` on `prev_hash` with `identity`. REQUIRES: event.key.author
// is the identity's node.
Bytes seal_topology_event(const TopologyEvent& event, const Digest& prev_hash,
                          const Identity& identity, Digest* hash_out = nullptr);

// Decodes sealed bytes (structure and ranges only; nothing is verified).
// malformed / invalid_argument / limit_exceeded naming the field.
[[nodiscard]] Result<SealedTopologyEvent> decode_topology_event(ByteView bytes);

// Checks a decoded event: its hash is the hash of its fields on its
// prev_hash, prev_hash is `expected_prev` (the hash of the author's
// previous event this node holds), and the signature verifies with `key`.
// hash_mismatch or bad_signature naming the event ("node-b~.../7").
[[nodiscard]] Result<void> verify_topology_event(const SealedTopologyEvent& sealed,
                                                 const PublicKey& key, const Digest& expected_prev);

// "node-b~0123456789abcdef/7": an event's name in messages.
std::string topology_event_name(const TopologyKey& key);

// The kind's name: "node_started", "voted", ... (the type of its envelope).
const char* topology_kind_name(topo::Kind kind);

}  // namespace spirit::core
