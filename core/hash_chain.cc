#include "core/hash_chain.h"

#include "core/assert.h"

namespace spirit::core {

Blake2b256::Blake2b256() {
    int rc = crypto_generichash_blake2b_init(&state_, nullptr, 0, Digest::size_bytes);
    SPIRIT_ASSERT(rc == 0);
}

void Blake2b256::update(ByteView bytes) {
    int rc = crypto_generichash_blake2b_update(
        &state_, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    SPIRIT_ASSERT(rc == 0);
}

Digest Blake2b256::finish() {
    Digest d;
    int rc = crypto_generichash_blake2b_final(
        &state_, reinterpret_cast<unsigned char*>(d.bytes.data()), d.bytes.size());
    SPIRIT_ASSERT(rc == 0);
    return d;
}

KeyedHash::KeyedHash() {
    randombytes_buf(key_, sizeof key_);
}

std::uint64_t KeyedHash::operator()(ByteView bytes) const noexcept {
    unsigned char out[crypto_shorthash_siphash24_BYTES];
    crypto_shorthash_siphash24(out, reinterpret_cast<const unsigned char*>(bytes.data()),
                               bytes.size(), key_);
    std::uint64_t h = 0;
    for (unsigned char b : out) h = (h << 8) | b;
    return h;
}

bool init_crypto() noexcept {
    return sodium_init() >= 0;
}

std::string digest_hex(const Digest& d, std::size_t bytes) {
    if (bytes > d.bytes.size()) bytes = d.bytes.size();
    return to_hex(ByteView(d.bytes.data(), bytes));
}

}  // namespace spirit::core
