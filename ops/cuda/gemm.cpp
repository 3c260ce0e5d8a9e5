// CUDA kernels of mm, bmm and linear, and gemm_lt (ops/cuda/gemm.h): cuBLASLt matmuls on
// row-major Pacer tensors. cuBLASLt is column-major, so C = op(A) op(B) (row-major) runs as
// C^T = op(B)^T op(A)^T (column-major): B's memory is Lt's "A" and A's memory is Lt's "B".
// Transposed (column-major) views pass as transpose flags; other strides are copied by
// contiguous(). Descriptors and the heuristic's algorithm are cached per problem.
#include "ops/cuda/gemm.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "core/cuda/check.h"
#include "core/cuda/handles.h"
#include "core/cuda/library_check.h"
#include "core/cuda/stream.h"
#include "ops/api.h"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

constexpr size_t kMaxWorkspace = size_t(32) << 20;  // bound on the matmul's workspace
constexpr size_t kMaxCacheEntries = 4096;

cudaStream_t current_stream() { return static_cast<cudaStream_t>(pacer::cuda::current_stream().handle()); }

// Largest power of two (<= 256) dividing the byte address and, when `stride_bytes` != 0, the
// byte stride between batch matrices: the alignment every matrix of the operand keeps.
uint32_t alignment_of(const void* p, int64_t stride_bytes) {
  uint64_t bits = uint64_t(reinterpret_cast<uintptr_t>(p)) | uint64_t(256);
  if (stride_bytes != 0) bits |= uint64_t(stride_bytes < 0 ? -stride_bytes : stride_bytes);
  return uint32_t(bits & (~bits + 1));
}

struct GemmKey {
  int device;
  DType dtype;
  bool trans_a, trans_b, tf32;
  Epilogue epilogue;
  int64_t m, n, k, lda, ldb, ldc, stride_a, stride_b, stride_c, batch;
  uint32_t align_a, align_b, align_c, align_bias;  // align_bias: 0 without a bias epilogue

  auto tie() const {
    return std::tie(device, dtype, trans_a, trans_b, tf32, epilogue, m, n, k, lda, ldb, ldc, stride_a, stride_b,
                    stride_c, batch, align_a, align_b, align_c, align_bias);
  }
  bool operator<(const GemmKey& o) const { return tie() < o.tie(); }
};

// One cached problem: its descriptors and algorithm. The matmul descriptor's bias pointer
// is set per call, under `mu`.
struct GemmPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;  // Lt's A (our B), B (our A), C = D
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  bool found = false;  // false: the heuristic had no algorithm for this problem
  std::mutex mu;

  GemmPlan() = default;
  GemmPlan(const GemmPlan&) = delete;
  GemmPlan& operator=(const GemmPlan&) = delete;
  ~GemmPlan() {
    // Host-side objects only: destroying them needs no CUDA context. Statuses are ignored
    // (a destructor must not throw).
    if (la) (void)cublasLtMatrixLayoutDestroy(la);
    if (lb) (void)cublasLtMatrixLayoutDestroy(lb);
    if (lc) (void)cublasLtMatrixLayoutDestroy(lc);
    if (desc) (void)cublasLtMatmulDescDestroy(desc);
  }
};

struct PlanCache {
  std::mutex mu;
  std::map<GemmKey, std::shared_ptr<GemmPlan>> plans;
};

PlanCache& plan_cache() {
  static PlanCache* cache = new PlanCache;  // leaked: no teardown-order hazards at exit
  return *cache;
}

cudaDataType_t data_type(DType d) {
  switch (d) {
    case DType::F32: return CUDA_R_32F;
    case DType::F64: return CUDA_R_64F;
    case DType::F16: return CUDA_R_16F;
    case DType::BF16: return CUDA_R_16BF;
    default: break;
  }
  PACER_FAIL("gemm_lt: expected a floating dtype (float32, float64, float16, bfloat16), got {}", dtype_name(d));
}

