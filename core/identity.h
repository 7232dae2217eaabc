// core/identity.h: a node's Ed25519 identity (libsodium): the secret key
// it signs its `$topology` events with, and the public keys the config
// lists for every member. The encrypted peer handshake builds on the same
// keys.
//
// Key file: one line "spirit-ed25519-seed <base64 of the 32-byte seed>",
// mode 0600 (spirit keygen writes it). Public keys are written as base64 of
// their 32 bytes (44 characters) in config and on the terminal.
//
// REQUIRES for everything here: init_crypto() succeeded (core/hash_chain.h).
#pragma once

#include <array>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/ids.h"
#include "core/result.h"

namespace spirit::core {

using PublicKey = FixedBytes<struct PublicKeyTag, 32>;
using Signature = FixedBytes<struct SignatureTag, 64>;

// Base64 (standard alphabet, padded) of a public key, and back.
// errc::invalid_argument naming the text when it is not 44 characters of
// base64 for 32 bytes.
std::string public_key_text(const PublicKey& key);
[[nodiscard]] Result<PublicKey> parse_public_key(std::string_view text);

// Whether `signature` is `key`'s signature of `message`.
[[nodiscard]] bool verify_signature(const PublicKey& key, ByteView message,
                                    const Signature& signature);

// A secret key, in memory that libsodium locks and wipes when freed.
// Move-only; owned by the daemon's loop thread.
class Identity {
 public:
    // A new random identity.
    static Identity generate();
    // Reads a key file. errc::config_invalid naming the file when it is
    // missing, unreadable, readable or writable by group or others (the
    // detail says how to fix it: "chmod 600 FILE"), or not a key file.
    [[nodiscard]] static Result<Identity> load(const std::filesystem::path& file);

    ~Identity();
    Identity(Identity&& other) noexcept;
    Identity& operator=(Identity&& other) noexcept;
    Identity(const Identity&) = delete;
    Identity& operator=(const Identity&) = delete;

    const PublicKey& public_key() const { return public_; }
    Signature sign(ByteView message) const;

    // Writes the key file: created, mode 0600, never over an existing file
    // (errc::already_exists naming it). Other errors name the file and errno.
    [[nodiscard]] Result<void> save(const std::filesystem::path& file) const;

 private:
    Identity();
    unsigned char* secret_ = nullptr;  // crypto_sign_SECRETKEYBYTES, sodium_malloc'd
    PublicKey public_;
};

}  // namespace spirit::core
