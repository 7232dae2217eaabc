// topology/prng.h: the specified PRNG the topology state machine draws its
// randomness from (election-timeout jitter). splitmix64 is fully specified,
// so a seed reproduces the same run on every standard library, which
// std::uniform_int_distribution does not promise.
#pragma once

#include <cstdint>

namespace spirit::topology {

class Prng {
 public:
    explicit Prng(std::uint64_t seed) : state_(seed) {}

    // Next 64 random bits (splitmix64).
    std::uint64_t next();

    // Uniform integer in [low, high_inclusive], without modulo bias.
    // REQUIRES: low <= high_inclusive.
    std::uint64_t uniform(std::uint64_t low, std::uint64_t high_inclusive);

 private:
    std::uint64_t state_;
};

}  // namespace spirit::topology
