// DType, Half and BFloat16 (core/dtype.h, core/half.h). The half conversions are checked
// against an independent reference written with double arithmetic, and exhaustively over
// every 16-bit pattern and every rounding midpoint, so a single wrong bit shows up.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

namespace pacer::test {

namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round-to-nearest-even of |f| onto a grid with `mant_bits` explicit mantissa bits,
// smallest normal 2^min_exp and overflow to infinity at 2^(max_exp+1). Independent of
// the bit tricks in half.h: it only scales by powers of two (exact) and uses nearbyint.
double reference_round(float f, int mant_bits, int min_exp, int max_exp) {
  const double a = std::fabs(double(f));
  if (std::isinf(a)) return std::copysign(INFINITY, double(f));
  int e = 0;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  const int exp = std::max(e - 1, min_exp);
  const double quantum = std::ldexp(1.0, exp - mant_bits);
  double v = std::nearbyint(a / quantum) * quantum;  // default FP mode rounds ties to even
  if (v >= std::ldexp(1.0, max_exp + 1)) v = INFINITY;
  return std::copysign(v, double(f));
}

double ref_half(float f) { return reference_round(f, 10, -14, 15); }
double ref_bf16(float f) { return reference_round(f, 7, -126, 127); }

}  // namespace

TEST_CASE("Half: exact values and special cases") {
  CHECK(Half(1.0f).bits == 0x3c00);
  CHECK(Half(-2.0f).bits == 0xc000);
  CHECK(Half(65504.0f).bits == 0x7bff);  // largest finite half
  CHECK(float(Half::from_bits(0x7bff)) == 65504.0f);
  CHECK(Half(65519.0f).bits == 0x7bff);  // just below the midpoint to infinity
  CHECK(Half(65520.0f).bits == 0x7c00);  // the midpoint rounds to even = infinity
  CHECK(Half(1e10f).bits == 0x7c00);
  CHECK(Half(-INFINITY).bits == 0xfc00);
  CHECK(Half(std::ldexp(1.0f, -14)).bits == 0x0400);  // smallest normal
  CHECK(Half(std::ldexp(1.0f, -24)).bits == 0x0001);  // smallest subnormal
  CHECK(float(Half::from_bits(0x0001)) == std::ldexp(1.0f, -24));
  CHECK(float(Half::from_bits(0x03ff)) == 1023.0f * std::ldexp(1.0f, -24));  // largest subnormal
  CHECK(Half(std::ldexp(1.0f, -25)).bits == 0x0000);       // tie between 0 and 2^-24: even (0)
  CHECK(Half(3.0f * std::ldexp(1.0f, -25)).bits == 0x0002);  // tie between 1 and 2 ulps: even
  CHECK(Half(std::ldexp(1.0f, -26)).bits == 0x0000);
  CHECK(Half(-0.0f).bits == 0x8000);  // the sign of zero survives
  CHECK(std::signbit(float(Half::from_bits(0x8000))));
  // Normal-range ties: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
  CHECK(Half(1.0f + std::ldexp(1.0f, -11)).bits == 0x3c00);
  CHECK(Half(1.0f + 3 * std::ldexp(1.0f, -11)).bits == 0x3c02);
  CHECK(Half(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)).bits == 0x3c01);
  CHECK(float(Half(0.1f)) == 0.0999755859375f);  // 0x2e66, the nearest half to 0.1f
  // NaN stays NaN (also a signalling one, whose payload is in the low bits only).
  for (uint32_t nan_bits : {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7f802000u}) {
    Half h(from_bits(nan_bits));
    CAPTURE(nan_bits);
    CHECK((h.bits & 0x7c00) == 0x7c00);
    CHECK((h.bits & 0x03ff) != 0);
    CHECK(std::isnan(float(h)));
  }
  CHECK(std::isinf(float(Half::from_bits(0x7c00))));
}

