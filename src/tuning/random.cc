#include "tuning/random.h"

#include <cmath>
#include <numbers>

namespace hearth::tuning {
namespace {

std::uint64_t SplitMix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t Rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(std::uint64_t seed, RngStream stream, std::uint64_t index) {
  // Each key component goes through its own SplitMix64 round, so (seed, stream, index) and a
  // permutation of it give unrelated states.
  std::uint64_t state = seed;
  std::uint64_t mixed = SplitMix64(state);
  state = mixed ^ static_cast<std::uint64_t>(stream);
  mixed = SplitMix64(state);
  state = mixed ^ index;
  for (std::uint64_t& word : s_) word = SplitMix64(state);
}

std::uint64_t Rng::NextU64() {
  const std::uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double Rng::Uniform() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }

double Rng::Normal() {
  // 1 - Uniform() is in (0, 1], so the logarithm is finite.
  const double u1 = 1.0 - Uniform();
  const double u2 = Uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::uint64_t Rng::Below(std::uint64_t n) {
  // Reject the top partial block of 2^64 so that every residue is equally likely.
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n + 1) % n;
  while (true) {
    const std::uint64_t x = NextU64();
    if (x <= limit) return x % n;
  }
}

}  // namespace hearth::tuning