cublasLtEpilogue_t lt_epilogue(Epilogue e) {
  switch (e) {
    case Epilogue::None: return CUBLASLT_EPILOGUE_DEFAULT;
    case Epilogue::Bias: return CUBLASLT_EPILOGUE_BIAS;
    case Epilogue::Relu: return CUBLASLT_EPILOGUE_RELU;
    case Epilogue::BiasRelu: return CUBLASLT_EPILOGUE_RELU_BIAS;
    case Epilogue::Gelu: return CUBLASLT_EPILOGUE_GELU;
    case Epilogue::BiasGelu: return CUBLASLT_EPILOGUE_GELU_BIAS;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

bool has_bias(Epilogue e) { return e == Epilogue::Bias || e == Epilogue::BiasRelu || e == Epilogue::BiasGelu; }

cublasLtMatrixLayout_t make_layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                                   int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  PACER_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, uint64_t(rows), uint64_t(cols), ld));
  if (batch > 1) {
    const int32_t count = int32_t(batch);
    PACER_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    PACER_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return l;
}

std::shared_ptr<GemmPlan> make_plan(const GemmKey& key, cublasLtHandle_t handle) {
  auto plan = std::make_shared<GemmPlan>();
  const cudaDataType_t type = data_type(key.dtype);
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  cudaDataType_t scale = CUDA_R_32F;
  if (key.dtype == DType::F64) {
    compute = CUBLAS_COMPUTE_64F;
    scale = CUDA_R_64F;
  } else if (key.dtype == DType::F32 && key.tf32) {
    compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  }
  PACER_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->desc, compute, scale));
  // Lt's A is our B (op = our trans_b), Lt's B is our A (op = our trans_a).
  const cublasOperation_t op_a = key.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = key.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  PACER_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  PACER_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  const cublasLtEpilogue_t epi = lt_epilogue(key.epilogue);
  PACER_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  if (has_bias(key.epilogue)) {
    // The heuristic does not dereference the bias pointer but derives the bias alignment it
    // may assume from its value: give it an address of the real bias's alignment (the real
    // pointer is set per call).
    const void* bias_like = reinterpret_cast<const void*>(uintptr_t(key.align_bias));
    PACER_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_like, sizeof(bias_like)));
  }
  // Column-major shapes: our B (k x n row-major) is n x k column-major, etc.
  plan->la = key.trans_b ? make_layout(type, key.k, key.n, key.ldb, key.batch, key.stride_b)
                         : make_layout(type, key.n, key.k, key.ldb, key.batch, key.stride_b);
  plan->lb = key.trans_a ? make_layout(type, key.m, key.k, key.lda, key.batch, key.stride_a)
                         : make_layout(type, key.k, key.m, key.lda, key.batch, key.stride_a);
  plan->lc = make_layout(type, key.n, key.m, key.ldc, key.batch, key.stride_c);

  cublasLtMatmulPreference_t pref = nullptr;
  PACER_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t max_ws = kMaxWorkspace;
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_ws,
                                                           sizeof(max_ws));
  // Lt's A is our B and vice versa; C and D share one pointer.
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_c}};
  for (const auto& [attr, value] : aligns)
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(value));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulAlgoGetHeuristic(handle, plan->desc, plan->la, plan->lb, plan->lc, plan->lc, pref, 1, &result,
                                        &returned);
  (void)cublasLtMatmulPreferenceDestroy(pref);
  if (st == CUBLAS_STATUS_SUCCESS && returned > 0 && result.state == CUBLAS_STATUS_SUCCESS) {
    plan->algo = result.algo;
    plan->workspace = result.workspaceSize;
    plan->found = true;
  } else if (st != CUBLAS_STATUS_NOT_SUPPORTED && st != CUBLAS_STATUS_SUCCESS &&
             key.epilogue != Epilogue::Relu && key.epilogue != Epilogue::BiasRelu) {
    PACER_CUBLAS_CHECK(st);  // a real failure, not "no algorithm": throw it (a ReLU epilogue has a fallback)
  }
  return plan;
}

