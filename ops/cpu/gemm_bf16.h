#pragma once
/// Native bf16 GEMM for x86-64 CPUs with AVX512_BF16 (VDPBF16PS): bf16 operands, f32
/// accumulation and f32 output. The kernels are compiled with function-level target
/// attributes, so this header and its .cpp build for any x86-64 baseline; call
/// gemm_bf16 only when bf16_gemm_available() says the running CPU has the instructions.

#include <cstdint>

#include "core/half.h"

namespace pacer::ops::cpu {

/// True when the CPU (and OS, for the zmm state) supports avx512f + avx512bw + avx512vl +
/// avx512_bf16. Checked once with CPUID, then cached.
bool bf16_gemm_available();

/// Row-major C (f32, m x n, row stride ldc) = alpha * op(A) op(B) + beta * C.
/// op(A) is m x k: A is stored m x k (row stride lda), or k x m when trans_a.
/// op(B) is k x n: B is stored k x n (row stride ldb), or n x k when trans_b.
/// beta == 0 means C is not read (it may hold NaN). Products accumulate in f32.
/// Multi-threaded through pacer::parallel_for (runs serially inside a parallel region).
/// Precondition: bf16_gemm_available().
void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const BFloat16* a, int64_t lda,
               const BFloat16* b, int64_t ldb, float* c, int64_t ldc, float alpha, float beta);

}  // namespace pacer::ops::cpu
