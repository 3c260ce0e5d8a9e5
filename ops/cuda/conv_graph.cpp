// The graph-API convolution path of ops/cuda/conv_graph.h: for each problem (direction,
// shapes, layout, dtype, geometry) an operation graph of one convolution node (and, for
// conv_bn, a genstats node after it), cuDNN's
// heuristics (mode A) for its engine configurations, execution plans for those that
// finalize, the fastest of the first few timed on the problem itself (as cudnn.benchmark
// does), cached; then a variant pack per call.
#include "ops/cuda/conv_graph.h"

#include <cudnn.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "core/cuda/check.h"
#include "core/cuda/graph.h"
#include "core/cuda/handles.h"
#include "core/cuda/library_check.h"
#include "core/cuda/stream.h"

// The handle attributes are deprecated in cuDNN 9 in favour of device-property descriptors;
// they still work, and they are what ties a plan to the handle that executes it.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace pacer::ops::cuda {

namespace {

constexpr size_t kMaxWorkspace = size_t(1) << 30;
constexpr int kTimedPlans = 8;
constexpr int kTimedFusedPlans = 3;

// An owned backend descriptor.
struct Desc {
  cudnnBackendDescriptor_t d = nullptr;
  explicit Desc(cudnnBackendDescriptorType_t type) { PACER_CUDNN_CHECK(cudnnBackendCreateDescriptor(type, &d)); }
  ~Desc() {
    if (d) (void)cudnnBackendDestroyDescriptor(d);
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  template <class T>
  void set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, const T* v, int64_t n = 1) {
    PACER_CUDNN_CHECK(cudnnBackendSetAttribute(d, name, type, n, v));
  }
  void finalize() { PACER_CUDNN_CHECK(cudnnBackendFinalize(d)); }
};

cudnnDataType_t data_type(DType t) { return t == DType::F16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16; }

// A 4-d tensor descriptor (16-byte aligned data).
std::unique_ptr<Desc> make_tensor_desc(const std::array<int64_t, 4>& dims, const std::array<int64_t, 4>& strides,
                                       cudnnDataType_t dt, int64_t uid) {
  auto d = std::make_unique<Desc>(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const int64_t align = 16;
  d->set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, &dt);
  d->set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, dims.data(), 4);
  d->set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, strides.data(), 4);
  d->set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, &uid);
  d->set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, &align);
  d->finalize();
  return d;
}

// A tensor's descriptor: logical NCHW dims in NCHW or NHWC strides.
std::unique_ptr<Desc> tensor_desc(const Tensor& t, bool channels_last, int64_t uid) {
  const std::array<int64_t, 4> dims = {t.size(0), t.size(1), t.size(2), t.size(3)};
  const std::array<int64_t, 4> strides =
      channels_last ? std::array<int64_t, 4>{dims[1] * dims[2] * dims[3], 1, dims[3] * dims[1], dims[1]}
                    : std::array<int64_t, 4>{dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
  return make_tensor_desc(dims, strides, data_type(t.dtype()), uid);
}

// A per-channel statistics tensor [1, C, 1, 1] of float32 (genstats' sum and sum of squares).
std::unique_ptr<Desc> stats_desc(int64_t C, int64_t uid) {
  return make_tensor_desc({1, C, 1, 1}, {C, 1, C, C}, CUDNN_DATA_FLOAT, uid);
}

struct Plan {
  std::unique_ptr<Desc> desc;
  int64_t workspace = 0;
  float ms = -1;  // its measured time (one execution)
};

// The plan bakes beta into its operation: it is part of the key.
using Key = std::tuple<int, int, int, bool, std::array<int64_t, 4>, std::array<int64_t, 4>, std::array<int64_t, 4>,
                       std::array<int64_t, 6>, double>;

struct Cache {
  std::mutex mu;
  std::map<Key, std::shared_ptr<Plan>> plans;  // null: no engine takes the problem
};

Cache& cache() {
  static Cache* c = new Cache;  // leaked: no teardown-order hazards at exit
  return *c;
}

std::array<int64_t, 4> dims4(const Tensor& t) { return {t.size(0), t.size(1), t.size(2), t.size(3)}; }

// The variant pack's pointers, by unique id: x, w, y, and with statistics sum and sum of squares.
using Pointers = std::array<void*, 5>;

// The variant pack of a call: its pointers by unique id and the plan's workspace.
std::unique_ptr<Desc> variant_pack(const Plan& plan, const Pointers& ptrs, bool stats) {
  const std::array<int64_t, 5> uids = {1, 2, 3, 4, 5};
  const int64_t n = stats ? 5 : 3;
  void* ws = plan.workspace > 0 ? pacer::cuda::workspace(size_t(plan.workspace)) : nullptr;
  auto pack = std::make_unique<Desc>(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack->set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, uids.data(), n);
  pack->set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, ptrs.data(), n);
  pack->set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &ws);
  pack->finalize();
  return pack;
}