std::shared_ptr<GemmPlan> find_plan(const GemmKey& key, cublasLtHandle_t handle) {
  PlanCache& cache = plan_cache();
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.plans.find(key);
    if (it != cache.plans.end()) return it->second;
  }
  std::shared_ptr<GemmPlan> plan = make_plan(key, handle);  // outside the lock (heuristics take time)
  std::lock_guard<std::mutex> lock(cache.mu);
  if (cache.plans.size() >= kMaxCacheEntries) cache.plans.clear();  // in-flight users keep their shared_ptr
  auto [it, inserted] = cache.plans.emplace(key, plan);
  return it->second;
}

}  // namespace

void gemm_lt(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, DType dtype, double alpha, const void* a,
             int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b, double beta, void* c,
             int64_t ldc, int64_t stride_c, int64_t batch, const void* bias, Epilogue epilogue) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  PACER_CHECK(k > 0, "gemm_lt: expected k >= 1, got {} (the caller handles the empty product)", k);
  PACER_CHECK(batch <= int64_t(INT32_MAX), "gemm_lt: batch count {} exceeds the 32-bit range cuBLASLt accepts", batch);
  PACER_CHECK(lda >= std::max<int64_t>(trans_a ? m : k, 1) && ldb >= std::max<int64_t>(trans_b ? k : n, 1) &&
                  ldc >= std::max<int64_t>(n, 1),
              "gemm_lt: leading dimensions lda={} ldb={} ldc={} too small for m={} n={} k={} (trans_a={}, trans_b={})",
              lda, ldb, ldc, m, n, k, trans_a, trans_b);
  PACER_CHECK(!has_bias(epilogue) || bias != nullptr, "gemm_lt: the epilogue needs a bias pointer");
  const int64_t es = int64_t(element_size(dtype));
  int device = 0;
  PACER_CUDA_CHECK(cudaGetDevice(&device));
  auto handle = static_cast<cublasLtHandle_t>(pacer::cuda::cublaslt_handle());
  const bool tf32 = dtype == DType::F32 && pacer::cuda::allow_tf32();
  if (batch == 1) stride_a = stride_b = stride_c = 0;  // unused: keep them out of the cache key
  const GemmKey key{device,
                    dtype,
                    trans_a,
                    trans_b,
                    tf32,
                    epilogue,
                    m,
                    n,
                    k,
                    lda,
                    ldb,
                    ldc,
                    stride_a,
                    stride_b,
                    stride_c,
                    batch,
                    alignment_of(a, stride_a * es),
                    alignment_of(b, stride_b * es),
                    alignment_of(c, stride_c * es),
                    has_bias(epilogue) ? alignment_of(bias, 0) : 0u};
  std::shared_ptr<GemmPlan> plan = find_plan(key, handle);
  if (!plan->found && (epilogue == Epilogue::Relu || epilogue == Epilogue::BiasRelu)) {
    // No algorithm with the ReLU: the GEMM (and its bias) first, then the ReLU over C.
    gemm_lt(trans_a, trans_b, m, n, k, dtype, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c, batch,
            bias, epilogue == Epilogue::BiasRelu ? Epilogue::Bias : Epilogue::None);
    for (int64_t i = 0; i < batch; ++i) relu_rows(dtype, static_cast<char*>(c) + i * stride_c * es, m, n, ldc);
    return;
  }
  if (!plan->found) {
    // No algorithm with this epilogue: a plain bias can be broadcast into C first.
    PACER_CHECK(epilogue == Epilogue::Bias && beta == 0.0,
                "gemm_lt: cuBLASLt has no algorithm for m={} n={} k={} batch={} dtype={} epilogue={} "
                "(trans_a={}, trans_b={}, lda={}, ldb={}, ldc={})",
                m, n, k, batch, dtype_name(dtype), int(epilogue), trans_a, trans_b, lda, ldb, ldc);
    for (int64_t i = 0; i < batch; ++i) fill_rows(dtype, static_cast<char*>(c) + i * stride_c * es, m, n, ldc, bias, 1);
    gemm_lt(trans_a, trans_b, m, n, k, dtype, alpha, a, lda, stride_a, b, ldb, stride_b, 1.0, c, ldc, stride_c, batch,
            nullptr, Epilogue::None);
    return;
  }
  void* ws = plan->workspace > 0 ? pacer::cuda::workspace(plan->workspace) : nullptr;
  const float alpha_f = float(alpha), beta_f = float(beta);
  const void* pa = dtype == DType::F64 ? static_cast<const void*>(&alpha) : static_cast<const void*>(&alpha_f);
  const void* pb = dtype == DType::F64 ? static_cast<const void*>(&beta) : static_cast<const void*>(&beta_f);
  // The bias pointer lives in the shared descriptor: set it and launch under the plan's lock.
  std::unique_lock<std::mutex> lock(plan->mu, std::defer_lock);
  if (has_bias(epilogue)) {
    lock.lock();
    PACER_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  }
  PACER_CUBLAS_CHECK(cublasLtMatmul(handle, plan->desc, pa, b, plan->la, a, plan->lb, pb, c, plan->lc, c, plan->lc,
                                    &plan->algo, ws, plan->workspace, current_stream()));
}

