// Linked into every test executable: libsodium picks its fastest BLAKE2b
// implementation in sodium_init(), which main() does in the daemon.
#include <cstdio>
#include <cstdlib>

#include "core/hash_chain.h"

namespace {

struct InitCrypto {
    InitCrypto() {
        if (!spirit::core::init_crypto()) {
            std::fprintf(stderr, "libsodium failed to initialise\n");
            std::abort();
        }
    }
};

const InitCrypto init_crypto;

}  // namespace
