#pragma once
// What the two batch-norm kernel files share (internal to ops/cuda): ops/cuda/batch_norm.cu
// (the op's kernels, any layout) and ops/cuda/batch_norm_nhwc.cu (the vectorized channels-last
// kernels, also behind the graph's fused nodes). The affine parameters and their gradients are
// of the data's type, or float32 beside half data (mixed precision keeps them f32).

#include "core/error.h"
#include "core/tensor.h"
#include "ops/cuda/launch.cuh"

namespace pacer::ops::cuda::bn {

// A batch norm's affine parameter at channel c (`none` when absent): of the data's type T, or
// float32 beside half data (`f32`: mixed precision keeps the parameters f32); and the store
// of a parameter gradient in the same type.
template <class T, class A>
__device__ __forceinline__ A param_at(const void* p, bool f32, int64_t c, A none) {
  if (!p) return none;
  return f32 ? A(static_cast<const float*>(p)[c]) : A(compute_t<T>(static_cast<const T*>(p)[c]));
}
template <class T, class A>
__device__ __forceinline__ void store_param(void* p, bool f32, int64_t c, A v) {
  if (f32) static_cast<float*>(p)[c] = float(v);
  else static_cast<T*>(p)[c] = T(compute_t<T>(v));
}

// One thread per channel: dw, db and the dx coefficients k1 = w * inv, mean(dy), k2.
template <class T, class A>
__global__ void grad_finalize_kernel(int64_t C, int64_t splits, int64_t M, const A* __restrict__ psdy,
                                     const A* __restrict__ psdyx, const void* weight, bool f32_params,
                                     const A* __restrict__ invstd, void* dw, void* db, A* __restrict__ coef) {
  const int64_t step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < C; c += step) {
    A sdy = A(0), sdyx = A(0);
    for (int64_t sp = 0; sp < splits; ++sp) {
      sdy += psdy[c * splits + sp];
      sdyx += psdyx[c * splits + sp];
    }
    const A inv = invstd[c];
    store_param<T, A>(dw, f32_params, c, sdyx * inv);
    store_param<T, A>(db, f32_params, c, sdy);
    coef[c] = param_at<T, A>(weight, f32_params, c, A(1)) * inv;  // k1
    coef[C + c] = sdy / A(M);                                      // mean(dy)
    coef[2 * C + c] = sdyx * inv * inv / A(M);                     // k2
  }
}

template <class U>
const U* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const U*>(t.data()) : nullptr;
}

inline const void* raw_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

// Whether the affine parameters are float32 beside half data x (else of x's dtype; the op's
// infer allows nothing else).
inline bool f32_params(const Tensor& x, const Tensor& w, const Tensor& b = Tensor()) {
  const bool f32 = w.defined() && w.dtype() == DType::F32 && (x.dtype() == DType::F16 || x.dtype() == DType::BF16);
  const DType p = f32 ? DType::F32 : x.dtype();
  PACER_CHECK((!w.defined() || w.dtype() == p) && (!b.defined() || b.dtype() == p),
              "batch norm: expected the weight and bias as {} (beside {} data), got {} and {}", p, x.dtype(),
              w.defined() ? dtype_name(w.dtype()) : "none", b.defined() ? dtype_name(b.dtype()) : "none");
  return f32;
}

struct Dims {
  int64_t N, C, S, M;
};

inline Dims dims_of(const Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t S = N * C > 0 ? x.numel() / (N * C) : 0;
  return {N, C, S, N * S};
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace pacer::ops::cuda::bn
