// CUDA kernels of conv2d, conv2d_backward_input, conv2d_backward_weight and conv_transpose2d
// through cuDNN's convolution API. The three operands go to cuDNN in one layout: channels-last
// (NHWC strides of the logical NCHW shape) when the image written is channels-last (for the
// filter gradient: the input image), else NCHW; operands in another layout are copied (an
// NCHW filter of a channels-last network, as PyTorch does). The algorithm is the fastest
// that cuDNN measures on the problem (cudnnFind*Ex, like PyTorch's cudnn.benchmark;
// PACER_CUDNN_BENCHMARK=0 keeps to the heuristics' ranking), with a workspace of at most
// kMaxWorkspace, cached per problem. A problem no algorithm takes in that layout is retried
// all NCHW, and a float16 / bfloat16 one then in float32.
//
// conv_transpose2d (x [N, Cin, H, W], w [Cin, Cout/g, kh, kw]) is the backward-data of the
// convolution whose input has Cout channels and whose output is x: cuDNN's BackwardData with
// "dy" = x and "dx" = the result, as the CPU kernel does it.
#include <cudnn.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include "core/cuda/check.h"
#include "core/cuda/graph.h"
#include "core/cuda/handles.h"
#include "core/cuda/library_check.h"
#include "core/cuda/stream.h"
#include "ops/api.h"
#include "ops/cuda/conv.h"
#include "ops/cuda/conv_graph.h"
#include "ops/cuda/gemm.h"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

constexpr size_t kMaxWorkspace = size_t(1) << 30;

cudaStream_t current_stream() { return static_cast<cudaStream_t>(pacer::cuda::current_stream().handle()); }

enum class Dir : uint8_t { Forward, BackwardData, BackwardFilter };
enum class Layout : uint8_t { NCHW, NHWC };

// Strides of `layout` for the logical NCHW sizes s.
std::array<int64_t, 4> canonical_strides(const Shape& s, Layout layout) {
  if (layout == Layout::NCHW) return {s[1] * s[2] * s[3], s[2] * s[3], s[3], 1};
  return {s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]};
}

// Whether t's strides are those of `layout` (strides of size-1 dims do not matter).
bool has_layout(const Tensor& t, Layout layout) {
  const auto want = canonical_strides(t.sizes(), layout);
  for (int d = 0; d < 4; ++d)
    if (t.size(d) > 1 && t.stride(d) != want[size_t(d)]) return false;
  return true;
}

// True when t is laid out NHWC and not also NCHW (then elements run channel-fastest).
bool is_nhwc(const Tensor& t) { return !has_layout(t, Layout::NCHW) && has_layout(t, Layout::NHWC); }

cudnnDataType_t cudnn_type(DType d) {
  switch (d) {
    case DType::F32: return CUDNN_DATA_FLOAT;
    case DType::F64: return CUDNN_DATA_DOUBLE;
    case DType::F16: return CUDNN_DATA_HALF;
    case DType::BF16: return CUDNN_DATA_BFLOAT16;
    default: break;
  }
  PACER_FAIL("convolution: expected a floating dtype (float32, float64, float16, bfloat16), got {}", dtype_name(d));
}

int to_int(int64_t v, const char* what) {
  PACER_CHECK(v >= 0 && v <= int64_t(INT_MAX), "convolution: {} = {} exceeds the 32-bit range cuDNN accepts", what, v);
  return int(v);
}

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(const Tensor& t, Layout layout) {
    PACER_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    const auto st = canonical_strides(t.sizes(), layout);
    PACER_CHECK(t.numel() <= int64_t(INT_MAX), "convolution: a tensor of {} elements exceeds cuDNN's 32-bit range",
                t.numel());
    const cudnnStatus_t s = cudnnSetTensor4dDescriptorEx(
        d, cudnn_type(t.dtype()), to_int(t.size(0), "N"), to_int(t.size(1), "C"), to_int(t.size(2), "H"),
        to_int(t.size(3), "W"), to_int(st[0], "a stride"), to_int(st[1], "a stride"), to_int(st[2], "a stride"),
        to_int(st[3], "a stride"));
    if (s != CUDNN_STATUS_SUCCESS) {
      (void)cudnnDestroyTensorDescriptor(d);
      PACER_CUDNN_CHECK(s);
    }
  }
  ~TensorDesc() { (void)cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc(const Tensor& w, Layout layout) {
    PACER_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d));
    const cudnnStatus_t s = cudnnSetFilter4dDescriptor(
        d, cudnn_type(w.dtype()), layout == Layout::NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
        to_int(w.size(0), "K"), to_int(w.size(1), "C/groups"), to_int(w.size(2), "kh"), to_int(w.size(3), "kw"));
    if (s != CUDNN_STATUS_SUCCESS) {
      (void)cudnnDestroyFilterDescriptor(d);
      PACER_CUDNN_CHECK(s);
    }
  }
  ~FilterDesc() { (void)cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};