// Statuses that mean "this plan does not take these operands" (rather than a failure).
bool unsupported(cudnnStatus_t s) {
  const int family = int(s) / 1000 * 1000;
  return s == CUDNN_STATUS_NOT_SUPPORTED || s == CUDNN_STATUS_BAD_PARAM || family == int(CUDNN_STATUS_NOT_SUPPORTED) ||
         family == int(CUDNN_STATUS_BAD_PARAM);
}

// Whether an engine configuration compiles its kernels at run time (seconds each): fine for
// a fused graph, which has no other engines, not worth timing for a plain convolution.
bool runtime_compiled(cudnnBackendDescriptor_t cfg) {
  Desc engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  int64_t got = 0;
  if (cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got, &engine.d) !=
          CUDNN_STATUS_SUCCESS ||
      got != 1)
    return false;
  std::array<cudnnBackendBehaviorNote_t, 16> notes{};
  int64_t count = 0;
  if (cudnnBackendGetAttribute(engine.d, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                               int64_t(notes.size()), &count, notes.data()) != CUDNN_STATUS_SUCCESS)
    return false;
  for (int64_t i = 0; i < count && i < int64_t(notes.size()); ++i)
    if (notes[size_t(i)] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) return true;
  return false;
}

cudnnStatus_t execute(cudnnHandle_t h, const Plan& plan, const Pointers& ptrs, bool stats) {
  const std::unique_ptr<Desc> pack = variant_pack(plan, ptrs, stats);
  return cudnnBackendExecute(h, plan.desc->d, pack->d);
}

