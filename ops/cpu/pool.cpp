// CPU max / average pooling over [N, C, H, W] planes, parallel over planes. The input is
// read through its strides; outputs are contiguous.
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/cpu/loops.h"
#include "ops/common/pool_geometry.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

void max_pool_kernel(OpCall& c) {
  const Tensor& x = c.in(0);
  Tensor &y = c.out(0), &ix = c.out(1);
  const PoolGeometry P = pool_geometry(c.attrs);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), OH = y.size(2), OW = y.size(3);
  dispatch_floating(x.dtype(), "max_pool2d", [&]<class T>() {
    using Cpt = compute_t<T>;
    const T* px = static_cast<const T*>(x.data());
    T* py = static_cast<T*>(y.data());
    int64_t* pi = static_cast<int64_t*>(ix.data());
    const int64_t sN = x.stride(0), sC = x.stride(1), sH = x.stride(2), sW = x.stride(3);
    // Per output row, tap by tap across the whole row: each output keeps its running
    // maximum and the number of the tap that holds it (i * kw + j), updated with selects
    // that are independent across the row, so they vectorize. One chain of dependent
    // selects per output, or the index computed per tap, ran ~10 cycles per tap.
    const int64_t kh = P.kh, kw = P.kw, strh = P.sh, strw = P.sw, padh = P.ph, padw = P.pw, dilh = P.dh, dilw = P.dw;
    parallel_for(0, N * C, 1, [&](int64_t b, int64_t e) {
      std::vector<Cpt> best_row(static_cast<size_t>(OW));
      std::vector<int32_t> tap_row(static_cast<size_t>(OW));
      Cpt* __restrict bp = best_row.data();
      int32_t* __restrict tp = tap_row.data();
      for (int64_t plane = b; plane < e; ++plane) {
        const T* in = px + (plane / C) * sN + (plane % C) * sC;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t h0 = oh * strh - padh;
          for (int64_t ow = 0; ow < OW; ++ow) {
            bp[ow] = Cpt(-INFINITY);
            tp[ow] = -1;
          }
          for (int64_t i = 0; i < kh; ++i) {
            const int64_t h = h0 + i * dilh;
            if (h < 0 || h >= H) continue;
            const T* __restrict row = in + h * sH;
            for (int64_t j = 0; j < kw; ++j) {
              // Outputs whose tap j falls inside the row: w = ow * strw + off in [0, W).
              const int64_t off = j * dilw - padw;
              const int64_t lo = off >= 0 ? 0 : (-off + strw - 1) / strw;
              const int64_t hi = std::min<int64_t>(OW, W - off <= 0 ? 0 : (W - 1 - off) / strw + 1);
              const int32_t t = int32_t(i * kw + j);
              for (int64_t ow = lo; ow < hi; ++ow) {
                const Cpt v = Cpt(row[(ow * strw + off) * sW]);
                const Cpt cur = bp[ow];
                // The first tap wins (an empty best), then a larger value or the first NaN
                // (which then stays); ties keep the earlier tap. Bitwise, not &&: branches
                // would mispredict on half of random data.
                const bool take = (tp[ow] < 0) | (((v > cur) | (v != v)) & (cur == cur));
                bp[ow] = take ? v : cur;
                tp[ow] = take ? t : tp[ow];
              }
            }
          }
          const int64_t o = (plane * OH + oh) * OW;
          for (int64_t ow = 0; ow < OW; ++ow) {
            const int32_t t = tp[ow];
            py[o + ow] = store_cast<T>(bp[ow]);
            pi[o + ow] = t < 0 ? -1 : (h0 + (t / kw) * dilh) * W + ow * strw - padw + (t % kw) * dilw;
          }
        }
      }
    });
  });
}

// Forward (Adjoint = false): y = window sums / (kh * kw). Backward (Adjoint = true): each
// output gradient is spread over its window; `a` is the gradient, `b` the input gradient.
template <bool Adjoint>
void avg_pool(const Tensor& a, Tensor& b, const PoolGeometry& P) {
  const Tensor& big = Adjoint ? b : a;    // [N, C, H, W]
  const Tensor& small = Adjoint ? a : b;  // [N, C, OH, OW]
  const int64_t N = big.size(0), C = big.size(1), H = big.size(2), W = big.size(3);
  const int64_t OH = small.size(2), OW = small.size(3);
  dispatch_floating(a.dtype(), "avg_pool2d", [&]<class T>() {
    using Cpt = compute_t<T>;
    const Cpt scale = Cpt(1) / Cpt(P.kh * P.kw);
    const T* pa = static_cast<const T*>(a.data());
    T* pb = static_cast<T*>(b.data());
    const int64_t sN = a.stride(0), sC = a.stride(1), sH = a.stride(2), sW = a.stride(3);
    parallel_for(0, N * C, 1, [&](int64_t lo, int64_t hi) {
      std::vector<Cpt> acc(Adjoint ? size_t(H * W) : 0);
      for (int64_t plane = lo; plane < hi; ++plane) {
        const int64_t n = plane / C, ch = plane % C;
        std::fill(acc.begin(), acc.end(), Cpt(0));
        for (int64_t oh = 0; oh < OH; ++oh)
          for (int64_t ow = 0; ow < OW; ++ow) {
            Cpt s = 0;
            const Cpt gy = Adjoint ? Cpt(pa[n * sN + ch * sC + oh * sH + ow * sW]) * scale : 0;
            for (int64_t i = 0; i < P.kh; ++i) {
              const int64_t h = oh * P.sh - P.ph + i * P.dh;
              if (h < 0 || h >= H) continue;
              for (int64_t j = 0; j < P.kw; ++j) {
                const int64_t w = ow * P.sw - P.pw + j * P.dw;
                if (w < 0 || w >= W) continue;
                if constexpr (Adjoint) acc[size_t(h * W + w)] += gy;
                else s += Cpt(pa[n * sN + ch * sC + h * sH + w * sW]);
              }
            }
            if constexpr (!Adjoint) pb[(plane * OH + oh) * OW + ow] = store_cast<T>(s * scale);
          }
        if constexpr (Adjoint)
          for (int64_t k = 0; k < H * W; ++k) pb[plane * H * W + k] = store_cast<T>(acc[size_t(k)]);
      }
    });
  });
}

}  // namespace

PACER_KERNEL(max_pool2d, CPU, max_pool_kernel);
PACER_KERNEL(avg_pool2d, CPU, [](OpCall& c) { avg_pool<false>(c.in(0), c.out(0), pool_geometry(c.attrs)); });
PACER_KERNEL(avg_pool2d_backward, CPU, [](OpCall& c) { avg_pool<true>(c.in(0), c.out(0), pool_geometry(c.attrs)); });

}  // namespace pacer::ops::cpu
