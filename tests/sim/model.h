// tests/sim/model.h: the simulator's model of a stream copy. An entry is
// (epoch, id, chain hash) with the hash a cheap deterministic mix of the
// previous hash, the epoch and the id: the same chain property as the
// daemon's BLAKE2b envelopes (two copies that agree at a seq agree at every
// seq before it), without the bytes. A copy is a list of entries and the
// epoch it last durably confirmed (topology::Position semantics).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/stream_policy.h"
#include "topology/position.h"

namespace spirit::sim {

using core::Epoch;
using core::Seq;

// Two streams on every data node: "imm" (immediate, acks = a majority of the
// data nodes) and "ev" (eventual).
inline constexpr std::size_t stream_count = 2;
inline constexpr std::size_t imm = 0;
inline constexpr std::size_t ev = 1;
const char* stream_name(std::size_t stream);
core::StreamPolicy stream_policy(std::size_t stream);

inline constexpr std::uint64_t genesis_hash = 0;
std::uint64_t chain_hash(std::uint64_t prev, Epoch epoch, std::uint64_t id);

// The model's 64-bit hashes in the Digest topology/ compares.
core::Digest digest_of(std::uint64_t hash);
std::uint64_t hash_of(const core::Digest& digest);

struct Entry {
    Epoch epoch;
    std::uint64_t id = 0;
    std::uint64_t hash = 0;
    friend bool operator==(const Entry&, const Entry&) = default;
};

struct Copy {
    std::vector<Entry> entries;
    Epoch confirmed{0};

    Seq last_seq() const { return Seq{entries.size()}; }
    std::uint64_t last_hash() const { return entries.empty() ? genesis_hash : entries.back().hash; }
    // The hash at `seq` (the genesis at Seq{0}); nullopt past the end.
    std::optional<std::uint64_t> hash_at(Seq seq) const;
    const Entry& at(Seq seq) const { return entries[seq.value() - 1]; }
    topology::Position position() const;
    // The seq holding event `id`, if any (the idempotency check).
    std::optional<Seq> find(std::uint64_t id) const;
    // Whether this copy is a prefix of `other` (chain hashes: one compare).
    bool prefix_of(const Copy& other) const;
};

// An event a node removed from its copy, with the seq it had there.
struct Quarantined {
    Seq seq;
    Entry entry;
};

// Whether `entries` chain on (prev_hash) entry by entry.
bool chains(std::uint64_t prev_hash, const std::vector<Entry>& entries);

std::string short_hash(std::uint64_t hash);

}  // namespace spirit::sim
