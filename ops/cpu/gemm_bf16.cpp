#include "ops/cpu/gemm_bf16.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define PACER_BF16_X86 1
#else
#define PACER_BF16_X86 0
#endif

namespace pacer::ops::cpu {

#if PACER_BF16_X86

namespace {

// ---------------------------------------------------------------------------------------
// Design (BLIS-style):
//  * op(B) is packed per (KC x NC) block into strips of NR = 32 columns. VDPBF16PS
//    multiplies adjacent bf16 pairs, so a strip stores, for each k-pair q, 32 columns x
//    (k = 2q, k = 2q + 1): 64 bf16 = two zmm registers. Columns past n and the missing
//    partner of an odd k are zero.
//  * op(A) is packed per (MC x KC) block into panels of MR = 12 rows: for each k-pair q,
//    12 dwords (the pair of row i as one 32-bit value), broadcast by the kernel.
//  * The micro-kernel keeps an R x (16 * NV) tile of C in R * NV zmm accumulators
//    (R <= 12, NV <= 2: 24 accumulators + 2 B registers); row and column edges are handled
//    by instantiating R and NV and by masked loads/stores of C.
//  * Threads: each task computes a rectangle of C (split over rows, else columns) or a
//    slice of k (reduced afterwards) with its own thread-local packing buffers.
// ---------------------------------------------------------------------------------------

constexpr int64_t kMR = 12;    // rows per micro-tile
constexpr int64_t kNR = 32;    // columns per micro-tile / B strip
constexpr int64_t kKC = 256;   // k per cache block (even)
constexpr int64_t kMC = 144;   // rows per A block (multiple of kMR)
constexpr int64_t kNC = 1024;  // columns per B block (multiple of kNR)

#define PACER_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Operand descriptor: element accessors for op(A) (m x k) and op(B) (k x n).
struct Operands {
  bool ta, tb;
  const uint16_t* a;
  int64_t lda;
  const uint16_t* b;
  int64_t ldb;
};

// 64-byte aligned scratch that grows on demand (one per thread, reused across calls).
struct Scratch {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> ptr;
  size_t bytes = 0;
  void* get(size_t need) {
    if (need > bytes) {
      size_t sz = (need + 63) / 64 * 64;
      void* p = std::aligned_alloc(64, sz);
      if (!p) throw std::bad_alloc();
      ptr.reset(p);
      bytes = sz;
    }
    return ptr.get();
  }
};

inline uint32_t load_u32(const uint16_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Packs op(A)[i0 : i0 + mc, p0 : p0 + kc] into panels of kMR rows; panel t starts at
// dst + t * kp * kMR (kp = ceil(kc / 2)). Rows past mc in the last panel are left unset
// (the kernel for that panel reads only the valid rows).
PACER_BF16_TARGET void pack_a(const Operands& op, int64_t i0, int64_t mc, int64_t p0, int64_t kc, uint32_t* dst) {
  const int64_t kp = (kc + 1) / 2, kfull = kc / 2;
  for (int64_t t = 0; t * kMR < mc; ++t) {
    uint32_t* panel = dst + t * kp * kMR;
    const int64_t rows = std::min(kMR, mc - t * kMR);
    const int64_t ib = i0 + t * kMR;
    if (!op.ta) {
      // A row-major: the pair (p, p + 1) of a row is one contiguous dword.
      for (int64_t i = 0; i < rows; ++i) {
        const uint16_t* src = op.a + (ib + i) * op.lda + p0;
        uint32_t* d = panel + i;
        int64_t q = 0;
        for (; q < kfull; ++q) d[q * kMR] = load_u32(src + 2 * q);
        if (kc & 1) d[q * kMR] = src[2 * q];
      }
    } else {
      // A stored k x m: rows p and p + 1 are contiguous in i; interleave them 16 bits at a time.
      const __m512i lo_idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38,
                                              6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
      const __mmask32 lmask = (__mmask32)((1u << rows) - 1);
      const __mmask16 smask = (__mmask16)((1u << rows) - 1);
      for (int64_t q = 0; q < kp; ++q) {
        const uint16_t* r0 = op.a + (p0 + 2 * q) * op.lda + ib;
        __m512i v0 = _mm512_maskz_loadu_epi16(lmask, r0);
        __m512i v1 = (2 * q + 1 < kc) ? _mm512_maskz_loadu_epi16(lmask, r0 + op.lda) : _mm512_setzero_si512();
        _mm512_mask_storeu_epi32(panel + q * kMR, smask, _mm512_permutex2var_epi16(v0, lo_idx, v1));
      }
    }
  }
}

// Packs op(B)[p0 : p0 + kc, j0 : j0 + nc] into strips of kNR columns; strip s starts at
// dst + s * kp * 2 * kNR. Columns past nc and the odd-k partner are zero.
PACER_BF16_TARGET void pack_b(const Operands& op, int64_t p0, int64_t kc, int64_t j0, int64_t nc, uint16_t* dst) {
  const int64_t kp = (kc + 1) / 2;
  const __m512i lo_idx = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38, 6,
                                          37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
  const __m512i hi_idx = _mm512_set_epi16(63, 31, 62, 30, 61, 29, 60, 28, 59, 27, 58, 26, 57, 25, 56, 24, 55, 23, 54,
                                          22, 53, 21, 52, 20, 51, 19, 50, 18, 49, 17, 48, 16);
  for (int64_t s = 0; s * kNR < nc; ++s) {
    uint16_t* strip = dst + s * kp * 2 * kNR;
    const int64_t cols = std::min(kNR, nc - s * kNR);
    const int64_t jb = j0 + s * kNR;
    if (!op.tb) {
      // B row-major (k x n): interleave rows p and p + 1.
      const __mmask32 lmask = cols == 32 ? ~__mmask32(0) : (__mmask32)((1u << cols) - 1);
      for (int64_t q = 0; q < kp; ++q) {
        const uint16_t* r0 = op.b + (p0 + 2 * q) * op.ldb + jb;
        __m512i v0 = _mm512_maskz_loadu_epi16(lmask, r0);
        __m512i v1 = (2 * q + 1 < kc) ? _mm512_maskz_loadu_epi16(lmask, r0 + op.ldb) : _mm512_setzero_si512();
        _mm512_store_si512(strip + q * 64, _mm512_permutex2var_epi16(v0, lo_idx, v1));
        _mm512_store_si512(strip + q * 64 + 32, _mm512_permutex2var_epi16(v0, hi_idx, v1));
      }
    } else {
      // B stored n x k: the pair (p, p + 1) of a column is one contiguous dword.
      uint32_t* d32 = reinterpret_cast<uint32_t*>(strip);
      const int64_t kfull = kc / 2;
      for (int64_t j = 0; j < cols; ++j) {
        const uint16_t* src = op.b + (jb + j) * op.ldb + p0;
        int64_t q = 0;
        for (; q < kfull; ++q) d32[q * kNR + j] = load_u32(src + 2 * q);
        if (kc & 1) d32[q * kNR + j] = src[2 * q];
      }
      if (cols < kNR)
        for (int64_t q = 0; q < kp; ++q)
          for (int64_t j = cols; j < kNR; ++j) d32[q * kNR + j] = 0;
    }
  }
}

// C[0:R, 0:16*NV] (last vector masked by `mask`) = alpha * op(A) Bp + beta * C (C unread
// when beta == 0). Packed A (kDirect false): `a` is an A panel of uint32 pairs. Direct A
// (kDirect true, row-major A only): `a` points at the row-major rows (stride `lda`), read
// in place; when `odd` the last pair has only its first element (the partner is zero).
template <int R, int NV, bool kDirect>
PACER_BF16_TARGET void micro_kernel(int64_t kp, const uint16_t* __restrict a, int64_t lda, bool odd,
                                    const uint16_t* __restrict bp, float* __restrict c, int64_t ldc, __mmask16 mask,
                                    float alpha, float beta) {
  __m512 acc[R][NV];
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  // One k-pair: B row-pair loads, then R broadcasts of A pairs (A_PAIR(i) gives row i's dword).
  // A macro, not a lambda: lambdas do not inherit the function's target attribute.
#define PACER_BF16_STEP(Q, A_PAIR)                                                                      \
  do {                                                                                                  \
    __m512i bv[NV];                                                                                     \
    _Pragma("GCC unroll 2") for (int v = 0; v < NV; ++v) bv[v] =                                        \
        _mm512_load_si512(bp + (Q) * 2 * kNR + v * 32);                                                 \
    _Pragma("GCC unroll 12") for (int i = 0; i < R; ++i) {                                              \
      const __m512i av = _mm512_set1_epi32(int(A_PAIR(i)));                                             \
      _Pragma("GCC unroll 2") for (int v = 0; v < NV; ++v) acc[i][v] =                                  \
          _mm512_dpbf16_ps(acc[i][v], (__m512bh)av, (__m512bh)bv[v]);                                   \
    }                                                                                                   \
  } while (0)
  if constexpr (!kDirect) {
    const uint32_t* ap = reinterpret_cast<const uint32_t*>(a);
#define PACER_A_PACKED(i) ap[q * kMR + (i)]
    for (int64_t q = 0; q < kp; ++q) PACER_BF16_STEP(q, PACER_A_PACKED);
#undef PACER_A_PACKED
  } else {
    const int64_t kfull = kp - (odd ? 1 : 0);
#define PACER_A_DIRECT(i) load_u32(a + (i) * lda + 2 * q)
    for (int64_t q = 0; q < kfull; ++q) PACER_BF16_STEP(q, PACER_A_DIRECT);
#undef PACER_A_DIRECT
#define PACER_A_TAIL(i) uint32_t(a[(i) * lda + 2 * kfull])
    if (odd) PACER_BF16_STEP(kfull, PACER_A_TAIL);
#undef PACER_A_TAIL
  }
#undef PACER_BF16_STEP
  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0) {
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) {
        const __mmask16 mk = v == NV - 1 ? mask : __mmask16(0xffff);
        _mm512_mask_storeu_ps(c + i * ldc + v * 16, mk, _mm512_mul_ps(acc[i][v], va));
      }
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) {
        const __mmask16 mk = v == NV - 1 ? mask : __mmask16(0xffff);
        float* p = c + i * ldc + v * 16;
        const __m512 old = _mm512_maskz_loadu_ps(mk, p);
        _mm512_mask_storeu_ps(p, mk, _mm512_fmadd_ps(acc[i][v], va, _mm512_mul_ps(old, vb)));
      }
  }
}

