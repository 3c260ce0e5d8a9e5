// The CPU convolution's per-image blocked paths (ops/cpu/conv.cpp): images of 14 x 14 output
// pixels or more are im2col'd and multiplied a block of output rows at a time, each thread
// taking whole (image, group, block) tasks. The op table's conv rows are small enough to fit
// one block; these shapes make several blocks with a short last one, in f32 and f64, and
// check forward, input gradient and weight gradient against naive f64 loops. The same checks
// cover the Winograd F(4x4, 3x3) path (ops/cpu/conv_winograd.cpp) for 3x3 stride-1 shapes.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <vector>

#include "core/thread_pool.h"
#include "ops/api.h"
#include "ops/cpu/conv_winograd.h"
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

// With `channels_last`, x is an NHWC tensor seen through NCHW strides.
void check_blocked(const Geometry& g, DType dtype, double tol, bool channels_last = false) {
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
  Tensor xt = x64.to(dtype);
  if (channels_last) xt = permute(contiguous(permute(xt, {0, 2, 3, 1})), {0, 3, 1, 2});
  xt.set_requires_grad();
  const Tensor wt = w64.to(dtype).set_requires_grad();
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

namespace {

// Sets the Winograd mode for a scope.
struct WinogradMode {
  ops::cpu::winograd::Mode saved = ops::cpu::winograd::mode();
  explicit WinogradMode(ops::cpu::winograd::Mode m) { ops::cpu::winograd::set_mode(m); }
  ~WinogradMode() { ops::cpu::winograd::set_mode(saved); }
};

// Forward, input-gradient and weight-gradient calls through Winograd so far.
std::array<int64_t, 3> winograd_calls() {
  auto& c = ops::cpu::winograd::calls();
  return {c.forward.load(), c.input_grad.load(), c.weight_grad.load()};
}

}  // namespace

TEST_CASE("CPU conv2d Winograd F(4x4, 3x3): partial tiles, paddings 0-2, channels-last input, 1 and 2 threads") {
  using ops::cpu::winograd::Mode;
  const WinogradMode always(Mode::Always);
  const int saved = num_threads();
  for (int threads : {2, 1}) {
    set_num_threads(threads);
    INFO("threads " << threads);
    const auto before = winograd_calls();
    // 13 x 11 outputs: the last tile row and column are partial (1 and 3 of 4).
    check_blocked({2, 5, 13, 11, 7, 3, 3, 1, 1, 1}, DType::F64, 1e-11);
    check_blocked({2, 5, 13, 11, 7, 3, 3, 1, 0, 1}, DType::F64, 1e-11);
    check_blocked({2, 5, 13, 11, 7, 3, 3, 1, 2, 1}, DType::F64, 1e-11);
    check_blocked({2, 6, 9, 10, 3, 3, 3, 1, 1, 1}, DType::F64, 1e-11, /*channels_last=*/true);
    // Blocks of 13 tile rows across images of 5: the first ends inside the third image.
    check_blocked({3, 40, 20, 20, 40, 3, 3, 1, 1, 1}, DType::F64, 1e-11);
    // Several blocks of tile rows per image (64 + 40 channels of 8 tile columns: 1 MiB
    // blocks of 3 tile rows), in f32. F(4x4, 3x3)'s transforms scale values by up to 8 and
    // back, so f32 errors are ~10x im2col's: here 1.0e-4 forward, 7e-5 input and 1.2e-4
    // weight gradient, against 8e-6, 3e-6 and 1.3e-5.
    check_blocked({2, 64, 29, 30, 40, 3, 3, 1, 1, 1}, DType::F32, 3e-4);
    // A filter transform over 4 MiB (36 x 120 x 128 f64): each thread takes its whole share
    // of the 18 tile rows as one block, and the weight gradient sums one dU, split between
    // the threads by transform point.
    check_blocked({3, 120, 24, 24, 128, 3, 3, 1, 1, 1}, DType::F64, 1e-11);
    const auto after = winograd_calls();
    for (int i = 0; i < 3; ++i) CHECK(after[size_t(i)] - before[size_t(i)] == 7);
  }
  set_num_threads(saved);
}

TEST_CASE("CPU conv2d Winograd: bias equals im2col's, auto mode takes 3x3 stride-1 convolutions of 32+ channels only") {
  using ops::cpu::winograd::Mode;
  const Tensor x = uniform({2, 32, 12, 12}, -1, 1, 11).to(DType::F32);
  const Tensor w = uniform({48, 32, 3, 3}, -1, 1, 12).to(DType::F32), b = uniform({48}, -1, 1, 13).to(DType::F32);
  Tensor direct, fast;
  {
    const WinogradMode off(Mode::Off);
    direct = conv2d(x, w, b, {1, 1}, {1, 1});
  }
  const WinogradMode automatic(Mode::Auto);
  auto before = winograd_calls();
  fast = conv2d(x, w, b, {1, 1}, {1, 1});
  CHECK(winograd_calls()[0] == before[0] + 1);
  const std::vector<float> d = direct.to_vector<float>(), f = fast.to_vector<float>();
  REQUIRE(d.size() == f.size());
  double worst = 0;
  for (size_t i = 0; i < d.size(); ++i) worst = std::max(worst, double(std::abs(d[i] - f[i])) / (1 + std::abs(d[i])));
  CHECK(worst < 1e-4);  // measured 4.7e-5 (see above)
  // Left to im2col: 16 input channels, stride 2, a 5x5 kernel, f16.
  before = winograd_calls();
  (void)conv2d(uniform({1, 16, 12, 12}, -1, 1, 14).to(DType::F32), uniform({48, 16, 3, 3}, -1, 1, 15).to(DType::F32),
               Tensor(), {1, 1}, {1, 1});
  (void)conv2d(x, w, Tensor(), {2, 2}, {1, 1});
  (void)conv2d(x, uniform({48, 32, 5, 5}, -1, 1, 16).to(DType::F32), Tensor(), {1, 1}, {2, 2});
  (void)conv2d(x.to(DType::F16), w.to(DType::F16), Tensor(), {1, 1}, {1, 1});
  CHECK(winograd_calls()[0] == before[0]);
}

}  // namespace pacer::test