TEST_CASE("Half: every bit pattern round-trips and decodes to the IEEE value") {
  int failures = 0;
  for (uint32_t b = 0; b < 0x10000u; ++b) {
    const float f = Half::from_bits(uint16_t(b));
    const uint32_t exp = (b >> 10) & 0x1f, mant = b & 0x3ff;
    double want = exp == 0 ? std::ldexp(double(mant), -24) : std::ldexp(double(1024 + mant), int(exp) - 25);
    if (b & 0x8000) want = -want;
    if (exp == 31) {
      failures += mant ? !std::isnan(f) : !(std::isinf(f) && std::signbit(f) == bool(b & 0x8000));
      continue;
    }
    failures += double(f) != want;
    failures += Half(f).bits != b;
  }
  CHECK(failures == 0);
}

TEST_CASE("Half: midpoints round to even, neighbours of midpoints round to nearest") {
  int failures = 0;
  for (uint32_t h = 0; h < 0x7c00u; ++h) {
    const double lo = float(Half::from_bits(uint16_t(h)));
    const double hi = h + 1 == 0x7c00 ? 65536.0 : double(float(Half::from_bits(uint16_t(h + 1))));
    const float mid = float((lo + hi) / 2);  // exact: 12 significant bits fit a float
    const uint16_t even = uint16_t(h % 2 == 0 ? h : h + 1);
    failures += Half(mid).bits != even;
    failures += Half(-mid).bits != (0x8000 | even);
    failures += Half(std::nextafter(mid, 0.0f)).bits != h;
    failures += Half(std::nextafter(mid, INFINITY)).bits != h + 1;
  }
  CHECK(failures == 0);
}

TEST_CASE("Half and BFloat16 agree with a double-precision reference over a float sweep") {
  int half_bad = 0, bf16_bad = 0;
  // A prime stride visits every exponent and many mantissa patterns of both signs.
  for (uint64_t u = 0; u < (uint64_t(1) << 32); u += 4093) {
    const float f = from_bits(uint32_t(u));
    if (std::isnan(f)) continue;
    const double h = float(Half(f)), b = float(BFloat16(f));
    const double rh = ref_half(f), rb = ref_bf16(f);
    half_bad += !(h == rh && std::signbit(h) == std::signbit(rh));
    bf16_bad += !(b == rb && std::signbit(b) == std::signbit(rb));
  }
  CHECK(half_bad == 0);
  CHECK(bf16_bad == 0);
}