using Kernel = void (*)(int64_t, const uint16_t*, int64_t, bool, const uint16_t*, float*, int64_t, __mmask16, float,
                        float);

template <bool kDirect, int... Rs>
constexpr std::array<std::array<Kernel, 2>, sizeof...(Rs)> make_kernels(std::integer_sequence<int, Rs...>) {
  return {{{&micro_kernel<Rs + 1, 1, kDirect>, &micro_kernel<Rs + 1, 2, kDirect>}...}};
}
constexpr auto kPackedKernels = make_kernels<false>(std::make_integer_sequence<int, kMR>{});
constexpr auto kDirectKernels = make_kernels<true>(std::make_integer_sequence<int, kMR>{});

// Row-major A is read in place (no packing) when few B strips would reuse a packed A block.
constexpr int64_t kDirectMaxN = 2 * kNR;

// One task: C[i0 : i0 + m, j0 : j0 + n] = alpha * op(A)[i0.., p0 : p0 + k] op(B)[p0.., j0..]
// + beta * C, with c pointing at C[i0, j0].
void gemm_serial(const Operands& op, int64_t i0, int64_t m, int64_t j0, int64_t n, int64_t p0, int64_t k, float* c,
                 int64_t ldc, float alpha, float beta) {
  thread_local Scratch a_buf, b_buf;
  const int64_t nc_max = std::min(n, kNC), mc_max = std::min(m, kMC), kc_max = std::min(k, kKC);
  const int64_t kp_max = (kc_max + 1) / 2;
  auto* bpack = static_cast<uint16_t*>(b_buf.get(size_t(kp_max * 2 * kNR * ((nc_max + kNR - 1) / kNR)) * 2));
  auto* apack = static_cast<uint32_t*>(a_buf.get(size_t(kp_max * kMR * ((mc_max + kMR - 1) / kMR)) * 4));
  for (int64_t jc = 0; jc < n; jc += kNC) {
    const int64_t nc = std::min(kNC, n - jc);
    for (int64_t pc = 0; pc < k; pc += kKC) {
      const int64_t kc = std::min(kKC, k - pc), kp = (kc + 1) / 2;
      const float beta_blk = pc == 0 ? beta : 1.0f;
      pack_b(op, p0 + pc, kc, j0 + jc, nc, bpack);
      for (int64_t ic = 0; ic < m; ic += kMC) {
        const int64_t mc = std::min(kMC, m - ic);
        const bool direct = !op.ta && nc <= kDirectMaxN;
        if (!direct) pack_a(op, i0 + ic, mc, p0 + pc, kc, apack);
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int64_t nr = std::min(kNR, nc - jr);
          const int nv = nr > 16 ? 2 : 1;
          const int64_t last = nr - (nv - 1) * 16;
          const __mmask16 mask = last == 16 ? __mmask16(0xffff) : __mmask16((1u << last) - 1);
          const uint16_t* bp = bpack + (jr / kNR) * kp * 2 * kNR;
          for (int64_t ir = 0; ir < mc; ir += kMR) {
            const int64_t mr = std::min(kMR, mc - ir);
            float* ct = c + (ic + ir) * ldc + jc + jr;
            if (direct)
              kDirectKernels[mr - 1][nv - 1](kp, op.a + (i0 + ic + ir) * op.lda + p0 + pc, op.lda, (kc & 1) != 0, bp,
                                             ct, ldc, mask, alpha, beta_blk);
            else
              kPackedKernels[mr - 1][nv - 1](kp, reinterpret_cast<const uint16_t*>(apack + (ir / kMR) * kp * kMR), 0,
                                             false, bp, ct, ldc, mask, alpha, beta_blk);
          }
        }
      }
    }
  }
}

