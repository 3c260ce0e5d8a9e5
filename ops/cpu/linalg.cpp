// CPU kernels of mm, bmm and linear on top of cpu::gemm.
#include "ops/cpu/gemm.h"
#include "ops/cpu/loops.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

// y = x @ w^T + b: the bias is broadcast into y first and the GEMM accumulates (beta = 1).
void linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  Tensor wt = make_view(w, {w.size(1), w.size(0)}, {w.stride(1), w.stride(0)}, w.storage_offset());
  if (bias.defined())
    dispatch_dtype(y.dtype(), [&]<class T>() { cpu_kernel<T, T>(y, {&bias}, [](compute_t<T> v) { return v; }); });
  gemm(x, wt, y, 1.0, bias.defined() ? 1.0 : 0.0);
}

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

void linear_kernel(OpCall& c) {
  linear_forward(c.in(0), c.in(1), c.inputs.size() > 2 ? c.in(2) : Tensor(), c.out(0));
}

}  // namespace

PACER_KERNEL(mm, CPU, mm_kernel);
PACER_KERNEL(bmm, CPU, bmm_kernel);
PACER_KERNEL(linear, CPU, linear_kernel);

}  // namespace pacer::ops::cpu