struct Geometry {
  int sh, sw, ph, pw, dh, dw, groups;
};

Geometry geometry(const Attrs& a) {
  const Shape &st = a.shape("stride"), &pad = a.shape("padding"), &dil = a.shape("dilation");
  return {to_int(st[0], "stride"), to_int(st[1], "stride"),   to_int(pad[0], "padding"), to_int(pad[1], "padding"),
          to_int(dil[0], "dilation"), to_int(dil[1], "dilation"), to_int(a.i("groups"), "groups")};
}

cudnnMathType_t math_type(DType d) {
  switch (d) {
    case DType::F16:
    case DType::BF16: return CUDNN_TENSOR_OP_MATH;
    case DType::F32: return pacer::cuda::allow_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    default: return CUDNN_DEFAULT_MATH;
  }
}

struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc(const Geometry& g, DType dtype, cudnnMathType_t math) {
    PACER_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
    // Half and bfloat16 data compute in f32; f64 in f64.
    const cudnnDataType_t compute = dtype == DType::F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    cudnnStatus_t s = cudnnSetConvolution2dDescriptor(d, g.ph, g.pw, g.sh, g.sw, g.dh, g.dw, CUDNN_CROSS_CORRELATION,
                                                      compute);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnSetConvolutionGroupCount(d, g.groups);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnSetConvolutionMathType(d, math);
    if (s != CUDNN_STATUS_SUCCESS) {
      (void)cudnnDestroyConvolutionDescriptor(d);
      PACER_CUDNN_CHECK(s);
    }
  }
  ~ConvDesc() { (void)cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

// The cache: problem -> (found, algorithm, workspace bytes).
struct AlgoKey {
  int device;
  Dir dir;
  DType dtype;
  cudnnMathType_t math;
  Layout lx, lw, ly;
  std::array<int64_t, 4> x, w, y;
  std::array<int, 7> geo;
  auto tie() const { return std::tie(device, dir, dtype, math, lx, lw, ly, x, w, y, geo); }
  bool operator<(const AlgoKey& o) const { return tie() < o.tie(); }
};

struct AlgoChoice {
  bool found = false;
  int algo = 0;
  size_t workspace = 0;
  float ms = -1;  // cuDNN's measured time of the algorithm (-1: chosen by the heuristics)
};

struct AlgoCache {
  std::mutex mu;
  std::map<AlgoKey, AlgoChoice> map;
};

AlgoCache& algo_cache() {
  static AlgoCache* cache = new AlgoCache;  // leaked: no teardown-order hazards at exit
  return *cache;
}

std::array<int64_t, 4> dims(const Tensor& t) { return {t.size(0), t.size(1), t.size(2), t.size(3)}; }

// One convolution call in the roles of the forward conv: X (image input), W (filter), Y (image
// output); `dir` says which of them is written (Y, X or W). out = alpha * op(...) + beta * out.
struct ConvCall {
  Dir dir;
  Tensor X, W, Y;
  Layout lx, lw, ly;
  Geometry g;
  double beta;
};

// The call's problem: the key of the algorithm cache (and of the API choice).
AlgoKey key_of(const ConvCall& c) {
  int device = 0;
  PACER_CUDA_CHECK(cudaGetDevice(&device));
  return {device,    c.dir,     c.X.dtype(), math_type(c.X.dtype()), c.lx, c.lw, c.ly, dims(c.X), dims(c.W),
          dims(c.Y), {c.g.sh, c.g.sw, c.g.ph, c.g.pw, c.g.dh, c.g.dw, c.g.groups}};
}

// Runs `algo` for the call with the given descriptors; returns cuDNN's status (unchecked).
cudnnStatus_t execute(cudnnHandle_t h, const ConvCall& c, const TensorDesc& xd, const FilterDesc& wd,
                      const TensorDesc& yd, const ConvDesc& cd, int algo, void* ws, size_t ws_bytes) {
  const float one_f = 1.0f, beta_f = float(c.beta);
  const double one_d = 1.0, beta_d = c.beta;
  const bool dbl = c.X.dtype() == DType::F64;
  const void* alpha = dbl ? static_cast<const void*>(&one_d) : static_cast<const void*>(&one_f);
  const void* beta = dbl ? static_cast<const void*>(&beta_d) : static_cast<const void*>(&beta_f);
  switch (c.dir) {
    case Dir::Forward:
      return cudnnConvolutionForward(h, alpha, xd.d, c.X.data(), wd.d, c.W.data(), cd.d,
                                     cudnnConvolutionFwdAlgo_t(algo), ws, ws_bytes, beta, yd.d, c.Y.data());
    case Dir::BackwardData:
      return cudnnConvolutionBackwardData(h, alpha, wd.d, c.W.data(), yd.d, c.Y.data(), cd.d,
                                          cudnnConvolutionBwdDataAlgo_t(algo), ws, ws_bytes, beta, xd.d, c.X.data());
    case Dir::BackwardFilter:
      return cudnnConvolutionBackwardFilter(h, alpha, xd.d, c.X.data(), yd.d, c.Y.data(), cd.d,
                                            cudnnConvolutionBwdFilterAlgo_t(algo), ws, ws_bytes, beta, wd.d,
                                            c.W.data());
  }
  return CUDNN_STATUS_BAD_PARAM;
}

cudnnStatus_t workspace_size(cudnnHandle_t h, const ConvCall& c, const TensorDesc& xd, const FilterDesc& wd,
                             const TensorDesc& yd, const ConvDesc& cd, int algo, size_t* bytes) {
  switch (c.dir) {
    case Dir::Forward:
      return cudnnGetConvolutionForwardWorkspaceSize(h, xd.d, wd.d, cd.d, yd.d, cudnnConvolutionFwdAlgo_t(algo), bytes);
    case Dir::BackwardData:
      return cudnnGetConvolutionBackwardDataWorkspaceSize(h, wd.d, yd.d, cd.d, xd.d,
                                                          cudnnConvolutionBwdDataAlgo_t(algo), bytes);
    case Dir::BackwardFilter:
      return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, xd.d, yd.d, cd.d, wd.d,
                                                            cudnnConvolutionBwdFilterAlgo_t(algo), bytes);
  }
  return CUDNN_STATUS_BAD_PARAM;
}

