#include "ops/cpu/gemm.h"

#include <cblas.h>

#include "ops/api.h"
#include "ops/cpu/gemm_bf16.h"
#include "ops/cpu/loops.h"

namespace pacer::ops::cpu {

namespace {

// OpenBLAS runs single-threaded and the pool splits large products between its threads
// (DESIGN §2: one owner of CPU parallelism). With OpenBLAS's own threads, its workers spin
// (sched_yield) for a while after every GEMM, taking a core from the im2col, batch-norm and
// pointwise work that follows: 18% of a ResNet-50 CPU step went to that spinning. This
// applies to the whole process (OPENBLAS_NUM_THREADS is overridden; PACER_NUM_THREADS rules).
struct BlasThreads {
  BlasThreads() { openblas_set_num_threads(1); }
} g_blas_threads;

struct BlasOperand {
  Tensor t;
  CBLAS_TRANSPOSE trans = CblasNoTrans;
  int64_t ld = 0;
};

// Row-major (NoTrans, ld = row stride) or column-major (Trans, ld = column stride) without
// copying; anything else is made dense first.
BlasOperand as_blas(const Tensor& x) {
  const int64_t rows = x.size(0), cols = x.size(1);
  const int64_t s0 = x.stride(0), s1 = x.stride(1);
  if ((s1 == 1 || cols == 1) && s0 >= std::max<int64_t>(cols, 1)) return {x, CblasNoTrans, s0};
  if ((s0 == 1 || rows == 1) && s1 >= std::max<int64_t>(rows, 1)) return {x, CblasTrans, s1};
  Tensor d = materialize(x);
  return {d, CblasNoTrans, std::max<int64_t>(cols, 1)};
}

template <class T>
void blas_call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, double alpha, const T* a,
               int64_t lda, const T* b, int64_t ldb, double beta, T* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), float(alpha), a, int(lda), b, int(ldb), float(beta), c,
                int(ldc));
  } else {
    cblas_dgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
  }
}

// Products below this many multiply-adds run on the calling thread: waking a worker costs
// more than it saves.
constexpr int64_t kSplitMacs = int64_t(1) << 18;

template <class T>
void blas(const Tensor& a, const Tensor& b, Tensor& c, double alpha, double beta) {
  BlasOperand A = as_blas(a), B = as_blas(b);
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  const int64_t ldc = std::max<int64_t>(c.stride(0), std::max<int64_t>(n, 1));
  const T* pa = A.t.template data_ptr<T>();
  const T* pb = B.t.template data_ptr<T>();
  T* pc = c.template data_ptr<T>();
  if (num_threads() == 1 || in_parallel_region() || m * n * k < kSplitMacs) {
    blas_call<T>(A.trans, B.trans, m, n, k, alpha, pa, A.ld, pb, B.ld, beta, pc, ldc);
    return;
  }
  // Split C along its longer side into blocks of whole 16-wide (columns) or 8-high (rows)
  // panels, so every thread runs OpenBLAS's full-width micro-kernels.
  const bool split_columns = n >= m;
  const int64_t panel = split_columns ? 16 : 8, extent = split_columns ? n : m;
  const int64_t panels = (extent + panel - 1) / panel;
  parallel_for(0, panels, 1, [&](int64_t p0, int64_t p1) {
    const int64_t lo = p0 * panel, hi = std::min(extent, p1 * panel);
    if (split_columns) {
      const T* bj = pb + (B.trans == CblasNoTrans ? lo : lo * B.ld);
      blas_call<T>(A.trans, B.trans, m, hi - lo, k, alpha, pa, A.ld, bj, B.ld, beta, pc + lo, ldc);
    } else {
      const T* ai = pa + (A.trans == CblasNoTrans ? lo * A.ld : lo);
      blas_call<T>(A.trans, B.trans, hi - lo, n, k, alpha, ai, A.ld, pb, B.ld, beta, pc + lo * ldc, ldc);
    }
  });
}

