#pragma once
/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11):
/// a counter-based generator. Output depends only on (key, counter), so any element of a
/// random tensor can be computed independently, on CPU or GPU, with identical results.

#include <cmath>
#include <cstdint>

#include "core/macros.h"

namespace pacer {

struct Philox4 {
  uint32_t v[4];
};

PACER_HOST_DEVICE inline Philox4 philox4x32_10(uint64_t key, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = uint64_t(kM0) * c0;
    uint64_t p1 = uint64_t(kM1) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += kW0;
    k1 += kW1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

/// The random block for (seed, offset, block index): counter = (block lo, block hi,
/// offset lo, offset hi). Each op call draws from a fresh offset.
PACER_HOST_DEVICE inline Philox4 philox_block(uint64_t seed, uint64_t offset, uint64_t block) {
  return philox4x32_10(seed, uint32_t(block), uint32_t(block >> 32), uint32_t(offset), uint32_t(offset >> 32));
}

/// Uniform in [0, 1) with 24 random bits (exactly representable in float).
PACER_HOST_DEVICE inline float uniform_from_bits(uint32_t x) { return float(x >> 8) * (1.0f / 16777216.0f); }
/// Uniform in (0, 1], safe for log().
PACER_HOST_DEVICE inline float uniform_open0(uint32_t x) { return (float(x >> 8) + 1.0f) * (1.0f / 16777216.0f); }

/// Element i of a uniform stream: block i/4, lane i%4.
PACER_HOST_DEVICE inline float philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  Philox4 r = philox_block(seed, offset, i >> 2);
  return uniform_from_bits(r.v[i & 3]);
}

/// Element i of a standard-normal stream: block i/2, Box-Muller on lanes (2k, 2k+1).
PACER_HOST_DEVICE inline float philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  Philox4 r = philox_block(seed, offset, i >> 1);
  const int lane = int(i & 1) * 2;
  float u1 = uniform_open0(r.v[lane]);
  float u2 = uniform_from_bits(r.v[lane + 1]);
  // Box-Muller in double, rounded once to float: the CPU's and CUDA's libm differ by an ulp
  // or two in float, which would make CPU and GPU draws differ; in double they agree to
  // ~2^-50, so the rounded floats are equal except in the rare case of a near-tie.
  return float(std::sqrt(-2.0 * std::log(double(u1))) * std::cos(6.283185307179586477 * double(u2)));
}

}  // namespace pacer
