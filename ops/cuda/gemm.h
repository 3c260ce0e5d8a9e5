#pragma once
/// The GEMM entry of the CUDA kernels (internal to ops): cuBLASLt for the floating types,
/// with its epilogues (bias, ReLU, GELU) for the graph's epilogue-fusion pass, and a plain
/// kernel for the integer types. A Relu / BiasRelu epilogue without an algorithm runs as the
/// GEMM (with its bias) and then relu_rows. No cuBLAS header here: ops/cuda/gemm.cpp includes them.
///
/// Conventions (all ROW-MAJOR, as Pacer's tensors are):
///   C[b] (m x n, row stride ldc) = epilogue(alpha * op(A[b]) @ op(B[b]) + beta * C[b] + bias)
/// - op(A) is m x k. Not transposed: A is stored m x k with row stride lda (lda >= max(k, 1)).
///   Transposed: A is stored k x m with row stride lda (lda >= max(m, 1)), and op(A) = A^T.
/// - op(B) is k x n. Not transposed: B stored k x n, ldb >= max(n, 1). Transposed: B stored
///   n x k, ldb >= max(k, 1).
/// - C is m x n with ldc >= max(n, 1); its rows are dense.
/// - batch >= 1 matrices; stride_a / stride_b / stride_c are the element offsets between
///   consecutive matrices (0 broadcasts an operand, A or B only).
/// - bias (Bias / BiasRelu / BiasGelu): n elements, dense, of `dtype`, added to every row
///   (bias[j] to C[i, j]), before the activation. It must be 16-byte aligned.
/// - Gelu is cuBLASLt's GELU (the tanh approximation).
/// - Floating dtypes only (f32: TF32 Tensor Cores when pacer::cuda::allow_tf32(); f16 / bf16:
///   f32 accumulation; f64). Needs k >= 1 (callers handle the empty product). Runs on the
///   current stream of the current device.

#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"

namespace pacer::ops::cuda {

enum class Epilogue : uint8_t { None, Bias, Relu, BiasRelu, Gelu, BiasGelu };

void gemm_lt(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, DType dtype, double alpha, const void* a,
             int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, double beta, void* c,
             int64_t ldc, int64_t stride_c, int64_t batch, const void* bias = nullptr,
             Epilogue epilogue = Epilogue::None);

/// Integer (and bool) GEMM by a plain kernel, exact as the CPU's loop (int64 accumulation):
/// C[b][i, j] = sum_p A[b][i, p] * B[b][p, j] (+ bias[j] when bias != nullptr), every operand
/// given by element strides (A: sa_b, sa_m, sa_k; B: sb_b, sb_k, sb_n; C: sc_b, sc_m, sc_n;
/// bias: s_bias). Works for k == 0 (C = bias or 0). Any dtype; used for the non-floating ones.
void gemm_naive(DType dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a, int64_t sa_b, int64_t sa_m,
                int64_t sa_k, const void* b, int64_t sb_b, int64_t sb_k, int64_t sb_n, void* c, int64_t sc_b,
                int64_t sc_m, int64_t sc_n, const void* bias, int64_t s_bias);

/// C[i, j] = bias[j * s_bias] for the m x n row-major matrix C with row stride ldc (the bias
/// fallback of gemm_lt and linear: fill, then GEMM with beta = 1).
void fill_rows(DType dtype, void* c, int64_t m, int64_t n, int64_t ldc, const void* bias, int64_t s_bias);

/// c[i, j] = max(c[i, j], 0) over the m x n row-major matrix with row stride ldc (the ReLU
/// of a GEMM whose epilogue has no algorithm; ops/cuda/gemm_epilogue.cu).
void relu_rows(DType dtype, void* c, int64_t m, int64_t n, int64_t ldc);

/// y = a @ b for 2-d a [m, k], b [k, n] (any strides cuBLASLt takes, else copied) into a dense
/// fresh y [m, n]; with `relu`, y = relu(a @ b) through the RELU epilogue.
void matmul_into(const Tensor& a, const Tensor& b, Tensor& y, bool relu = false);
/// y = relu(x @ w^T + bias) for x [m, k], w [n, k], bias [n] (may be undefined) into a dense
/// fresh y [m, n]: one cuBLASLt matmul with the RELU_BIAS epilogue where it applies.
void linear_relu_into(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y);

/// Per-channel bias of a dense [N, C, S] tensor y (or [N, S, C] in memory when
/// `channels_last`): y[n, c, s] = bias[c * s_bias], or y[n, c, s] += bias[c * s_bias] (in
/// the compute type, rounded once) when `accumulate`. (Used by ops/cuda/conv.cpp.)
void channel_bias(DType dtype, void* y, int64_t N, int64_t C, int64_t S, const void* bias, int64_t s_bias,
                  bool accumulate, bool channels_last = false);

}  // namespace pacer::ops::cuda