Tensor to_f32(const Tensor& x) {
  Tensor out = empty(x.sizes(), {.dtype = DType::F32});
  dispatch_dtype(x.dtype(), [&]<class T>() { cpu_kernel<float, T>(out, {&x}, [](compute_t<T> v) { return float(v); }); });
  return out;
}

}  // namespace

template <class T>
void gemm_on_thread(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
                    int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  blas_call<T>(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a, lda, b, ldb,
               beta, c, ldc);
}
template void gemm_on_thread<float>(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*,
                                    int64_t, float, float*, int64_t);
template void gemm_on_thread<double>(bool, bool, int64_t, int64_t, int64_t, const double*, int64_t, const double*,
                                     int64_t, double, double*, int64_t);

void gemm(const Tensor& a, const Tensor& b, Tensor& c, double alpha, double beta) {
  PACER_CHECK(c.stride(1) == 1 || c.size(1) == 1, "gemm: the output must be dense in its last dim");
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  if (m == 0 || n == 0) return;
  constexpr int64_t kBlasMax = (int64_t(1) << 31) - 1;  // BLAS takes 32-bit sizes
  PACER_CHECK(m <= kBlasMax && n <= kBlasMax && k <= kBlasMax,
              "gemm: sizes m={} n={} k={} exceed the 32-bit range BLAS accepts", m, n, k);
  switch (c.dtype()) {
    case DType::F32:
      if (k == 0) break;
      return blas<float>(a, b, c, alpha, beta);
    case DType::F64:
      if (k == 0) break;
      return blas<double>(a, b, c, alpha, beta);
    case DType::BF16:
      // Native bf16 x bf16 -> f32 kernel (AVX512_BF16) when the CPU has it; else the f32 path below.
      if (k > 0 && a.dtype() == DType::BF16 && b.dtype() == DType::BF16 && bf16_gemm_available()) {
        BlasOperand A = as_blas(a), B = as_blas(b);
        Tensor cf = beta == 0 ? empty(c.sizes(), {.dtype = DType::F32}) : to_f32(c);  // beta 0: cf is not read
        gemm_bf16(A.trans == CblasTrans, B.trans == CblasTrans, m, n, k, A.t.data_ptr<BFloat16>(), A.ld,
                  B.t.data_ptr<BFloat16>(), B.ld, cf.data_ptr<float>(), std::max<int64_t>(n, 1), float(alpha),
                  float(beta));
        cpu_kernel<BFloat16, float>(c, {&cf}, [](float v) { return v; });
        return;
      }
      [[fallthrough]];
    case DType::F16: {
      // Storage type only (DESIGN §2): compute in f32 and round once.
      // zeros, not empty: with k = 0 no product is written and C must come out as 0.
      Tensor cf = beta == 0 ? zeros(c.sizes(), {.dtype = DType::F32}) : to_f32(c);
      if (k > 0) blas<float>(to_f32(a), to_f32(b), cf, alpha, beta);
      dispatch_dtype(c.dtype(), [&]<class T>() { cpu_kernel<T, float>(c, {&cf}, [](float v) { return v; }); });
      return;
    }
    default:
      break;
  }
  // Integers (and k == 0): a direct loop; exact for integers.
  dispatch_dtype(c.dtype(), [&]<class T>() {
    using C = compute_t<T>;
    using A = std::conditional_t<std::is_floating_point_v<C>, double, int64_t>;
    const T* pa = static_cast<const T*>(a.data());
    const T* pb = static_cast<const T*>(b.data());
    T* pc = static_cast<T*>(c.data());
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        A acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += A(C(pa[i * a.stride(0) + p * a.stride(1)])) * A(C(pb[p * b.stride(0) + j * b.stride(1)]));
        T* out = pc + i * c.stride(0) + j * c.stride(1);
        *out = store_cast<T>(A(alpha) * acc + (beta == 0 ? A(0) : A(beta) * A(C(*out))));
      }
  });
}

}  // namespace pacer::ops::cpu
