// CUDA max / average pooling over [N, C, H, W], twins of ops/cpu/pool.cpp: the input is
// read through its strides, outputs are contiguous, one thread per output element. Window
// conventions are the CPU's: window (oh, ow) covers h = oh * sh - ph + i * dh (i < kh), the
// same for w; positions outside the input are skipped; avg divides by kh * kw (padding
// counted); max_pool2d's index is h * W + w of the first maximum in (i, j) order, a NaN wins
// (the first one met), and a window with no position inside the input gives -inf and -1.
// max_pool2d's backward is composed of public ops (scatter_add), so it needs no kernel here.
#include "ops/cuda/loops.cuh"
#include "ops/common/pool_geometry.h"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

// Sizes of the [N, C, H, W] and [N, C, OH, OW] sides and the strided side's strides.
struct PoolShape {
  int64_t C, H, W, OH, OW;
  int64_t sN, sC, sH, sW;  // strides (elements) of the operand read through its strides
};

// Products that must round on their own (nvcc would otherwise contract a * b + c into an
// FMA where the CPU rounds the product first).
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

template <class T>
__global__ void max_pool_kernel(int64_t total, const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ index,
                                PoolShape s, PoolGeometry P) {
  using Cpt = compute_t<T>;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = o % s.OW, oh = (o / s.OW) % s.OH, plane = o / (s.OW * s.OH);
    const T* in = x + (plane / s.C) * s.sN + (plane % s.C) * s.sC;
    Cpt best = Cpt(-INFINITY);
    int64_t at = -1;
    bool found_nan = false;
    for (int64_t i = 0; i < P.kh && !found_nan; ++i) {
      const int64_t h = oh * P.sh - P.ph + i * P.dh;
      if (h < 0 || h >= s.H) continue;
      for (int64_t j = 0; j < P.kw; ++j) {
        const int64_t w = ow * P.sw - P.pw + j * P.dw;
        if (w < 0 || w >= s.W) continue;
        const Cpt v = Cpt(in[h * s.sH + w * s.sW]);
        const bool is_nan = v != v;
        if (v > best || is_nan || at < 0) {
          best = v;
          at = h * s.W + w;
          if (is_nan) {  // NaN wins; stop
            found_nan = true;
            break;
          }
        }
      }
    }
    y[o] = store_value<T>(best);
    index[o] = at;
  }
}

// y[n, c, oh, ow] = (sum of the window in (i, j) order) * (1 / (kh * kw)).
template <class T>
__global__ void avg_pool_kernel(int64_t total, const T* __restrict__ x, T* __restrict__ y, PoolShape s, PoolGeometry P,
                                compute_t<T> scale) {
  using Cpt = compute_t<T>;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ow = o % s.OW, oh = (o / s.OW) % s.OH, plane = o / (s.OW * s.OH);
    const T* in = x + (plane / s.C) * s.sN + (plane % s.C) * s.sC;
    Cpt sum = 0;
    for (int64_t i = 0; i < P.kh; ++i) {
      const int64_t h = oh * P.sh - P.ph + i * P.dh;
      if (h < 0 || h >= s.H) continue;
      for (int64_t j = 0; j < P.kw; ++j) {
        const int64_t w = ow * P.sw - P.pw + j * P.dw;
        if (w < 0 || w >= s.W) continue;
        sum += Cpt(in[h * s.sH + w * s.sW]);
      }
    }
    y[o] = store_value<T>(mul_rn(sum, scale));
  }
}

// The output rows oh whose window covers input row h (h = oh * stride - pad + i * dil for
// some 0 <= i < k): oh in [lo, hi], and (h + pad - oh * stride) a multiple of dil.
__device__ __forceinline__ void covering(int64_t h, int64_t k, int64_t stride, int64_t pad, int64_t dil, int64_t out,
                                         int64_t& lo, int64_t& hi) {
  const int64_t top = h + pad;                 // >= 0
  const int64_t first = top - (k - 1) * dil;  // oh * stride >= first
  lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  hi = top / stride;
  if (hi > out - 1) hi = out - 1;
}

