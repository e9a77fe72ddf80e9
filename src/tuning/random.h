// Rng: the only source of randomness in tuning/. A strategy never keeps a generator between
// calls: every draw comes from a fresh Rng keyed by (seed, stream, index), e.g. (RandomSeed,
// "candidates", suggestion number). A strategy rebuilt from its recorded history therefore
// draws exactly what the original would have drawn.
//
// The generator is xoshiro256** seeded through SplitMix64, and the uniform, normal and bounded
// integer draws are written out here rather than taken from <random>, whose distributions differ
// between standard libraries: the same key gives the same numbers on every build.
//
// Thread safety: an Rng is a value; distinct objects may be used concurrently.
#pragma once

#include <cstdint>

namespace hearth::tuning {

// Independent purposes get independent streams, so adding draws to one never shifts another.
enum class RngStream : std::uint64_t {
  kRandomSearch = 1,
  kInitialDesign = 2,
  kCandidates = 3,
  kModelFit = 4,
  kHyperbandBracket = 5,
};

class Rng {
 public:
  Rng(std::uint64_t seed, RngStream stream, std::uint64_t index);

  std::uint64_t NextU64();
  // Uniform on [0, 1), 53 random bits.
  double Uniform();
  // Standard normal (Box-Muller; the second value of each pair is discarded, so a draw depends
  // only on how many draws came before it).
  double Normal();
  // Uniform on {0, ..., n - 1}; n > 0. Unbiased (rejection).
  std::uint64_t Below(std::uint64_t n);

 private:
  std::uint64_t s_[4];
};

}  // namespace hearth::tuning
