#pragma once
/// Half (IEEE binary16) and BFloat16 storage types. Arithmetic happens in float:
/// they convert implicitly to float and are built explicitly from float with
/// round-to-nearest-even, as PyTorch and the CUDA intrinsics do.

#include <cstdint>
#include <cstring>

#include "core/macros.h"

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#elif defined(__F16C__)
#include <immintrin.h>  // one-instruction f16 <-> f32 conversions on the host (x86 F16C)
#endif

namespace pacer {

namespace detail {
PACER_HOST_DEVICE inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
PACER_HOST_DEVICE inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace detail

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  PACER_HOST_DEVICE explicit BFloat16(float f) : bits(round(f)) {}
  PACER_HOST_DEVICE operator float() const { return detail::bits_float(uint32_t(bits) << 16); }
  PACER_HOST_DEVICE static BFloat16 from_bits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }

 private:
  PACER_HOST_DEVICE static uint16_t round(float f) {
#if defined(__CUDA_ARCH__)
    return __bfloat16_as_ushort(__float2bfloat16_rn(f));  // same rounding, one instruction
#else
    uint32_t u = detail::float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return uint16_t(u >> 16);
#endif
  }
};

struct Half {
  uint16_t bits = 0;
  Half() = default;
  PACER_HOST_DEVICE explicit Half(float f) : bits(from_float(f)) {}
  PACER_HOST_DEVICE operator float() const { return to_float(bits); }
  PACER_HOST_DEVICE static Half from_bits(uint16_t b) {
    Half h;
    h.bits = b;
    return h;
  }

 private:
  PACER_HOST_DEVICE static uint16_t from_float(float f) {
#if defined(__CUDA_ARCH__)
    return __half_as_ushort(__float2half_rn(f));  // same rounding, one instruction
#elif defined(__F16C__) && !defined(__CUDACC__)
    return uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));  // same rounding, one instruction
#else
    uint32_t u = detail::float_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return uint16_t(sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to inf
    if (a < 0x38800000u) {                                  // subnormal or zero in half
      // Adding 0.5 lets the FPU do the round-to-nearest-even into the low mantissa bits.
      float r = detail::bits_float(a) + 0.5f;
      return uint16_t(sign | (detail::float_bits(r) - 0x3f000000u));
    }
    uint32_t mant_odd = (a >> 13) & 1u;
    a += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round
    return uint16_t(sign | (a >> 13));
#endif
  }
  PACER_HOST_DEVICE static float to_float(uint16_t h) {
#if defined(__CUDA_ARCH__)
    return __half2float(__ushort_as_half(h));
#elif defined(__F16C__) && !defined(__CUDACC__)
    return _cvtsh_ss(h);
#else
    uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0) {
      if (mant == 0) return detail::bits_float(sign);
      float v = float(mant) * (1.0f / 16777216.0f);  // mant * 2^-24
      return sign ? -v : v;
    }
    if (exp == 31) return detail::bits_float(sign | 0x7f800000u | (mant << 13));
    return detail::bits_float(sign | ((exp + 112) << 23) | (mant << 13));
#endif
  }
};

}  // namespace pacer