namespace {

// A [batch, rows, cols] operand as cuBLASLt takes it: row-major (trans = false, ld = row
// stride) or column-major (trans = true, ld = column stride), with a batch stride.
struct Operand {
  Tensor t;
  bool trans = false;
  int64_t ld = 0, batch_stride = 0;
};

bool fits(const Tensor& x, Operand& o) {
  const int64_t rows = x.size(1), cols = x.size(2), s0 = x.stride(1), s1 = x.stride(2);
  o.t = x;
  o.batch_stride = x.size(0) > 1 ? x.stride(0) : 0;
  if (x.size(0) > 1 && o.batch_stride <= 0) return false;  // broadcast batches: copied (stride 0 is not relied on)
  if ((s1 == 1 || cols == 1) && s0 >= std::max<int64_t>(cols, 1)) {
    o.trans = false;
    o.ld = s0;
    return true;
  }
  if ((s0 == 1 || rows == 1) && s1 >= std::max<int64_t>(rows, 1)) {
    o.trans = true;
    o.ld = s1;
    return true;
  }
  return false;
}

Operand as_operand(const Tensor& x) {
  Operand o;
  if (fits(x, o)) return o;
  Tensor d = contiguous(x);
  const int64_t rows = x.size(1), cols = x.size(2);
  o.t = d;
  o.trans = false;
  o.ld = std::max<int64_t>(cols, 1);
  o.batch_stride = rows * cols;
  return o;
}

// y [batch, m, n] (dense, fresh) = a [batch, m, k] @ b [batch, k, n] (+ bias [n]), and its
// ReLU with `relu` (floating types).
void batched_matmul(const Tensor& a, const Tensor& b, Tensor& y, const Tensor& bias, bool relu = false) {
  const int64_t batch = a.size(0), m = a.size(1), k = a.size(2), n = b.size(2);
  const DType dt = y.dtype();
  if (batch == 0 || m == 0 || n == 0) return;
  const bool with_bias = bias.defined();
  PACER_CHECK(!relu || is_floating(dt), "matmul with ReLU: expected a floating dtype, got {}", dt);
  if (!is_floating(dt)) {
    // Exact integer path, strides read directly (like the CPU's loop).
    gemm_naive(dt, batch, m, n, k, a.data(), a.stride(0), a.stride(1), a.stride(2), b.data(), b.stride(0), b.stride(1),
               b.stride(2), y.data(), m * n, n, 1, with_bias ? bias.data() : nullptr, with_bias ? bias.stride(0) : 0);
    return;
  }
  if (k == 0) {  // the empty sum: bias or zeros
    if (with_bias) {
      for (int64_t i = 0; i < batch; ++i)
        fill_rows(dt, static_cast<char*>(y.data()) + i * m * n * int64_t(y.element_size()), m, n, n, bias.data(),
                  bias.stride(0));
    } else {
      PACER_CUDA_CHECK(cudaMemsetAsync(y.data(), 0, y.nbytes(), current_stream()));
    }
    if (relu) relu_rows(dt, y.data(), batch * m, n, n);
    return;
  }
  const Operand A = as_operand(a), B = as_operand(b);
  Epilogue epi = Epilogue::None;
  double beta = 0.0;
  if (with_bias) {
    const bool dense = bias.stride(0) == 1 || n == 1;
    const bool aligned = reinterpret_cast<uintptr_t>(bias.data()) % 16 == 0;
    if (dense && aligned && dt != DType::F64) {
      epi = Epilogue::Bias;
    } else {  // broadcast the bias into y, then accumulate onto it
      for (int64_t i = 0; i < batch; ++i)
        fill_rows(dt, static_cast<char*>(y.data()) + i * m * n * int64_t(y.element_size()), m, n, n, bias.data(),
                  bias.stride(0));
      beta = 1.0;
    }
  }
  // f64 keeps to plain GEMMs (as for the bias): its ReLU is a sweep after them.
  const bool relu_epilogue = relu && dt != DType::F64;
  if (relu_epilogue) epi = epi == Epilogue::Bias ? Epilogue::BiasRelu : Epilogue::Relu;
  gemm_lt(A.trans, B.trans, m, n, k, dt, 1.0, A.t.data(), A.ld, A.batch_stride, B.t.data(), B.ld, B.batch_stride, beta,
          y.data(), n, m * n, batch, epi == Epilogue::Bias || epi == Epilogue::BiasRelu ? bias.data() : nullptr, epi);
  if (relu && !relu_epilogue) relu_rows(dt, y.data(), batch * m, n, n);
}

Tensor as3d(const Tensor& t) {
  return make_view(t, {1, t.size(0), t.size(1)}, {t.size(0) * t.size(1), t.stride(0), t.stride(1)}, t.storage_offset());
}

void mm_kernel(OpCall& c) {
  Tensor y = as3d(c.out(0));
  batched_matmul(as3d(c.in(0)), as3d(c.in(1)), y, Tensor());
}

void bmm_kernel(OpCall& c) { batched_matmul(c.in(0), c.in(1), c.out(0), Tensor()); }

// w [n, k] as the [1, k, n] operand w^T.
Tensor transposed3d(const Tensor& w) {
  return make_view(w, {1, w.size(1), w.size(0)}, {w.size(0) * w.size(1), w.stride(1), w.stride(0)},
                   w.storage_offset());
}

// y = x @ w^T + b, the bias through cuBLASLt's BIAS epilogue.
void linear_kernel(OpCall& c) {
  Tensor y = as3d(c.out(0));
  const Tensor bias = c.inputs.size() > 2 && c.in(2).defined() ? c.in(2) : Tensor();
  batched_matmul(as3d(c.in(0)), transposed3d(c.in(1)), y, bias);
}

}  // namespace

void matmul_into(const Tensor& a, const Tensor& b, Tensor& y, bool relu) {
  Tensor y3 = as3d(y);
  batched_matmul(as3d(a), as3d(b), y3, Tensor(), relu);
}

void linear_relu_into(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  Tensor y3 = as3d(y);
  batched_matmul(as3d(x), transposed3d(w), y3, bias, true);
}

PACER_KERNEL(mm, CUDA, mm_kernel);
PACER_KERNEL(bmm, CUDA, bmm_kernel);
PACER_KERNEL(linear, CUDA, linear_kernel);

}  // namespace pacer::ops::cuda