bool detect() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  if (!(ecx & (1u << 27))) return false;  // OSXSAVE
  uint32_t xlo, xhi;
  __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  if ((xlo & 0xe6u) != 0xe6u) return false;  // XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM state enabled
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool f = ebx & (1u << 16), bw = ebx & (1u << 30), vl = ebx & (1u << 31);
  if (!(f && bw && vl)) return false;
  __cpuid_count(7, 1, eax, ebx, ecx, edx);
  return eax & (1u << 5);  // AVX512_BF16
}

}  // namespace

bool bf16_gemm_available() {
  static const bool ok = detect();
  return ok;
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const BFloat16* a, int64_t lda,
               const BFloat16* b, int64_t ldb, float* c, int64_t ldc, float alpha, float beta) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == 0) {  // no products: C = beta * C (BLAS semantics, A and B unread)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0 ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  PACER_CHECK(bf16_gemm_available(), "gemm_bf16: this CPU lacks avx512f/avx512bw/avx512vl/avx512_bf16");
  static_assert(sizeof(BFloat16) == 2);
  const Operands op{trans_a, trans_b, reinterpret_cast<const uint16_t*>(a), lda, reinterpret_cast<const uint16_t*>(b),
                    ldb};

  // Thread plan: at most one task per pool thread, and none under ~1 MFLOP each.
  const double flops = 2.0 * double(m) * double(n) * double(k);
  int64_t tasks = in_parallel_region() ? 1 : num_threads();
  tasks = std::min<int64_t>(tasks, std::max<int64_t>(1, int64_t(flops / 1e6)));
  const int64_t mt = (m + kMR - 1) / kMR, nt = (n + kNR - 1) / kNR;
  enum { kRows, kCols, kDepth } split = kRows;
  if (tasks > 1) {
    if (mt >= 4 * tasks || (mt >= tasks && mt >= nt)) split = kRows;
    else if (nt >= tasks) split = kCols;
    else if (k >= 2 * kKC * tasks) split = kDepth;
    else if (mt >= tasks) split = kRows;
    else tasks = 1;
  }
  if (tasks == 1) return gemm_serial(op, 0, m, 0, n, 0, k, c, ldc, alpha, beta);

  std::vector<float> partial;  // k split: tasks 1.. write m x n partial products here
  if (split == kDepth) partial.resize(size_t((tasks - 1) * m * n));
  const int64_t kpairs = (k + 1) / 2;
  parallel_for(0, tasks, 1, [&](int64_t tb, int64_t te) {
    for (int64_t t = tb; t < te; ++t) {
      if (split == kRows) {
        const int64_t r0 = mt * t / tasks * kMR, r1 = std::min(m, mt * (t + 1) / tasks * kMR);
        if (r1 > r0) gemm_serial(op, r0, r1 - r0, 0, n, 0, k, c + r0 * ldc, ldc, alpha, beta);
      } else if (split == kCols) {
        const int64_t c0 = nt * t / tasks * kNR, c1 = std::min(n, nt * (t + 1) / tasks * kNR);
        if (c1 > c0) gemm_serial(op, 0, m, c0, c1 - c0, 0, k, c + c0, ldc, alpha, beta);
      } else {
        const int64_t p0 = std::min(k, kpairs * t / tasks * 2), p1 = std::min(k, kpairs * (t + 1) / tasks * 2);
        if (t == 0) {
          gemm_serial(op, 0, m, 0, n, p0, p1 - p0, c, ldc, alpha, beta);
        } else {
          float* dst = partial.data() + (t - 1) * m * n;
          if (p1 > p0) gemm_serial(op, 0, m, 0, n, p0, p1 - p0, dst, n, alpha, 0.0f);
          else std::fill(dst, dst + m * n, 0.0f);
        }
      }
    }
  });
  if (split == kDepth)
    for (int64_t t = 1; t < tasks; ++t) {
      const float* src = partial.data() + (t - 1) * m * n;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) c[i * ldc + j] += src[i * n + j];
    }
}

#else  // not x86: no native kernel

bool bf16_gemm_available() { return false; }

void gemm_bf16(bool, bool, int64_t, int64_t, int64_t, const BFloat16*, int64_t, const BFloat16*, int64_t, float*,
               int64_t, float, float) {
  PACER_FAIL("gemm_bf16: no native bf16 GEMM on this architecture");
}

#endif

}  // namespace pacer::ops::cpu
