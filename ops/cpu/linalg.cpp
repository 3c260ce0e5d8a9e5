// CPU kernels of mm, bmm and linear on top of cpu::gemm.
#include "ops/cpu/gemm.h"
#include "ops/cpu/loops.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

Tensor matrix(const Tensor& t, int64_t batch) {
  return make_view(t, {t.size(1), t.size(2)}, {t.stride(1), t.stride(2)}, t.storage_offset() + batch * t.stride(0));
}

void mm_kernel(OpCall& c) { gemm(c.in(0), c.in(1), c.out(0), 1.0, 0.0); }

// Batches run one after another; each GEMM splits itself across the pool when it is large
// enough (ops/cpu/gemm.cpp).
void bmm_kernel(OpCall& c) {
  for (int64_t i = 0; i < c.out(0).size(0); ++i) {
    Tensor o = matrix(c.out(0), i);
    gemm(matrix(c.in(0), i), matrix(c.in(1), i), o, 1.0, 0.0);
  }
}

// y = x @ w^T + b: the bias is broadcast into y first and the GEMM accumulates (beta = 1).
void linear_kernel(OpCall& c) {
  Tensor& y = c.out(0);
  const Tensor& w = c.in(1);
  Tensor wt = make_view(w, {w.size(1), w.size(0)}, {w.stride(1), w.stride(0)}, w.storage_offset());
  const bool has_bias = c.inputs.size() > 2 && c.in(2).defined();
  if (has_bias) {
    const Tensor& b = c.in(2);
    dispatch_dtype(y.dtype(), [&]<class T>() { cpu_kernel<T, T>(y, {&b}, [](compute_t<T> v) { return v; }); });
  }
  gemm(c.in(0), wt, y, 1.0, has_bias ? 1.0 : 0.0);
}

}  // namespace

PACER_KERNEL(mm, CPU, mm_kernel);
PACER_KERNEL(bmm, CPU, bmm_kernel);
PACER_KERNEL(linear, CPU, linear_kernel);

}  // namespace pacer::ops::cpu