struct Candidate {
  int algo;
  cudnnStatus_t status;
  float ms = -1;  // measured (cudnnFind*), else -1
};

// The algorithms of a cuDNN ranking (heuristic or measured), best first, with their statuses.
template <class Perf, size_t N>
void append(std::vector<Candidate>& out, const std::array<Perf, N>& perf, int returned, bool timed) {
  for (int i = 0; i < returned; ++i)
    out.push_back({int(perf[size_t(i)].algo), perf[size_t(i)].status, timed ? perf[size_t(i)].time : -1.0f});
}

// Statuses that mean "this algorithm does not take this problem": try the next one.
bool unsupported(cudnnStatus_t s) {
  return s == CUDNN_STATUS_NOT_SUPPORTED || s == CUDNN_STATUS_BAD_PARAM ||
         cudnnStatus_t(int(s) / 1000 * 1000) == CUDNN_STATUS_NOT_SUPPORTED ||
         cudnnStatus_t(int(s) / 1000 * 1000) == CUDNN_STATUS_BAD_PARAM;
}

// A status from cuDNN's algorithm queries: false when the problem is one cuDNN does not take
// (the caller then tries its fallbacks: NCHW, f32), else checked.
bool usable(cudnnStatus_t s) {
  if (unsupported(s)) return false;
  PACER_CUDNN_CHECK(s);
  return true;
}

// The heuristics' ranking (best first) for the call.
std::vector<Candidate> candidates(cudnnHandle_t h, const ConvCall& c, const TensorDesc& xd, const FilterDesc& wd,
                                  const TensorDesc& yd, const ConvDesc& cd) {
  std::vector<Candidate> out;
  int returned = 0;
  switch (c.dir) {
    case Dir::Forward: {
      std::array<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT> perf{};
      const cudnnStatus_t s = cudnnGetConvolutionForwardAlgorithm_v7(h, xd.d, wd.d, cd.d, yd.d, int(perf.size()),
                                                                     &returned, perf.data());
      if (!usable(s)) return {};
      append(out, perf, returned, false);
      break;
    }
    case Dir::BackwardData: {
      std::array<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT> perf{};
      const cudnnStatus_t s = cudnnGetConvolutionBackwardDataAlgorithm_v7(h, wd.d, yd.d, cd.d, xd.d, int(perf.size()),
                                                                          &returned, perf.data());
      if (!usable(s)) return {};
      append(out, perf, returned, false);
      break;
    }
    case Dir::BackwardFilter: {
      std::array<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT> perf{};
      const cudnnStatus_t s = cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, xd.d, yd.d, cd.d, wd.d,
                                                                            int(perf.size()), &returned, perf.data());
      if (!usable(s)) return {};
      append(out, perf, returned, false);
      break;
    }
  }
  return out;
}

