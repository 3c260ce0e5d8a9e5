// Native bf16 GEMM (AVX512_BF16) against a double-precision reference on the same bf16
// inputs: shapes around the blocking edges, all transpose combinations, alpha and beta.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "ops/cpu/gemm_bf16.h"

namespace {

using pacer::BFloat16;

struct Shape3 {
  int64_t m, n, k;
};

// Runs one case and returns the number of elements outside the tolerance.
int64_t run_case(bool ta, bool tb, Shape3 s, float alpha, float beta, uint64_t seed, int64_t pad = 3) {
  const auto [m, n, k] = s;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  // Stored shapes with padded leading dimensions (strides larger than the row length).
  const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  const int64_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
  std::vector<BFloat16> a(size_t(std::max<int64_t>(a_rows * lda, 1))), b(size_t(std::max<int64_t>(b_rows * ldb, 1)));
  for (auto& x : a) x = BFloat16(dist(rng));
  for (auto& x : b) x = BFloat16(dist(rng));
  std::vector<float> c(size_t(m * ldc));
  for (auto& x : c) x = beta == 0 ? std::numeric_limits<float>::quiet_NaN() : dist(rng);
  const std::vector<float> c0 = c;

  pacer::ops::cpu::gemm_bf16(ta, tb, m, n, k, a.data(), lda, b.data(), ldb, c.data(), ldc, alpha, beta);

  auto A = [&](int64_t i, int64_t p) { return double(float(ta ? a[p * lda + i] : a[i * lda + p])); };
  auto B = [&](int64_t p, int64_t j) { return double(float(tb ? b[j * ldb + p] : b[p * ldb + j])); };
  int64_t bad = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0, mag = 0;
      for (int64_t p = 0; p < k; ++p) {
        acc += A(i, p) * B(p, j);
        mag += std::abs(A(i, p) * B(p, j));
      }
      const double old = double(c0[i * ldc + j]);
      const double want = double(alpha) * acc + (beta == 0 ? 0.0 : double(beta) * old);
      const double tol = 1e-5 * (std::abs(double(alpha)) * mag + std::abs(double(beta)) * (beta == 0 ? 0 : std::abs(old))) + 1e-30;
      const double got = double(c[i * ldc + j]);
      if (!(std::abs(got - want) <= tol)) {
        if (bad < 3)
          MESSAGE("mismatch ta=" << ta << " tb=" << tb << " m=" << m << " n=" << n << " k=" << k << " at (" << i << ","
                                 << j << "): got " << got << " want " << want << " tol " << tol);
        ++bad;
      }
    }
  // The padding between rows of C is never written.
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = n; j < ldc; ++j) {
      const float x = c[i * ldc + j], y = c0[i * ldc + j];
      if (!(x == y || (std::isnan(x) && std::isnan(y)))) ++bad;
    }
  return bad;
}

}  // namespace

TEST_CASE("gemm_bf16 matches a double reference") {
  if (!pacer::ops::cpu::bf16_gemm_available()) {
    MESSAGE("skipped: this CPU lacks avx512_bf16, the native bf16 GEMM is not used here");
    return;
  }
  const Shape3 shapes[] = {{1, 1, 1},   {1, 1, 2},    {2, 3, 5},     {12, 32, 7},   {13, 33, 9},    {11, 17, 1},
                           {5, 16, 3},  {24, 64, 16}, {25, 47, 255}, {7, 100, 257}, {145, 31, 258}, {150, 40, 513},
                           {3, 1030, 20}, {64, 10, 600}, {9, 32, 1100}};
  uint64_t seed = 1;
  for (const auto& s : shapes)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      CAPTURE(s.m);
      CAPTURE(s.n);
      CAPTURE(s.k);
      CAPTURE(ta);
      CAPTURE(tb);
      CHECK(run_case(ta, tb, s, 1.0f, 0.0f, seed++) == 0);
      CHECK(run_case(ta, tb, s, 1.0f, 1.0f, seed++) == 0);
      CHECK(run_case(ta, tb, s, -0.75f, 0.0f, seed++) == 0);
      CHECK(run_case(ta, tb, s, 1.5f, -0.5f, seed++) == 0);
    }
}

TEST_CASE("gemm_bf16 large shapes, serial and threaded") {
  if (!pacer::ops::cpu::bf16_gemm_available()) {
    MESSAGE("skipped: this CPU lacks avx512_bf16, the native bf16 GEMM is not used here");
    return;
  }
  const int saved = pacer::num_threads();
  for (int threads : {1, 2}) {
    pacer::set_num_threads(threads);
    CAPTURE(threads);
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      CAPTURE(ta);
      CAPTURE(tb);
      CHECK(run_case(ta, tb, {300, 257, 513}, 1.0f, 0.0f, 100 + t) == 0);
      CHECK(run_case(ta, tb, {300, 257, 513}, 0.5f, 1.0f, 200 + t) == 0);
      // Shapes that take the column split and the k split with two threads.
      CHECK(run_case(ta, tb, {10, 1100, 200}, 1.0f, 1.0f, 300 + t) == 0);
      CHECK(run_case(ta, tb, {9, 32, 8000}, 1.0f, 0.0f, 400 + t) == 0);
      CHECK(run_case(ta, tb, {9, 32, 8001}, 2.0f, 1.0f, 500 + t) == 0);
    }
  }
  pacer::set_num_threads(saved);
}

TEST_CASE("gemm_bf16 degenerate sizes") {
  if (!pacer::ops::cpu::bf16_gemm_available()) {
    MESSAGE("skipped: this CPU lacks avx512_bf16, the native bf16 GEMM is not used here");
    return;
  }
  // k == 0: C = beta * C, and beta == 0 writes zeros over NaN.
  std::vector<float> c(6, std::numeric_limits<float>::quiet_NaN());
  pacer::ops::cpu::gemm_bf16(false, false, 2, 3, 0, nullptr, 1, nullptr, 3, c.data(), 3, 1.0f, 0.0f);
  for (float x : c) CHECK(x == 0.0f);
  std::vector<float> d(6, 2.0f);
  pacer::ops::cpu::gemm_bf16(false, false, 2, 3, 0, nullptr, 1, nullptr, 3, d.data(), 3, 1.0f, 0.5f);
  for (float x : d) CHECK(x == 1.0f);
  // m == 0 or n == 0: nothing happens.
  pacer::ops::cpu::gemm_bf16(false, false, 0, 3, 4, nullptr, 4, nullptr, 3, nullptr, 3, 1.0f, 0.0f);
  pacer::ops::cpu::gemm_bf16(false, false, 3, 0, 4, nullptr, 4, nullptr, 1, nullptr, 1, 1.0f, 0.0f);
}
