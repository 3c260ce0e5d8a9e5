#pragma once
/// One GEMM entry for the CPU kernels: C = alpha * A @ B + beta * C on 2-D strided views,
/// through OpenBLAS for f32/f64 (transposed views pass as trans flags, not copies),
/// f32 BLAS with conversion for f16/bf16, and a plain loop for integers.

#include "core/tensor.h"

namespace pacer::ops::cpu {

/// a: [m, k], b: [k, n], c: [m, n] (c must be row-major contiguous in its last dim).
void gemm(const Tensor& a, const Tensor& b, Tensor& c, double alpha, double beta);

/// C = op(A) @ op(B) + beta * C on raw row-major f32 / f64 buffers, on the calling thread
/// (for kernels that split their work between threads themselves); op transposes when asked.
template <class T>
void gemm_on_thread(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                    int64_t ldb, T beta, T* c, int64_t ldc);

/// The linear op's kernel: y [m, n] = x [m, k] @ w [n, k]^T (+ bias [n], broadcast into y
/// first, then the GEMM accumulates). bias may be undefined. (ops/cpu/linalg.cpp)
void linear_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y);

}  // namespace pacer::ops::cpu