// The plans cuDNN's heuristics offer for the problem that finalize within the workspace
// cap, fastest first by timing (up to kTimedPlans of them) on the call's own tensors; the
// output is written to a scratch copy while timing. With `stats` (forward only), the graph
// also sums the output per channel, and its squares (a genstats node after the convolution,
// which cuDNN's runtime fusion engines run in the convolution's epilogue), into
// `sum` / `sqsum` (float32 [C]).
std::shared_ptr<Plan> choose(cudnnHandle_t h, ConvDir dir, const Tensor& x, const Tensor& w, const Tensor& y,
                             bool channels_last, const int64_t* stride, const int64_t* padding,
                             const int64_t* dilation, double beta, bool stats, void* sum, void* sqsum) {
  const auto xd = tensor_desc(x, channels_last, 1), wd = tensor_desc(w, channels_last, 2),
             yd = tensor_desc(y, channels_last, 3);
  Desc conv(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const int64_t spatial = 2;
  conv.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &comp);
  conv.set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, &mode);
  conv.set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, &spatial);
  conv.set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, dilation, 2);
  conv.set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, stride, 2);
  conv.set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, padding, 2);
  conv.set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, padding, 2);
  conv.finalize();
  const float alpha = 1.0f, beta_f = float(beta);
  // The operation's attribute names for its x / w / y roles, by direction.
  struct Roles {
    cudnnBackendDescriptorType_t type;
    cudnnBackendAttributeName_t x, w, y, conv, alpha, beta;
  };
  static constexpr Roles kRoles[] = {
      {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
       CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
       CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
       CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA},
      {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA},
      {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
       CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA},
  };
  const Roles& r = kRoles[int(dir)];
  auto op = std::make_unique<Desc>(r.type);
  op->set(r.x, CUDNN_TYPE_BACKEND_DESCRIPTOR, &xd->d);
  op->set(r.w, CUDNN_TYPE_BACKEND_DESCRIPTOR, &wd->d);
  op->set(r.y, CUDNN_TYPE_BACKEND_DESCRIPTOR, &yd->d);
  op->set(r.conv, CUDNN_TYPE_BACKEND_DESCRIPTOR, &conv.d);
  op->set(r.alpha, CUDNN_TYPE_FLOAT, &alpha);
  op->set(r.beta, CUDNN_TYPE_FLOAT, &beta_f);
  op->finalize();
  std::vector<cudnnBackendDescriptor_t> ops = {op->d};
  std::unique_ptr<Desc> sum_d, sqsum_d, genstats;
  if (stats) {
    sum_d = stats_desc(y.size(1), 4);
    sqsum_d = stats_desc(y.size(1), 5);
    genstats = std::make_unique<Desc>(CUDNN_BACKEND_OPERATION_GEN_STATS_DESCRIPTOR);
    const cudnnGenStatsMode_t gmode = CUDNN_GENSTATS_SUM_SQSUM;
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    genstats->set(CUDNN_ATTR_OPERATION_GENSTATS_MODE, CUDNN_TYPE_GENSTATS_MODE, &gmode);
    genstats->set(CUDNN_ATTR_OPERATION_GENSTATS_MATH_PREC, CUDNN_TYPE_DATA_TYPE, &prec);
    genstats->set(CUDNN_ATTR_OPERATION_GENSTATS_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, &yd->d);
    genstats->set(CUDNN_ATTR_OPERATION_GENSTATS_SUMDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, &sum_d->d);
    genstats->set(CUDNN_ATTR_OPERATION_GENSTATS_SQSUMDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, &sqsum_d->d);
    if (cudnnBackendFinalize(genstats->d) != CUDNN_STATUS_SUCCESS) return nullptr;
    ops.push_back(genstats->d);
  }
  Desc graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, ops.data(), int64_t(ops.size()));
  graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, &h);
  if (cudnnBackendFinalize(graph.d) != CUDNN_STATUS_SUCCESS) return nullptr;
  // The engine configurations of heuristics mode A; mode FALLBACK when A offers none.
  std::vector<std::unique_ptr<Desc>> cfgs;
  std::vector<cudnnBackendDescriptor_t> raw;
  int64_t returned = 0;
  for (const cudnnBackendHeurMode_t hmode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    Desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    heur.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, &graph.d);
    heur.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, &hmode);
    if (cudnnBackendFinalize(heur.d) != CUDNN_STATUS_SUCCESS) continue;
    int64_t count = 0;
    if (cudnnBackendGetAttribute(heur.d, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                 nullptr) != CUDNN_STATUS_SUCCESS ||
        count <= 0)
      continue;
    cfgs.clear();
    raw.clear();
    for (int64_t i = 0; i < count; ++i) {
      cfgs.push_back(std::make_unique<Desc>(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
      raw.push_back(cfgs.back()->d);
    }
    if (cudnnBackendGetAttribute(heur.d, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                 &returned, raw.data()) != CUDNN_STATUS_SUCCESS)
      returned = 0;
    if (returned > 0) break;
  }
  // Plans that finalize, in the heuristics' order.
  std::vector<std::shared_ptr<Plan>> plans;
  // A fused graph's plans compile at run time (seconds each): time fewer of them.
  const int timed = stats ? kTimedFusedPlans : kTimedPlans;
  for (int64_t i = 0; i < returned && int(plans.size()) < timed; ++i) {
    if (!stats && runtime_compiled(raw[size_t(i)])) continue;
    auto plan = std::make_shared<Plan>();
    plan->desc = std::make_unique<Desc>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    plan->desc->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, &h);
    plan->desc->set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, &raw[size_t(i)]);
    if (cudnnBackendFinalize(plan->desc->d) != CUDNN_STATUS_SUCCESS) continue;
    int64_t got = 0;
    if (cudnnBackendGetAttribute(plan->desc->d, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &got,
                                 &plan->workspace) != CUDNN_STATUS_SUCCESS ||
        plan->workspace < 0 || size_t(plan->workspace) > kMaxWorkspace)
      continue;
    plans.push_back(std::move(plan));
  }
  if (plans.empty()) return nullptr;
  // Time them on a scratch output (the real one may hold what beta accumulates onto).
  const Tensor& out = dir == ConvDir::Forward ? y : dir == ConvDir::BackwardData ? x : w;
  Tensor scratch = empty_strided(out.sizes(), out.strides(), {.dtype = out.dtype(), .device = out.device()});
  Pointers ptrs = {const_cast<void*>(x.data()), const_cast<void*>(w.data()), const_cast<void*>(y.data()), sum, sqsum};
  ptrs[dir == ConvDir::Forward ? 2 : dir == ConvDir::BackwardData ? 0 : 1] = scratch.data();
  const auto stream = static_cast<cudaStream_t>(pacer::cuda::current_stream().handle());
  cudaEvent_t start = nullptr, stop = nullptr;
  PACER_CUDA_CHECK(cudaEventCreate(&start));
  PACER_CUDA_CHECK(cudaEventCreate(&stop));
  std::shared_ptr<Plan> best;
  float best_ms = 0;
  for (const auto& plan : plans) {
    // One variant pack for the warm-up and the timed runs: its host-side building stays out of
    // the time (the legacy API's cudnnFind times kernels alone).
    const std::unique_ptr<Desc> pack = variant_pack(*plan, ptrs, stats);
    if (cudnnBackendExecute(h, plan->desc->d, pack->d) != CUDNN_STATUS_SUCCESS) continue;  // warm-up, a last check
    PACER_CUDA_CHECK(cudaEventRecord(start, stream));
    bool ok = true;
    for (int r = 0; r < 3; ++r) ok = ok && cudnnBackendExecute(h, plan->desc->d, pack->d) == CUDNN_STATUS_SUCCESS;
    PACER_CUDA_CHECK(cudaEventRecord(stop, stream));
    PACER_CUDA_CHECK(cudaEventSynchronize(stop));
    if (!ok) continue;
    float ms = 0;
    PACER_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (!best || ms < best_ms) {
      best = plan;
      best_ms = ms;
    }
    plan->ms = ms / 3;
  }
  (void)cudaEventDestroy(start);
  (void)cudaEventDestroy(stop);
  return best;
}

}  // namespace