// The algorithms that ran, fastest first, measured by cuDNN on this problem (cudnnFind*Ex):
// what PyTorch's cudnn.benchmark and NVIDIA's MLPerf code choose by. The output is written
// to a scratch copy (the real one may hold a bias the call accumulates onto).
std::vector<Candidate> measured(cudnnHandle_t h, const ConvCall& c, const TensorDesc& xd, const FilterDesc& wd,
                                const TensorDesc& yd, const ConvDesc& cd, void* ws, size_t ws_bytes) {
  const Tensor& real_out = c.dir == Dir::Forward ? c.Y : c.dir == Dir::BackwardData ? c.X : c.W;
  Tensor scratch = empty_strided(real_out.sizes(), real_out.strides(),
                                 {.dtype = real_out.dtype(), .device = real_out.device()});
  std::vector<Candidate> out;
  int returned = 0;
  switch (c.dir) {
    case Dir::Forward: {
      std::array<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT> perf{};
      const cudnnStatus_t s = cudnnFindConvolutionForwardAlgorithmEx(h, xd.d, c.X.data(), wd.d, c.W.data(), cd.d,
                                                                     yd.d, scratch.data(), int(perf.size()),
                                                                     &returned, perf.data(), ws, ws_bytes);
      if (!usable(s)) return {};
      append(out, perf, returned, true);
      break;
    }
    case Dir::BackwardData: {
      std::array<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT> perf{};
      const cudnnStatus_t s = cudnnFindConvolutionBackwardDataAlgorithmEx(h, wd.d, c.W.data(), yd.d, c.Y.data(), cd.d,
                                                                          xd.d, scratch.data(), int(perf.size()),
                                                                          &returned, perf.data(), ws, ws_bytes);
      if (!usable(s)) return {};
      append(out, perf, returned, true);
      break;
    }
    case Dir::BackwardFilter: {
      std::array<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT> perf{};
      const cudnnStatus_t s = cudnnFindConvolutionBackwardFilterAlgorithmEx(h, xd.d, c.X.data(), yd.d, c.Y.data(),
                                                                            cd.d, wd.d, scratch.data(),
                                                                            int(perf.size()), &returned, perf.data(),
                                                                            ws, ws_bytes);
      if (!usable(s)) return {};
      append(out, perf, returned, true);
      break;
    }
  }
  return out;
}

// Whether to choose algorithms by measuring them (default) rather than by cuDNN's heuristics
// alone; PACER_CUDNN_BENCHMARK=0 turns measuring off (then the choice is deterministic).
bool benchmark_mode() {
  static const bool on = [] {
    const char* v = std::getenv("PACER_CUDNN_BENCHMARK");
    return v == nullptr || std::string(v) != "0";
  }();
  return on;
}

// Whether 1x1 channels-last convolutions run as GEMMs (default); PACER_CONV_1X1_GEMM=0 sends
// them to cuDNN too (for comparison).
bool gemm_for_1x1() {
  static const bool on = [] {
    const char* v = std::getenv("PACER_CONV_1X1_GEMM");
    return v == nullptr || std::string(v) != "0";
  }();
  return on;
}

// Runs the call with a cached or newly chosen algorithm; false when no algorithm takes it.
// `ms`, when given, gets the chosen algorithm's measured time (-1 when unmeasured).
bool try_run(const ConvCall& c, float* ms = nullptr) {
  auto h = static_cast<cudnnHandle_t>(pacer::cuda::cudnn_handle());
  const DType dt = c.X.dtype();
  const cudnnMathType_t math = math_type(dt);
  const TensorDesc xd(c.X, c.lx), yd(c.Y, c.ly);
  const FilterDesc wd(c.W, c.lw);
  const ConvDesc cd(c.g, dt, math);
  const AlgoKey key = key_of(c);
  AlgoCache& cache = algo_cache();
  {
    std::unique_lock<std::mutex> lock(cache.mu);
    auto it = cache.map.find(key);
    if (it != cache.map.end()) {
      const AlgoChoice choice = it->second;
      lock.unlock();
      if (ms) *ms = choice.ms;
      if (!choice.found) return false;
      void* ws = choice.workspace > 0 ? pacer::cuda::workspace(choice.workspace) : nullptr;
      const cudnnStatus_t s = execute(h, c, xd, wd, yd, cd, choice.algo, ws, choice.workspace);
      if (s == CUDNN_STATUS_SUCCESS) return true;
      // The key has no pointer alignments: an algorithm chosen for aligned operands may
      // refuse misaligned ones (views at odd offsets). Choose again below, and cache that.
      if (!unsupported(s)) PACER_CUDNN_CHECK(s);
    }
  }
  // Measured first (when on), then the heuristics' list as the fallback.
  std::vector<Candidate> ranked;
  if (benchmark_mode()) ranked = measured(h, c, xd, wd, yd, cd, pacer::cuda::workspace(kMaxWorkspace), kMaxWorkspace);
  for (const Candidate& cand : candidates(h, c, xd, wd, yd, cd)) ranked.push_back(cand);
  AlgoChoice choice;
  for (const Candidate& cand : ranked) {
    if (cand.status != CUDNN_STATUS_SUCCESS) continue;
    size_t bytes = 0;
    const cudnnStatus_t ws_status = workspace_size(h, c, xd, wd, yd, cd, cand.algo, &bytes);
    if (ws_status != CUDNN_STATUS_SUCCESS || bytes > kMaxWorkspace) continue;
    void* ws = bytes > 0 ? pacer::cuda::workspace(bytes) : nullptr;
    const cudnnStatus_t s = execute(h, c, xd, wd, yd, cd, cand.algo, ws, bytes);
    if (s == CUDNN_STATUS_SUCCESS) {
      choice = {true, cand.algo, bytes, cand.ms};
      break;
    }
    if (!unsupported(s)) PACER_CUDNN_CHECK(s);
  }
  if (ms) *ms = choice.ms;
  std::lock_guard<std::mutex> lock(cache.mu);
  if (cache.map.size() >= 4096) cache.map.clear();
  cache.map.insert_or_assign(key, choice);
  return choice.found;
}

