// The f32/f64 GEMM splits large products between the pool's threads (OpenBLAS itself runs
// single-threaded): column and row splits, transposed and padded operands, beta 0 over a
// NaN-filled output and beta != 0, against a double-precision reference.

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>

#include "core/thread_pool.h"
#include "ops/api.h"
#include "ops/cpu/gemm.h"

namespace pacer {
namespace {

// A [rows, cols] view (transposed when `trans`) of a padded random buffer.
Tensor operand(int64_t rows, int64_t cols, bool trans, DType dtype, uint64_t seed) {
  const int64_t r = trans ? cols : rows, c = trans ? rows : cols, ld = c + 5;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> v(size_t(r * ld));
  for (double& x : v) x = dist(rng);
  Tensor buf = cast(from_vector(v), dtype);
  return trans ? make_view(buf, {rows, cols}, {1, ld}, 0) : make_view(buf, {rows, cols}, {ld, 1}, 0);
}

}  // namespace

TEST_CASE("cpu gemm: products split across threads equal the reference") {
  const int saved = num_threads();
  set_num_threads(2);
  struct Case {
    int64_t m, n, k;
  };
  for (DType dtype : {DType::F32, DType::F64}) {
    for (Case s : {Case{37, 1000, 20}, Case{1000, 37, 20}, Case{64, 64, 64}, Case{130, 129, 33}}) {
      for (int trans = 0; trans < 4; ++trans) {
        for (double beta : {0.0, 0.5}) {
          INFO("m=" << s.m << " n=" << s.n << " k=" << s.k << " trans=" << trans << " beta=" << beta
                      << " dtype=" << int(dtype));
          const Tensor a = operand(s.m, s.k, trans & 1, dtype, 1), b = operand(s.k, s.n, trans & 2, dtype, 2);
          // The output has a padded row stride; beta 0 must not read its NaNs.
          Tensor storage = full({s.m, s.n + 3}, beta == 0 ? std::numeric_limits<double>::quiet_NaN() : 0.25, {.dtype = dtype});
          Tensor c = make_view(storage, {s.m, s.n}, {s.n + 3, 1}, 0);
          ops::cpu::gemm(a, b, c, 1.5, beta);
          const std::vector<double> A = cast(contiguous(a), DType::F64).to_vector<double>();
          const std::vector<double> B = cast(contiguous(b), DType::F64).to_vector<double>();
          const std::vector<double> C = cast(contiguous(c), DType::F64).to_vector<double>();
          const double tol = dtype == DType::F32 ? 1e-4 : 1e-12;
          int64_t bad = 0;
          for (int64_t i = 0; i < s.m; ++i)
            for (int64_t j = 0; j < s.n; ++j) {
              double ref = beta * 0.25;
              for (int64_t p = 0; p < s.k; ++p) ref += 1.5 * A[size_t(i * s.k + p)] * B[size_t(p * s.n + j)];
              const double got = C[size_t(i * s.n + j)];
              if (!(std::fabs(got - ref) <= tol * (1 + std::fabs(ref)))) ++bad;
            }
          CHECK(bad == 0);
        }
      }
    }
  }
  set_num_threads(saved);
}

}  // namespace pacer