// gx[n, c, h, w] = sum over the windows (oh, ow) covering (h, w), in increasing (oh, ow)
// order, of gy[n, c, oh, ow] * scale: the CPU's per-plane accumulation order exactly (a
// window covers a position at most once), so the sums round the same way.
template <class T>
__global__ void avg_pool_backward_kernel(int64_t total, const T* __restrict__ gy, T* __restrict__ gx, PoolShape s,
                                         PoolGeometry P, compute_t<T> scale) {
  using Cpt = compute_t<T>;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += int64_t(gridDim.x) * blockDim.x) {
    const int64_t w = o % s.W, h = (o / s.W) % s.H, plane = o / (s.W * s.H);
    const T* g = gy + (plane / s.C) * s.sN + (plane % s.C) * s.sC;
    int64_t oh_lo, oh_hi, ow_lo, ow_hi;
    covering(h, P.kh, P.sh, P.ph, P.dh, s.OH, oh_lo, oh_hi);
    covering(w, P.kw, P.sw, P.pw, P.dw, s.OW, ow_lo, ow_hi);
    Cpt acc = 0;
    for (int64_t oh = oh_lo; oh <= oh_hi; ++oh) {
      if ((h + P.ph - oh * P.sh) % P.dh != 0) continue;
      for (int64_t ow = ow_lo; ow <= ow_hi; ++ow) {
        if ((w + P.pw - ow * P.sw) % P.dw != 0) continue;
        acc += mul_rn(Cpt(g[oh * s.sH + ow * s.sW]), scale);
      }
    }
    gx[o] = store_value<T>(acc);
  }
}

void max_pool2d_kernel(OpCall& c) {
  const Tensor& x = c.in(0);
  Tensor &y = c.out(0), &ix = c.out(1);
  const PoolGeometry P = pool_geometry(c.attrs);
  const PoolShape s{x.size(1), x.size(2), x.size(3), y.size(2), y.size(3),
                    x.stride(0), x.stride(1), x.stride(2), x.stride(3)};
  const int64_t total = y.numel();
  if (total == 0) return;
  dispatch_floating(x.dtype(), "max_pool2d", [&]<class T>() {
    max_pool_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(total, data_ptr<T>(x), data_ptr<T>(y),
                                                                     data_ptr<int64_t>(ix), s, P);
    PACER_CUDA_KERNEL_CHECK();
  });
}

void avg_pool2d_kernel(OpCall& c) {
  const Tensor& x = c.in(0);
  Tensor& y = c.out(0);
  const PoolGeometry P = pool_geometry(c.attrs);
  const PoolShape s{x.size(1), x.size(2), x.size(3), y.size(2), y.size(3),
                    x.stride(0), x.stride(1), x.stride(2), x.stride(3)};
  const int64_t total = y.numel();
  if (total == 0) return;
  dispatch_floating(x.dtype(), "avg_pool2d", [&]<class T>() {
    using Cpt = compute_t<T>;
    const Cpt scale = Cpt(1) / Cpt(P.kh * P.kw);
    avg_pool_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(total, data_ptr<T>(x), data_ptr<T>(y), s, P,
                                                                     scale);
    PACER_CUDA_KERNEL_CHECK();
  });
}

void avg_pool2d_backward_kernel(OpCall& c) {
  const Tensor& gy = c.in(0);  // [N, C, OH, OW], any strides
  Tensor& gx = c.out(0);       // [N, C, H, W], contiguous
  const PoolGeometry P = pool_geometry(c.attrs);
  const PoolShape s{gx.size(1), gx.size(2), gx.size(3), gy.size(2), gy.size(3),
                    gy.stride(0), gy.stride(1), gy.stride(2), gy.stride(3)};
  const int64_t total = gx.numel();
  if (total == 0) return;
  dispatch_floating(gy.dtype(), "avg_pool2d", [&]<class T>() {
    using Cpt = compute_t<T>;
    const Cpt scale = Cpt(1) / Cpt(P.kh * P.kw);
    avg_pool_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(total, data_ptr<T>(gy),
                                                                              data_ptr<T>(gx), s, P, scale);
    PACER_CUDA_KERNEL_CHECK();
  });
}

}  // namespace

PACER_KERNEL(max_pool2d, CUDA, max_pool2d_kernel);
PACER_KERNEL(avg_pool2d, CUDA, avg_pool2d_kernel);
PACER_KERNEL(avg_pool2d_backward, CUDA, avg_pool2d_backward_kernel);

}  // namespace pacer::ops::cuda