ConvDir graph_dir(Dir d) {
  return d == Dir::Forward ? ConvDir::Forward : d == Dir::BackwardData ? ConvDir::BackwardData : ConvDir::BackwardFilter;
}

// The call through cuDNN's graph API (ops/cuda/conv_graph.h); false when that API takes no
// such problem.
bool run_graph_api(const ConvCall& c) {
  if (c.g.groups != 1) return false;
  const int64_t stride[2] = {c.g.sh, c.g.sw}, padding[2] = {c.g.ph, c.g.pw}, dilation[2] = {c.g.dh, c.g.dw};
  return run_conv_graph(graph_dir(c.dir), c.X, c.W, c.Y, c.lx == Layout::NHWC, stride, padding, dilation, c.beta);
}

// Runs the call through the legacy API or the graph API (PACER_CUDNN_GRAPH, conv_graph.h):
// "1" the graph API first, "0" the legacy API only, else (auto) whichever of the two measured
// faster on this problem the first time it ran (the legacy API's cudnnFind time against the
// graph API's fastest timed plan, both on the call's own tensors; 3% in the legacy API's
// favour). The first run itself goes through the legacy API, whose measuring writes a scratch
// output, so nothing is written twice. False when no algorithm takes the problem.
bool run_chosen(const ConvCall& c) {
  const GraphMode mode = cudnn_graph_mode();
  if (mode == GraphMode::On) return run_graph_api(c) || try_run(c);
  const bool eligible = (c.X.dtype() == DType::F16 || c.X.dtype() == DType::BF16) && c.g.groups == 1 &&
                        c.lx == c.lw && c.lx == c.ly && benchmark_mode();
  if (mode == GraphMode::Off || !eligible) return try_run(c);
  // Decided per problem and beta (a bias accumulation reads the output too).
  using Key = std::pair<AlgoKey, double>;
  static std::mutex mu;
  static std::map<Key, bool>* use_graph = new std::map<Key, bool>;  // leaked, as the algorithm cache
  const Key key{key_of(c), c.beta};
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = use_graph->find(key);
    if (it != use_graph->end()) return it->second ? (run_graph_api(c) || try_run(c)) : try_run(c);
  }
  float legacy_ms = -1;
  const bool ran = try_run(c, &legacy_ms);
  // Measuring waits on events: not while a CUDA graph is being captured (its warm-up decided).
  if (pacer::cuda::is_capturing(pacer::cuda::current_stream())) return ran;
  const int64_t stride[2] = {c.g.sh, c.g.sw}, padding[2] = {c.g.ph, c.g.pw}, dilation[2] = {c.g.dh, c.g.dw};
  const double graph_ms = time_conv_graph(graph_dir(c.dir), c.X, c.W, c.Y, c.lx == Layout::NHWC, stride, padding,
                                          dilation, c.beta);
  const bool graph = graph_ms > 0 && (!ran || legacy_ms < 0 || graph_ms < 0.97 * double(legacy_ms));
  {
    std::lock_guard<std::mutex> lock(mu);
    if (use_graph->size() >= 4096) use_graph->clear();
    (*use_graph)[key] = graph;
  }
  return ran || (graph && run_graph_api(c));
}

// t with `layout`: itself when it has it, else a copy laid out so.
Tensor in_layout(const Tensor& t, Layout layout) {
  if (has_layout(t, layout)) return t;
  if (layout == Layout::NCHW) return contiguous(t);
  return permute(contiguous(permute(t, {0, 2, 3, 1})), {0, 3, 1, 2});
}

// The call with all three operands in `layout` (cuDNN's fast kernels want one layout; PyTorch
// likewise makes the filter channels-last for a channels-last input). The output is written
// in place when it has the layout, else through a temporary copied back (onto which a
// forward's bias is accumulated, beta = 1). False when no algorithm takes the problem.
bool run_in_layout(Dir dir, const Tensor& X, const Tensor& W, const Tensor& Y, const Geometry& g, double beta,
                   Layout layout) {
  const Tensor& out = dir == Dir::Forward ? Y : dir == Dir::BackwardData ? X : W;
  Tensor target = out;
  if (!has_layout(out, layout)) {
    const auto st = canonical_strides(out.sizes(), layout);
    target = empty_strided(out.sizes(), Shape(st.begin(), st.end()), {.dtype = out.dtype(), .device = out.device()});
    if (beta != 0) copy_(target, out);
  }
  ConvCall c{dir, dir == Dir::BackwardData ? target : in_layout(X, layout),
             dir == Dir::BackwardFilter ? target : in_layout(W, layout),
             dir == Dir::Forward ? target : in_layout(Y, layout), layout, layout, layout, g, beta};
  if (!run_chosen(c)) return false;
  Tensor dst = out;  // a handle: the copy lands in the caller's output
  if (!target.is_same(out)) copy_(dst, target);
  return true;
}

