// core/hash_chain.h: the BLAKE2b-256 hash chain over envelopes.
//
//   hash(n) = BLAKE2b-256(hash(n-1) || msgpack array(8) of fields 0..7 of event n)
//   hash(0) = 32 zero bytes (the genesis hash of every stream)
//
// docs/format.md is the specification; tests/core/golden_vectors_test.cc pins it.
#pragma once

#include <sodium.h>

#include "core/bytes.h"
#include "core/ids.h"

namespace spirit::core {

// The hash every stream's chain starts from: the "hash of seq 0".
inline constexpr Digest genesis_hash{};

// Incremental BLAKE2b-256, unkeyed. REQUIRES: sodium_init() succeeded (see
// init_crypto()).
class Blake2b256 {
 public:
    Blake2b256();
    void update(ByteView bytes);
    Digest finish();

 private:
    crypto_generichash_blake2b_state state_;
};

// SipHash-2-4 with a random per-process key: for hash tables whose keys an
// outside party chooses (event ids), so nobody can force collisions.
class KeyedHash {
 public:
    KeyedHash();  // draws the key; REQUIRES: init_crypto() succeeded
    std::uint64_t operator()(ByteView bytes) const noexcept;

 private:
    unsigned char key_[crypto_shorthash_siphash24_KEYBYTES];
};

// Calls sodium_init(); returns false if libsodium cannot initialise (fatal).
// Safe to call more than once and from several threads.
[[nodiscard]] bool init_crypto() noexcept;

// Lower-case hex of a digest, or of its first `bytes` bytes.
std::string digest_hex(const Digest& d, std::size_t bytes = Digest::size_bytes);

}  // namespace spirit::core
