#include "topology/prng.h"

#include "core/assert.h"

namespace spirit::topology {

std::uint64_t Prng::next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

std::uint64_t Prng::uniform(std::uint64_t low, std::uint64_t high_inclusive) {
    SPIRIT_ASSERT(low <= high_inclusive);
    const std::uint64_t span = high_inclusive - low;
    if (span == UINT64_MAX) return next();
    const std::uint64_t range = span + 1;
    // Reject the top partial bucket so every value is equally likely.
    const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % range);
    std::uint64_t x = next();
    while (x >= limit) x = next();
    const std::uint64_t result = low + x % range;
    SPIRIT_ASSERT(result >= low && result <= high_inclusive);
    return result;
}

}  // namespace spirit::topology