// How many groups of images the 1x1 filter gradient's pixel sum is split into: its K x C
// output has few 128 x 128 tiles (a single GEMM would run on a few SMs while reading all of
// x and dy), so aim at ~264 tiles in all, with a group count that divides the batch.
int64_t wgrad_groups(int64_t N, int64_t K, int64_t C) {
  const int64_t tiles = ((K + 127) / 128) * ((C + 127) / 128);
  if (tiles >= 66) return 1;
  const int64_t want = std::min<int64_t>(N, std::max<int64_t>(1, 264 / tiles));
  for (int64_t g = want; g > 1; --g)
    if (N % g == 0) return g;
  return 1;
}

// A 1x1 convolution with stride 1, no padding and one group over channels-last images is a
// GEMM over the N*H*W pixels: x [M, C], y [M, K] (row-major, M = N*H*W) and the filter
// [K, C]. cuBLASLt runs it near memory bandwidth, where cuDNN's legacy API measured 3-7x
// slower at ResNet-50's shapes (H200, bench/RESULTS.md). False when the problem is not one.
bool run_as_gemm(Dir dir, const Tensor& X, const Tensor& W, const Tensor& Y, const Geometry& g, double beta) {
  const DType dt = X.dtype();
  if (dt != DType::F16 && dt != DType::BF16 && dt != DType::F32) return false;
  if (W.size(2) != 1 || W.size(3) != 1 || g.sh != 1 || g.sw != 1 || g.ph != 0 || g.pw != 0 || g.groups != 1)
    return false;
  if (X.size(2) != Y.size(2) || X.size(3) != Y.size(3)) return false;
  const Tensor& out = dir == Dir::Forward ? Y : dir == Dir::BackwardData ? X : W;
  const Tensor& image = dir == Dir::BackwardFilter ? X : out;
  if (!is_nhwc(image)) return false;
  const int64_t M = X.size(0) * X.size(2) * X.size(3), C = X.size(1), K = Y.size(1);
  if (M == 0 || C == 0 || K == 0) return false;
  // The written operand must already be dense in the GEMM's layout; the inputs are copied
  // into it when they are not.
  const bool filter_dense = (W.size(0) == 1 || W.stride(0) == C) && (C == 1 || W.stride(1) == 1);
  if (dir == Dir::BackwardFilter ? !filter_dense : !has_layout(out, Layout::NHWC)) return false;
  const Tensor x = dir == Dir::BackwardData ? X : in_layout(X, Layout::NHWC);
  const Tensor y = dir == Dir::Forward ? Y : in_layout(Y, Layout::NHWC);
  const Tensor w = dir == Dir::BackwardFilter || filter_dense ? W : contiguous(W);
  switch (dir) {
    case Dir::Forward:  // y[M, K] = x[M, C] w[K, C]^T (+ beta y: the bias)
      gemm_lt(false, true, M, K, C, dt, 1.0, x.data(), C, 0, w.data(), C, 0, beta, y.data(), K, 0, 1);
      break;
    case Dir::BackwardData:  // dx[M, C] = dy[M, K] w[K, C]
      gemm_lt(false, false, M, C, K, dt, 1.0, y.data(), K, 0, w.data(), C, 0, beta, x.data(), C, 0, 1);
      break;
    case Dir::BackwardFilter: {  // dw[K, C] = dy[M, K]^T x[M, C]
      const int64_t groups = beta == 0 ? wgrad_groups(X.size(0), K, C) : 1;
      if (groups == 1) {
        gemm_lt(true, false, K, C, M, dt, 1.0, y.data(), K, 0, x.data(), C, 0, beta, w.data(), C, 0, 1);
        break;
      }
      // Few output tiles and a long sum: one GEMM per group of images (a batched call that
      // fills the GPU), then the partials summed with f32 accumulation.
      const int64_t rows = M / groups;
      Tensor part = empty({groups, K, C}, {.dtype = dt, .device = X.device()});
      gemm_lt(true, false, K, C, rows, dt, 1.0, y.data(), K, rows * K, x.data(), C, rows * C, 0.0, part.data(), C,
              K * C, groups);
      Tensor dst = view(W, {K, C});
      copy_(dst, sum(part, {0}));
      break;
    }
  }
  return true;
}