GraphMode cudnn_graph_mode() {
  static const GraphMode mode = [] {
    const char* v = std::getenv("PACER_CUDNN_GRAPH");
    if (v != nullptr && std::string(v) == "1") return GraphMode::On;
    if (v != nullptr && std::string(v) == "0") return GraphMode::Off;
    return GraphMode::Auto;
  }();
  return mode;
}

namespace {

// Finds (or chooses and caches) the plan of a problem and runs it; false when none takes it.
// With `plan_only`, the plan is chosen and cached but not run; `ms` gets its time.
bool run_planned(ConvDir dir, const Tensor& x, const Tensor& w, const Tensor& y, bool channels_last,
                 const int64_t stride[2], const int64_t padding[2], const int64_t dilation[2], double beta, bool stats,
                 void* sum, void* sqsum, bool plan_only = false, double* ms = nullptr) {
  if (x.dtype() != DType::F16 && x.dtype() != DType::BF16) return false;
  if (w.size(1) != x.size(1)) return false;  // one group only
  for (const Tensor* t : {&x, &w, &y})
    if (reinterpret_cast<uintptr_t>(t->data()) % 16 != 0) return false;  // the descriptors promise 16
  if (stats && (reinterpret_cast<uintptr_t>(sum) % 16 != 0 || reinterpret_cast<uintptr_t>(sqsum) % 16 != 0))
    return false;
  auto h = static_cast<cudnnHandle_t>(pacer::cuda::cudnn_handle());
  int device = 0;
  PACER_CUDA_CHECK(cudaGetDevice(&device));
  const Key key{device,
                int(dir) + (stats ? 8 : 0),
                int(x.dtype()),
                channels_last,
                dims4(x),
                dims4(w),
                dims4(y),
                {stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]},
                beta};
  std::shared_ptr<Plan> plan;
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    auto it = c.plans.find(key);
    if (it != c.plans.end()) {
      if (!it->second) return false;
      plan = it->second;
    }
  }
  if (!plan) {
    // Choosing times plans (waits on events): not while a CUDA graph is being captured,
    // whose warm-up run chose already; then this problem runs the other way.
    if (pacer::cuda::is_capturing(pacer::cuda::current_stream())) return false;
    // A cuDNN refusal anywhere in building the graph means "no engine": the caller falls back.
    try {
      plan = choose(h, dir, x, w, y, channels_last, stride, padding, dilation, beta, stats, sum, sqsum);
    } catch (const Error&) {
      plan = nullptr;
    }
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.plans.size() >= 4096) c.plans.clear();  // in-flight users keep their shared_ptr
    c.plans[key] = plan;
    if (!plan) return false;
  }
  if (ms) *ms = plan->ms;
  if (plan_only) return true;
  // A CUDA graph recording this launch keeps the plan (and the kernel it compiled): the
  // cache below may drop it when it fills.
  pacer::cuda::keep_alive_while_captured(plan);
  const Pointers ptrs = {const_cast<void*>(x.data()), const_cast<void*>(w.data()), const_cast<void*>(y.data()), sum,
                         sqsum};
  if (stats) {  // zeroed first, in case the engine adds onto them (the timing above ran it too)
    const auto stream = static_cast<cudaStream_t>(pacer::cuda::current_stream().handle());
    const size_t bytes = size_t(y.size(1)) * sizeof(float);
    if (static_cast<char*>(sqsum) == static_cast<char*>(sum) + bytes) {
      PACER_CUDA_CHECK(cudaMemsetAsync(sum, 0, 2 * bytes, stream));
    } else {
      PACER_CUDA_CHECK(cudaMemsetAsync(sum, 0, bytes, stream));
      PACER_CUDA_CHECK(cudaMemsetAsync(sqsum, 0, bytes, stream));
    }
  }
  const cudnnStatus_t st = execute(h, *plan, ptrs, stats);
  if (st == CUDNN_STATUS_SUCCESS) return true;
  if (unsupported(st)) return false;  // these operands (say, an alignment): the caller's other path
  PACER_CUDNN_CHECK(st);              // a real failure: reported, not hidden behind a second run
  return false;
}

}  // namespace

bool run_conv_graph(ConvDir dir, const Tensor& x, const Tensor& w, const Tensor& y, bool channels_last,
                    const int64_t stride[2], const int64_t padding[2], const int64_t dilation[2], double beta) {
  return run_planned(dir, x, w, y, channels_last, stride, padding, dilation, beta, false, nullptr, nullptr);
}

double time_conv_graph(ConvDir dir, const Tensor& x, const Tensor& w, const Tensor& y, bool channels_last,
                       const int64_t stride[2], const int64_t padding[2], const int64_t dilation[2], double beta) {
  double ms = -1;
  if (!run_planned(dir, x, w, y, channels_last, stride, padding, dilation, beta, false, nullptr, nullptr, true, &ms))
    return -1;
  return ms;
}

bool run_conv_genstats(const Tensor& x, const Tensor& w, const Tensor& y, const int64_t stride[2],
                       const int64_t padding[2], const int64_t dilation[2], float* sum, float* sqsum) {
  return run_planned(ConvDir::Forward, x, w, y, true, stride, padding, dilation, 0.0, true, sum, sqsum);
}

}  // namespace pacer::ops::cuda