TEST_CASE("BFloat16: exact values, ties to even, subnormals, inf and nan") {
  CHECK(BFloat16(1.0f).bits == 0x3f80);
  CHECK(BFloat16(-1.5f).bits == 0xbfc0);
  CHECK(BFloat16(from_bits(0x3f808000)).bits == 0x3f80);  // tie, lower neighbour even
  CHECK(BFloat16(from_bits(0x3f818000)).bits == 0x3f82);  // tie, upper neighbour even
  CHECK(BFloat16(from_bits(0x3f808001)).bits == 0x3f81);  // just above the tie
  CHECK(BFloat16(from_bits(0x00010000)).bits == 0x0001);  // float subnormal kept exactly
  CHECK(BFloat16(from_bits(0x00008000)).bits == 0x0000);  // half of the smallest: tie to 0
  CHECK(BFloat16(std::numeric_limits<float>::max()).bits == 0x7f80);  // rounds up to inf
  CHECK(BFloat16(from_bits(0x7f7f7fff)).bits == 0x7f7f);
  CHECK(BFloat16(INFINITY).bits == 0x7f80);
  CHECK(BFloat16(-INFINITY).bits == 0xff80);
  CHECK(BFloat16(-0.0f).bits == 0x8000);
  for (uint32_t nan_bits : {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
    CAPTURE(nan_bits);
    CHECK(std::isnan(float(BFloat16(from_bits(nan_bits)))));  // never becomes inf
  }
  int failures = 0;
  for (uint32_t b = 0; b < 0x10000u; ++b) {
    const float f = BFloat16::from_bits(uint16_t(b));
    if (std::isnan(f)) continue;
    failures += BFloat16(f).bits != b;
    // Midpoint to the next pattern (positive finite only): rounds to the even one.
    if (b < 0x7f80u) {
      const double next = b + 1 == 0x7f80 ? std::ldexp(1.0, 128) : double(float(BFloat16::from_bits(uint16_t(b + 1))));
      const float mid = float((double(f) + next) / 2);
      failures += BFloat16(mid).bits != (b % 2 == 0 ? b : b + 1);
    }
  }
  CHECK(failures == 0);
}

TEST_CASE("dtype names, parse_dtype and its error") {
  const DType all[] = {f32, f64, f16, bf16, i64, i32, u8, boolean};
  const char* names[] = {"float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool"};
  const char* shorts[] = {"f32", "f64", "f16", "bf16", "i64", "i32", "u8", "bool"};
  for (int i = 0; i < kNumDTypes; ++i) {
    CAPTURE(names[i]);
    CHECK(dtype_name(all[i]) == names[i]);
    CHECK(parse_dtype(names[i]) == all[i]);
    CHECK(parse_dtype(shorts[i]) == all[i]);
    CHECK(fmt::format("{}", all[i]) == names[i]);
  }
  CHECK(parse_dtype("float") == f32);
  CHECK(parse_dtype("double") == f64);
  CHECK(parse_dtype("half") == f16);
  CHECK(parse_dtype("long") == i64);
  CHECK(parse_dtype("int") == i32);
  CHECK_THROWS_WITH_AS(parse_dtype("float128"), doctest::Contains("unknown dtype 'float128'"), Error);
  CHECK_THROWS_WITH_AS(parse_dtype("F32"), doctest::Contains("expected one of f32, f64"), Error);
  CHECK_THROWS_AS(parse_dtype(""), Error);
}

TEST_CASE("promote_types follows PyTorch") {
  CHECK(promote_types(f16, bf16) == f32);
  CHECK(promote_types(bf16, f16) == f32);
  CHECK(promote_types(u8, i32) == i32);
  CHECK(promote_types(i32, u8) == i32);
  CHECK(promote_types(boolean, i64) == i64);
  CHECK(promote_types(i64, f16) == f16);
  CHECK(promote_types(i64, bf16) == bf16);
  CHECK(promote_types(f32, f64) == f64);
  CHECK(promote_types(f16, f32) == f32);
  CHECK(promote_types(u8, boolean) == u8);
  CHECK(promote_types(i32, i64) == i64);
  CHECK(promote_types(boolean, f16) == f16);
  const DType all[] = {f32, f64, f16, bf16, i64, i32, u8, boolean};
  for (DType a : all) {
    CHECK(promote_types(a, a) == a);
    for (DType b : all) {
      CAPTURE(a);
      CAPTURE(b);
      const DType r = promote_types(a, b);
      CHECK(r == promote_types(b, a));                      // symmetric
      CHECK(promote_types(r, a) == r);                      // r is an upper bound of a...
      CHECK(promote_types(r, b) == r);                      // ...and of b
      if (is_floating(a) || is_floating(b)) CHECK(is_floating(r));  // category never drops
    }
  }
}

TEST_CASE("element_size and dtype predicates") {
  static_assert(element_size(f64) == 8 && element_size(i64) == 8);
  CHECK(element_size(f32) == 4);
  CHECK(element_size(i32) == 4);
  CHECK(element_size(f16) == 2);
  CHECK(element_size(bf16) == 2);
  CHECK(element_size(u8) == 1);
  CHECK(element_size(boolean) == 1);
  CHECK(sizeof(Half) == 2);
  CHECK(sizeof(BFloat16) == 2);
  CHECK(is_floating(bf16));
  CHECK_FALSE(is_floating(i32));
  CHECK(is_integral(boolean, true));
  CHECK_FALSE(is_integral(boolean, false));
  CHECK(is_half(f16));
  CHECK_FALSE(is_half(f32));
}

}  // namespace pacer::test