// Runs the convolution (inputs in any strides; the output NCHW or NHWC, as allocated): a 1x1
// channels-last problem as a GEMM; else in the layout of the image that is written (the input
// image's for the filter gradient), then all NCHW, then, for float16 / bfloat16 problems no
// algorithm takes, in float32.
void run_conv(Dir dir, const Tensor& X, const Tensor& W, const Tensor& Y, const Attrs& attrs, double beta) {
  const Geometry g = geometry(attrs);
  const Tensor& out = dir == Dir::Forward ? Y : dir == Dir::BackwardData ? X : W;
  PACER_CHECK(has_layout(out, Layout::NCHW) || has_layout(out, Layout::NHWC),
              "convolution: expected an NCHW or NHWC output, got strides {}", out.strides());
  const Tensor& image = dir == Dir::BackwardFilter ? X : out;
  if (gemm_for_1x1() && run_as_gemm(dir, X, W, Y, g, beta)) return;
  if (is_nhwc(image) && run_in_layout(dir, X, W, Y, g, beta, Layout::NHWC)) return;
  if (run_in_layout(dir, X, W, Y, g, beta, Layout::NCHW)) return;
  if (X.dtype() == DType::F16 || X.dtype() == DType::BF16) {
    const auto wide = [&](const Tensor& t, bool is_out) {
      if (is_out && beta == 0) return empty(t.sizes(), {.dtype = DType::F32, .device = t.device()});
      return contiguous(cast(t, DType::F32));
    };
    Tensor x32 = wide(X, dir == Dir::BackwardData), w32 = wide(W, dir == Dir::BackwardFilter),
           y32 = wide(Y, dir == Dir::Forward);
    if (run_in_layout(dir, x32, w32, y32, g, beta, Layout::NCHW)) {
      Tensor dst = out;
      copy_(dst, dir == Dir::Forward ? y32 : dir == Dir::BackwardData ? x32 : w32);
      return;
    }
  }
  PACER_FAIL("convolution: cuDNN has no algorithm for input {} weight {} output {} ({}; stride [{}, {}], padding "
             "[{}, {}], dilation [{}, {}], groups {})",
             X.sizes(), W.sizes(), Y.sizes(), dtype_name(X.dtype()), g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups);
}

bool has_bias(const OpCall& c) { return c.inputs.size() > 2 && c.in(2).defined(); }

void zero(Tensor& t) {
  if (t.numel() > 0) PACER_CUDA_CHECK(cudaMemsetAsync(t.data(), 0, t.nbytes(), current_stream()));
}

void conv2d_kernel(OpCall& c) {
  conv2d_forward_into(c.in(0), c.in(1), has_bias(c) ? c.in(2) : Tensor(), c.attrs, c.out(0));
}

void conv2d_backward_input_kernel(OpCall& c) {
  const Tensor &dy = c.in(0), &w = c.in(1);
  Tensor& dx = c.out(0);
  if (dx.numel() == 0) return;
  if (dy.numel() == 0 || w.numel() == 0) return zero(dx);
  run_conv(Dir::BackwardData, dx, w, dy, c.attrs, 0.0);
}

// Inputs (dy, x): dw of the convolution x -> dy.
void conv2d_backward_weight_kernel(OpCall& c) {
  const Tensor &dy = c.in(0), &x = c.in(1);
  Tensor& dw = c.out(0);
  if (dw.numel() == 0) return;
  if (dy.numel() == 0 || x.numel() == 0) return zero(dw);
  // cuDNN needs dy to be exactly the forward convolution's output size for x. The gradient
  // of conv_transpose2d with output_padding >= stride (below the dilation) calls this with
  // an x taller / wider than that: then run the padding-0 problem on x embedded in zeros
  // (xp[i] = x[i - padding], zero outside x; rows past what the convolution reads dropped).
  const Shape &st = c.attrs.shape("stride"), &pad = c.attrs.shape("padding"), &dil = c.attrs.shape("dilation");
  bool consistent = true;
  for (int d = 0; d < 2; ++d)
    consistent = consistent && (x.size(2 + d) + 2 * pad[size_t(d)] - dil[size_t(d)] * (dw.size(2 + d) - 1) - 1) /
                                       st[size_t(d)] +
                                   1 ==
                               dy.size(2 + d);
  if (consistent) return run_conv(Dir::BackwardFilter, x, dw, dy, c.attrs, 0.0);
  const int64_t fh = (dy.size(2) - 1) * st[0] + dil[0] * (dw.size(2) - 1) + 1;
  const int64_t fw = (dy.size(3) - 1) * st[1] + dil[1] * (dw.size(3) - 1) + 1;
  Tensor xp = zeros({x.size(0), x.size(1), fh, fw}, {.dtype = x.dtype(), .device = c.device});
  const int64_t rh = std::min(x.size(2), fh - pad[0]), rw = std::min(x.size(3), fw - pad[1]);
  if (rh > 0 && rw > 0) {
    Tensor dst = narrow(narrow(xp, 2, pad[0], rh), 3, pad[1], rw);
    copy_(dst, narrow(narrow(x, 2, 0, rh), 3, 0, rw));
  }
  Attrs a = c.attrs;
  a.set("padding", Shape{0, 0});
  run_conv(Dir::BackwardFilter, xp, dw, dy, a, 0.0);
}

