// The stream-copy model (model.h): chain hashes, positions, prefixes.
#include "tests/sim/model.h"

#include <fmt/format.h>

namespace spirit::sim {

const char* stream_name(std::size_t stream) {
    return stream == imm ? "imm" : "ev";
}

core::StreamPolicy stream_policy(std::size_t stream) {
    core::StreamPolicy policy;
    policy.redundancy = stream == imm ? core::Redundancy::immediate : core::Redundancy::eventual;
    policy.acks.kind = core::Acks::Kind::majority;
    return policy;
}

std::uint64_t chain_hash(std::uint64_t prev, Epoch epoch, std::uint64_t id) {
    // splitmix64's finaliser over the three inputs: cheap, deterministic and
    // well mixed, so distinct chains do not collide in practice.
    std::uint64_t z = prev ^ (epoch.value() * 0x9e3779b97f4a7c15ULL) ^ (id * 0xc2b2ae3d27d4eb4fULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return z == genesis_hash ? 1 : z;
}

core::Digest digest_of(std::uint64_t hash) {
    core::Digest d;
    for (std::size_t i = 0; i < 8; ++i)
        d.bytes[i] = static_cast<std::byte>((hash >> (8 * i)) & 0xff);
    return d;
}

std::uint64_t hash_of(const core::Digest& digest) {
    std::uint64_t h = 0;
    for (std::size_t i = 0; i < 8; ++i) h |= static_cast<std::uint64_t>(digest.bytes[i]) << (8 * i);
    return h;
}

std::optional<std::uint64_t> Copy::hash_at(Seq seq) const {
    if (seq.value() == 0) return genesis_hash;
    if (seq.value() > entries.size()) return std::nullopt;
    return entries[seq.value() - 1].hash;
}

topology::Position Copy::position() const {
    return topology::Position{confirmed, last_seq(), digest_of(last_hash())};
}

std::optional<Seq> Copy::find(std::uint64_t id) const {
    // Newest first: a retry is usually of a recent publish.
    for (std::size_t i = entries.size(); i > 0; --i) {
        if (entries[i - 1].id == id) return Seq{i};
    }
    return std::nullopt;
}

bool Copy::prefix_of(const Copy& other) const {
    if (entries.size() > other.entries.size()) return false;
    return other.hash_at(last_seq()) == last_hash();
}

bool chains(std::uint64_t prev_hash, const std::vector<Entry>& entries) {
    for (const Entry& e : entries) {
        if (e.hash != chain_hash(prev_hash, e.epoch, e.id)) return false;
        prev_hash = e.hash;
    }
    return true;
}

std::string short_hash(std::uint64_t hash) {
    return fmt::format("{:04x}", hash & 0xffff);
}

}  // namespace spirit::sim
