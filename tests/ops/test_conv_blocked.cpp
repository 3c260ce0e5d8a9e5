// The CPU convolution's per-image blocked paths (ops/cpu/conv.cpp): images of 14 x 14 output
// pixels or more are im2col'd and multiplied a block of output rows at a time, each thread
// taking whole (image, group, block) tasks. The op table's conv rows are small enough to fit
// one block; these shapes make several blocks with a short last one, in f32 and f64, and
// check forward, input gradient and weight gradient against naive f64 loops.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "ops/api.h"
#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

struct Geometry {
  int64_t N, C, H, W, K, kh, kw, s, p, groups;
  int64_t OH() const { return (H + 2 * p - kh) / s + 1; }
  int64_t OW() const { return (W + 2 * p - kw) / s + 1; }
};

// Calls f(n, k, c, oh, ow, i, j, h, w) for every product of the convolution's sum.
template <class F>
void for_each_tap(const Geometry& g, F f) {
  const int64_t Cg = g.C / g.groups, Kg = g.K / g.groups;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t oh = 0; oh < g.OH(); ++oh)
          for (int64_t ow = 0; ow < g.OW(); ++ow)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t h = oh * g.s - g.p + i, w = ow * g.s - g.p + j;
                if (h >= 0 && h < g.H && w >= 0 && w < g.W) f(n, k, k / Kg * Cg + c, c, oh, ow, i, j, h, w);
              }
}

double max_rel(const Tensor& got, const std::vector<double>& want) {
  const std::vector<double> v = got.to(DType::F64).to_vector<double>();
  REQUIRE(v.size() == want.size());
  double m = 0;
  for (size_t i = 0; i < v.size(); ++i) m = std::max(m, std::abs(v[i] - want[i]) / (1 + std::abs(want[i])));
  return m;
}

void check_blocked(const Geometry& g, DType dtype, double tol) {
  const Tensor x64 = uniform({g.N, g.C, g.H, g.W}, -1, 1, 5), w64 = uniform({g.K, g.C / g.groups, g.kh, g.kw}, -1, 1, 6);
  const Tensor dy64 = uniform({g.N, g.K, g.OH(), g.OW()}, -1, 1, 7);
  const std::vector<double> x = x64.to_vector<double>(), w = w64.to_vector<double>(), dy = dy64.to_vector<double>();
  std::vector<double> y(dy.size(), 0.0), dx(x.size(), 0.0), dw(w.size(), 0.0);
  const int64_t Cg = g.C / g.groups;
  for_each_tap(g, [&](int64_t n, int64_t k, int64_t ci, int64_t c, int64_t oh, int64_t ow, int64_t i, int64_t j,
                      int64_t h, int64_t ww) {
    const size_t yi = size_t(((n * g.K + k) * g.OH() + oh) * g.OW() + ow);
    const size_t xi = size_t(((n * g.C + ci) * g.H + h) * g.W + ww);
    const size_t wi = size_t(((k * Cg + c) * g.kh + i) * g.kw + j);
    y[yi] += x[xi] * w[wi];
    dx[xi] += dy[yi] * w[wi];
    dw[wi] += dy[yi] * x[xi];
  });
  const Tensor xt = x64.to(dtype).set_requires_grad(), wt = w64.to(dtype).set_requires_grad();
  const Tensor out = conv2d(xt, wt, Tensor(), {g.s, g.s}, {g.p, g.p}, {1, 1}, g.groups);
  out.backward(dy64.to(dtype));
  CHECK(max_rel(out, y) < tol);
  CHECK(max_rel(xt.grad(), dx) < tol);
  CHECK(max_rel(wt.grad(), dw) < tol);
}

}  // namespace

TEST_CASE("CPU conv2d per-image blocks: several row blocks, a short last one, groups, stride, with 1 and 2 threads") {
  const int saved = num_threads();
  for (int threads : {2, 1}) {
    set_num_threads(threads);
    INFO("threads " << threads);
    // 576-row column matrices of 30-wide rows: 9-row blocks (270 columns), the last of 2 rows.
    check_blocked({2, 64, 29, 30, 4, 3, 3, 1, 1, 1}, DType::F64, 1e-12);
    check_blocked({2, 64, 29, 30, 4, 3, 3, 1, 1, 1}, DType::F32, 1e-4);  // weight gradients sum ~2000 f32 products
    // Two groups, stride 2, a 5x5 kernel: 28 x 30 outputs from a 56 x 60 input.
    check_blocked({3, 48, 56, 60, 6, 5, 5, 2, 2, 2}, DType::F32, 1e-4);  // weight gradients sum ~2000 f32 products
  }
  set_num_threads(saved);
}

}  // namespace pacer::test