void conv_transpose2d_kernel(OpCall& c) {
  const Tensor &x = c.in(0), &w = c.in(1);
  Tensor& y = c.out(0);
  if (y.numel() == 0) return;
  if (x.numel() == 0 || w.numel() == 0) {
    zero(y);
  } else {
    // cuDNN's BackwardData needs x to be exactly the forward convolution's output size for
    // y; output_padding >= stride (allowed when it is below the dilation) breaks that. Then
    // compute the uncropped transposed convolution (padding 0, which is always consistent)
    // and crop it into y: y[oh, ow] = full[oh + ph, ow + pw], zero past full's end.
    const Shape &st = c.attrs.shape("stride"), &pad = c.attrs.shape("padding"), &dil = c.attrs.shape("dilation");
    bool consistent = true;
    for (int d = 0; d < 2; ++d)
      consistent = consistent && (y.size(2 + d) + 2 * pad[size_t(d)] - dil[size_t(d)] * (w.size(2 + d) - 1) - 1) /
                                         st[size_t(d)] +
                                     1 ==
                                 x.size(2 + d);
    if (consistent) {
      run_conv(Dir::BackwardData, y, w, x, c.attrs, 0.0);  // y plays dx, x plays dy
    } else {
      Attrs a = c.attrs;
      a.set("padding", Shape{0, 0});
      const int64_t fh = (x.size(2) - 1) * st[0] + dil[0] * (w.size(2) - 1) + 1;
      const int64_t fw = (x.size(3) - 1) * st[1] + dil[1] * (w.size(3) - 1) + 1;
      Tensor full = empty({y.size(0), y.size(1), fh, fw}, {.dtype = y.dtype(), .device = c.device});
      run_conv(Dir::BackwardData, full, w, x, a, 0.0);
      zero(y);
      const int64_t rh = std::min(y.size(2), fh - pad[0]), rw = std::min(y.size(3), fw - pad[1]);
      if (rh > 0 && rw > 0) {
        Tensor dst = narrow(narrow(y, 2, 0, rh), 3, 0, rw);
        copy_(dst, narrow(narrow(full, 2, pad[0], rh), 3, pad[1], rw));
      }
    }
  }
  if (has_bias(c))
    channel_bias(y.dtype(), y.data(), y.size(0), y.size(1), y.size(2) * y.size(3), c.in(2).data(), c.in(2).stride(0),
                 true, is_nhwc(y));
}

}  // namespace

void conv2d_forward_into(const Tensor& x, const Tensor& w, const Tensor& b, const Attrs& attrs, Tensor& y) {
  if (y.numel() == 0) return;
  const int64_t N = y.size(0), K = y.size(1), S = y.size(2) * y.size(3);
  // The bias goes into y first and the convolution accumulates onto it (beta = 1), as the
  // CPU kernel does: one rounding for the half types. Without one, y is written (beta = 0).
  const bool bias = b.defined();
  if (bias) channel_bias(y.dtype(), y.data(), N, K, S, b.data(), b.stride(0), false, is_nhwc(y));
  if (x.numel() == 0 || w.numel() == 0) {
    if (!bias) zero(y);
    return;
  }
  run_conv(Dir::Forward, x, w, y, attrs, bias ? 1.0 : 0.0);
}

bool conv2d_forward_with_sums(const Tensor& x, const Tensor& w, const Attrs& attrs, Tensor& y, Tensor& sums) {
  static const bool off = [] {
    const char* v = std::getenv("PACER_CONV_GENSTATS");
    return v != nullptr && std::string(v) == "0";
  }();
  if (off || (x.dtype() != DType::F16 && x.dtype() != DType::BF16) || y.numel() == 0 || x.numel() == 0 ||
      !is_nhwc(y) || sums.dtype() != DType::F32 || !sums.is_contiguous() || sums.numel() != 2 * y.size(1))
    return false;
  const Geometry g = geometry(attrs);
  if (g.groups != 1) return false;
  // A 1x1 convolution that runs as a cuBLASLt GEMM stays one (measured 3-7x faster than cuDNN's
  // legacy API at ResNet-50's shapes); its statistics come from batch norm's own pass.
  const bool gemm_shape = w.size(2) == 1 && w.size(3) == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 &&
                          x.size(2) == y.size(2) && x.size(3) == y.size(3);
  if (gemm_for_1x1() && gemm_shape) return false;
  const int64_t stride[2] = {g.sh, g.sw}, padding[2] = {g.ph, g.pw}, dilation[2] = {g.dh, g.dw};
  float* sum = static_cast<float*>(sums.data());
  return run_conv_genstats(in_layout(x, Layout::NHWC), in_layout(w, Layout::NHWC), y, stride, padding, dilation, sum,
                           sum + y.size(1));
}

PACER_KERNEL(conv2d, CUDA, conv2d_kernel);
PACER_KERNEL(conv2d_backward_input, CUDA, conv2d_backward_input_kernel);
PACER_KERNEL(conv2d_backward_weight, CUDA, conv2d_backward_weight_kernel);
PACER_KERNEL(conv_transpose2d, CUDA, conv_transpose2d_kernel);

}  // namespace pacer::ops::cuda
