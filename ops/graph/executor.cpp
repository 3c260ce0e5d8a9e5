#include "ops/graph/executor.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <optional>

#include "autograd/grad_mode.h"
#include "core/cuda/runtime.h"
#include "core/scratch.h"
#include "core/thread_pool.h"
#include "ops/api.h"
#include "ops/autocast.h"
#include "ops/dispatch.h"
#include "ops/graph/alias.h"
#include "ops/graph/capture.h"
#include "ops/graph/fused_pointwise.h"

namespace pacer::graph {

namespace {

size_t bytes_of(const ops::TensorMeta& m) {
  const Shape strides = m.strides.empty() ? contiguous_strides(m.sizes) : m.strides;
  int64_t span = 1;
  for (size_t i = 0; i < m.sizes.size(); ++i) {
    if (m.sizes[i] == 0) return 0;
    span += (m.sizes[i] - 1) * strides[i];
  }
  return size_t(span) * element_size(m.dtype);
}

// CUDA kernels like 256-byte aligned buffers (cuDNN, vector loads); CPU ones a cache line.
size_t alignment_for(Device d) { return d.is_cuda() ? 256 : kCpuAlignment; }

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

struct Block {
  int value;  // a planned value, or -1 - p for node position p's workspace
  size_t bytes;
  int first, last;  // node positions: the producer and the last reader (inclusive)
  size_t offset = 0;
};

// Places the blocks in `order`, each at the lowest offset where no block whose lifetime
// overlaps it sits; returns the bytes they span.
size_t place_in_order(std::vector<Block>& blocks, const std::vector<size_t>& order) {
  std::vector<size_t> placed;
  size_t total = 0;
  std::vector<const Block*> conflicts;
  for (size_t i : order) {
    Block& b = blocks[i];
    conflicts.clear();
    for (size_t j : placed) {
      const Block& q = blocks[j];
      if (q.first <= b.last && b.first <= q.last) conflicts.push_back(&q);
    }
    std::sort(conflicts.begin(), conflicts.end(), [](const Block* x, const Block* y) { return x->offset < y->offset; });
    size_t off = 0;
    for (const Block* q : conflicts) {
      if (off + b.bytes <= q->offset) break;
      off = std::max(off, q->offset + q->bytes);
    }
    b.offset = off;
    total = std::max(total, off + b.bytes);
    placed.push_back(i);
  }
  return total;
}

// Places the blocks (above) largest first, which keeps the big activations packed and lets
// small ones fill gaps. Workspaces take their turn by size too: ResNet-50's step took 9.6 MiB
// more with them placed after all tensors, 5.8 MiB more with all blocks by bytes x lifetime.
size_t place(std::vector<Block>& blocks) {
  std::vector<size_t> order(blocks.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return blocks[a].bytes > blocks[b].bytes; });
  return place_in_order(blocks, order);
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double tolerance_for(DType t) {
  switch (t) {
    case DType::F64: return 1e-9;
    case DType::F32: return 1e-4;
    case DType::F16:
    case DType::BF16: return 2e-2;
    default: return 0;
  }
}

}  // namespace

Executor::Executor(Graph graph, ExecutorOptions options) : graph_(std::move(graph)), options_(options) {
  if (const char* v = std::getenv("PACER_VERIFY_FUSION"); v != nullptr && *v != '\0' && std::string(v) != "0")
    options_.verify_fusion = true;
  if (const char* v = std::getenv("PACER_EMULATE_CUDA_GRAPH"); v != nullptr && std::string(v) == "1")
    options_.emulate_cuda_graph = true;
  graph_.rebuild_uses();
  verify(graph_, "executor setup");
  // Copies of a graph share their nodes' fused kernels; a pointwise kernel keeps what it last
  // uploaded for its node (PwDeviceTables), which a CUDA graph captured by this executor goes
  // on addressing: each executor gets kernels of its own, so another's runs cannot change it.
  for (Node& n : graph_.nodes)
    if (const FusedPointwiseKernel* k = pointwise_kernel_of(n))
      n.fused = std::make_shared<FusedPointwiseKernel>(k->program(), k->members());
  setup_cuda_graph();  // before planning: a CUDA graph's outputs are planned too
  // Scratch is served on the CPU only, and a CUDA graph's memory must not move after its
  // capture (the run that measures would be its warm-up).
  if (options_.plan_memory && options_.plan_workspace && !cuda_graph_) workspaces_ = Workspaces::Measure;
  find_pairs();
  workspace_bytes_.assign(graph_.nodes.size(), 0);
  workspace_arena_.assign(graph_.nodes.size(), -1);
  workspace_offset_.assign(graph_.nodes.size(), 0);
  plan();
  profile_shapes_ = std::getenv("PACER_PROFILE_SHAPES") != nullptr;
  stats_.nodes = int64_t(graph_.nodes.size());
  stats_.launches = graph_.launches();
}

void Executor::plan() {
  const size_t nv = graph_.values.size();
  const std::vector<int> root = memory_roots(graph_);
  std::vector<int> last(nv, -1);
  // A pair run at once is one position: what either reads lives to the second, what either
  // makes from the first.
  auto pair_end = [&](size_t p) { return int(p) + (with_next_[p] ? 1 : 0); };
  auto pair_start = [&](size_t p) { return int(p) - (p > 0 && with_next_[p - 1] ? 1 : 0); };
  for (size_t p = 0; p < graph_.nodes.size(); ++p) {
    const Node& n = graph_.nodes[p];
    for (int in : n.inputs)
      if (in >= 0) last[size_t(in)] = pair_end(p);
    for (int out : n.outputs) last[size_t(out)] = pair_end(p);
  }
  // Outputs go to the caller, who may keep them across runs: fresh memory (with a CUDA
  // graph they are planned, alive to the end of the run, and handed out as copies). Rebound
  // gradients are planned too, alive to the end of the run: the next run unbinds them
  // before it starts, and takes a new arena if someone still holds one (run()).
  std::vector<bool> escapes(nv, false), root_is_output(nv, false), root_is_grad(nv, false);
  for (int v : graph_.outputs) root_is_output[size_t(root[size_t(v)])] = true;
  for (const auto& [param, v] : graph_.grad_outputs) root_is_grad[size_t(root[size_t(v)])] = true;
  for (int v : graph_.escaping_values()) escapes[size_t(v)] = true;
  std::vector<int> root_last(nv, -1);
  for (size_t v = 0; v < nv; ++v) root_last[size_t(root[v])] = std::max(root_last[size_t(root[v])], last[v]);
  const int end = int(graph_.nodes.size()) - 1;
  for (size_t v = 0; v < nv; ++v)
    if (root_is_grad[v] || (outputs_planned_ && root_is_output[v])) root_last[v] = end;

  release_after_.assign(graph_.nodes.size(), {});
  for (size_t v = 0; v < nv; ++v)
    if (graph_.values[v].kind == ValueKind::Internal && !escapes[v] && last[v] >= 0)
      release_after_[size_t(last[v])].push_back(int(v));

  arena_of_.assign(nv, -1);
  offset_of_.assign(nv, 0);
  std::vector<std::vector<Block>> per_arena;
  for (size_t p = 0; p < graph_.nodes.size(); ++p) {
    const Node& n = graph_.nodes[p];
    if (!n.allocates() || (n.op && (n.op->has(ops::kView) || n.op->has(ops::kDynamicShape)))) continue;
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      if (n.aliased_input(k) >= 0) continue;  // a fused node's in-place update
      const int out = n.outputs[k];
      const Value& v = graph_.values[size_t(out)];
      const size_t bytes = bytes_of(v.meta);
      stats_.unplanned_bytes += bytes;
      if (!options_.plan_memory || (root_is_output[size_t(root[size_t(out)])] && !outputs_planned_) || bytes == 0)
        continue;
      size_t a = 0;
      while (a < arenas_.size() && arenas_[a].device != v.meta.device) ++a;
      if (a == arenas_.size()) {
        arenas_.push_back({v.meta.device, 0, {}});
        per_arena.emplace_back();
      }
      per_arena[a].push_back({out, round_up(bytes, alignment_for(v.meta.device)), pair_start(p), root_last[size_t(out)]});
    }
  }
  // The position where the most planned bytes are alive at once, and who made them.
  std::vector<int64_t> live_delta(graph_.nodes.size() + 1, 0);
  for (const std::vector<Block>& blocks : per_arena)
    for (const Block& b : blocks) {
      live_delta[size_t(b.first)] += int64_t(b.bytes);
      live_delta[size_t(b.last) + 1] -= int64_t(b.bytes);
    }
  int64_t live = 0, most = 0;
  live_bytes_.assign(graph_.nodes.size(), 0);
  stats_.peak_position = -1;
  stats_.peak_holders.clear();
  for (size_t p = 0; p < graph_.nodes.size(); ++p) {
    live += live_delta[p];
    live_bytes_[p] = live;
    if (live > most) {
      most = live;
      stats_.peak_position = int64_t(p);
    }
  }
  if (stats_.peak_position >= 0) {
    std::map<std::string, size_t> by_kind;
    for (const std::vector<Block>& blocks : per_arena)
      for (const Block& b : blocks)
        if (b.first <= stats_.peak_position && stats_.peak_position <= b.last)
          by_kind[graph_.nodes[size_t(b.first)].kind()] += b.bytes;
    stats_.peak_holders.assign(by_kind.begin(), by_kind.end());
    std::sort(stats_.peak_holders.begin(), stats_.peak_holders.end(),
              [](const auto& x, const auto& y) { return x.second > y.second; });
  }
  stats_.workspace_nodes = 0;
  stats_.largest_workspace = 0;
  if (workspaces_ == Workspaces::Planned) {
    for (size_t p = 0; p < graph_.nodes.size(); ++p) {
      const size_t bytes = round_up(workspace_bytes_[p], alignment_for(Device(DeviceType::CPU)));
      if (bytes == 0) continue;
      size_t a = 0;
      while (a < arenas_.size() && !arenas_[a].device.is_cpu()) ++a;
      if (a == arenas_.size()) {
        arenas_.push_back({Device(DeviceType::CPU), 0, {}});
        per_arena.emplace_back();
      }
      per_arena[a].push_back({-1 - int(p), bytes, pair_start(p), pair_end(p)});
      ++stats_.workspace_nodes;
      stats_.largest_workspace = std::max(stats_.largest_workspace, bytes);
    }
  }
  for (size_t a = 0; a < arenas_.size(); ++a) {
    arenas_[a].bytes = place(per_arena[a]);
    for (const Block& b : per_arena[a]) {
      if (b.value < 0) {
        workspace_arena_[size_t(-1 - b.value)] = int(a);
        workspace_offset_[size_t(-1 - b.value)] = b.offset;
        continue;
      }
      arena_of_[size_t(b.value)] = int(a);
      offset_of_[size_t(b.value)] = b.offset;
      ++stats_.planned_tensors;
    }
    stats_.planned_bytes += arenas_[a].bytes;
  }
}

void Executor::find_pairs() {
  with_next_.assign(graph_.nodes.size(), false);
  stats_.concurrent_pairs = 0;
  if (!options_.concurrent_pairs || options_.verify_fusion || cuda_graph_) return;
  auto is = [](const Node& n, const char* kind) { return n.device.is_cpu() && n.kind() == kind; };
  for (size_t p = 0; p + 1 < graph_.nodes.size(); ++p) {
    const Node &a = graph_.nodes[p], &b = graph_.nodes[p + 1];
    const bool input_weight = is(a, "conv2d_backward_input") && is(b, "conv2d_backward_weight");
    const bool weight_input = is(a, "conv2d_backward_weight") && is(b, "conv2d_backward_input");
    if ((!input_weight && !weight_input) || a.inputs[0] != b.inputs[0]) continue;
    // Neither reads what the other makes (their inputs are dy, the weight and the
    // convolution's input; their outputs are fresh).
    bool independent = true;
    for (int in : b.inputs)
      for (int out : a.outputs) independent = independent && in != out;
    if (!independent) continue;
    with_next_[p] = true;
    ++stats_.concurrent_pairs;
    ++p;
  }
}

size_t Executor::replan() {
  // The tensors of the last run keep the old arenas alive as long as they are held (its
  // gradients, until the next run unbinds them).
  arenas_.clear();
  stats_.planned_bytes = stats_.unplanned_bytes = 0;
  stats_.planned_tensors = 0;
  plan();
  return stats_.planned_bytes;
}

void Executor::plan_with_workspaces() {
  workspaces_ = Workspaces::Planned;
  workspace_threads_ = num_threads();
  if (std::all_of(workspace_bytes_.begin(), workspace_bytes_.end(), [](size_t b) { return b == 0; })) return;
  // Pairs run at once only where both workspaces fit beside the tensors alive there without
  // lifting the arena: first those that would pass the tensors' own peak go, then, while the
  // arena is larger than with no pairs at all, the pair with the most bytes alive. (The
  // measured sizes are those of the nodes run one after the other, with all threads: at
  // least what each needs alone.)
  std::vector<size_t> pairs;
  for (size_t p = 0; p < with_next_.size(); ++p)
    if (with_next_[p]) pairs.push_back(p);
  auto pressure = [&](size_t p) { return live_bytes_[p] + int64_t(workspace_bytes_[p] + workspace_bytes_[p + 1]); };
  const int64_t tensor_peak = *std::max_element(live_bytes_.begin(), live_bytes_.end());
  std::erase_if(pairs, [&](size_t p) { return pressure(p) > tensor_peak; });
  std::sort(pairs.begin(), pairs.end(), [&](size_t x, size_t y) { return pressure(x) > pressure(y); });
  auto pair_only = [&](size_t from) {
    std::fill(with_next_.begin(), with_next_.end(), false);
    for (size_t i = from; i < pairs.size(); ++i) with_next_[pairs[i]] = true;
  };
  pair_only(pairs.size());
  const size_t unpaired = replan();
  size_t from = 0;
  for (pair_only(from); from < pairs.size() && replan() > unpaired; pair_only(++from)) {
  }
  if (from == pairs.size()) replan();
  stats_.concurrent_pairs = int64_t(pairs.size() - from);
  touch_new_arenas_ = true;
}

// Each tensor gets a storage of its own over its arena range (own version counter, own
// identity for kernels that compare storages), which keeps the arena alive.
Tensor Executor::planned_tensor(int value) {
  return arena_tensor(size_t(arena_of_[size_t(value)]), offset_of_[size_t(value)], graph_.values[size_t(value)].meta);
}

Tensor Executor::arena_tensor(size_t arena, size_t offset, const ops::TensorMeta& m) {
  Arena& a = arenas_[arena];
  if (!a.storage) a.storage = make_intrusive<StorageImpl>(a.bytes, a.device);
  char* p = static_cast<char*>(a.storage->data()) + offset;
  auto storage = make_intrusive<StorageImpl>(p, bytes_of(m), a.device, [keep = a.storage](void*) {});
  const Shape strides = m.strides.empty() ? contiguous_strides(m.sizes) : m.strides;
  return Tensor(make_intrusive<TensorImpl>(std::move(storage), m.dtype, m.sizes, strides, 0));
}

bool Executor::in_arena(const Tensor& t) const {
  if (!t.defined() || t.nbytes() == 0) return false;
  const char* p = static_cast<const char*>(t.data());
  for (const Arena& a : arenas_) {
    if (!a.storage) continue;
    const char* base = static_cast<const char*>(a.storage->data());
    if (p >= base && p + t.nbytes() <= base + a.bytes) return true;
  }
  return false;
}

std::vector<Tensor> Executor::allocate_outputs(const Node& n, const std::vector<Tensor>& inputs, bool planned) {
  std::vector<Tensor> out;
  out.reserve(n.outputs.size());
  for (size_t k = 0; k < n.outputs.size(); ++k) {
    const int id = n.outputs[k];
    if (n.fused && n.aliased_input(k) >= 0) {  // updated in place
      out.push_back(inputs[size_t(n.aliased_input(k))]);
      continue;
    }
    if (planned && arena_of_[size_t(id)] >= 0) {
      out.push_back(planned_tensor(id));
      continue;
    }
    const ops::TensorMeta& m = graph_.values[size_t(id)].meta;
    const Options o{.dtype = m.dtype, .device = m.device};
    out.push_back(m.strides.empty() ? empty(m.sizes, o) : empty_strided(m.sizes, m.strides, o));
  }
  return out;
}

void Executor::run_node(const Node& n, std::vector<Tensor>& env, bool planned) {
  std::vector<Tensor> inputs;
  inputs.reserve(n.inputs.size());
  for (int in : n.inputs) inputs.push_back(in >= 0 ? env[size_t(in)] : Tensor());
  std::vector<Tensor> outputs;
  NoGradGuard no_grad;
  AutocastSuspend no_autocast;
  detail::KernelScope in_kernel;
  std::optional<cuda::DeviceGuard> device_guard;
  if (n.device.is_cuda()) device_guard.emplace(n.device.index);
  if (n.fused) {
    outputs = allocate_outputs(n, inputs, planned);
    n.fused->run(inputs, outputs);
    for (int i : n.written_inputs()) inputs[size_t(i)].bump_version();
  } else {
    const ops::OpDef& op = *n.op;
    ops::OpCall c{op, std::move(inputs), n.attrs, {}, {}, n.device};
    c.output_meta.reserve(n.outputs.size());
    for (int id : n.outputs) c.output_meta.push_back(graph_.values[size_t(id)].meta);
    if (op.has(ops::kInplace)) c.outputs.push_back(c.inputs[0]);
    else if (!op.has(ops::kView) && !op.has(ops::kDynamicShape)) c.outputs = allocate_outputs(n, c.inputs, planned);
    op.kernels[int(n.device.type)](c);
    for (int i : n.written_inputs()) c.inputs[size_t(i)].bump_version();
    outputs = std::move(c.outputs);
  }
  ops::note_kernel_launches(uint64_t(n.fused ? n.fused->launches() : 1));
  PACER_CHECK(outputs.size() == n.outputs.size(), "produced {} outputs, the graph expects {}", outputs.size(),
              n.outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) env[size_t(n.outputs[i])] = std::move(outputs[i]);
}

// Runs the reference of fused node `n` on copies of what it updates in place, before the
// fused node runs; returns the reference's outputs (compared by check_fused afterwards).
std::vector<Tensor> Executor::run_reference(const Node& n, const std::vector<Tensor>& env) {
  std::vector<Tensor> scratch = env;
  for (int i : n.written_inputs()) scratch[size_t(n.inputs[size_t(i)])] = clone(env[size_t(n.inputs[size_t(i)])]);
  for (int out : n.outputs) scratch[size_t(out)] = Tensor();
  for (const Node& r : n.reference) run_node(r, scratch, false);  // memory of its own
  std::vector<Tensor> out;
  for (int v : n.outputs) out.push_back(scratch[size_t(v)]);
  return out;
}

void Executor::check_fused(const Node& n, const std::vector<Tensor>& env, const std::vector<Tensor>& reference) {
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    const Tensor& got = env[size_t(n.outputs[i])];
    const Tensor& want = reference[i];
    const std::vector<double> a = got.to(kCPU).to(DType::F64).to_vector<double>();
    const std::vector<double> b = want.to(kCPU).to(DType::F64).to_vector<double>();
    const double tol = tolerance_for(got.dtype());
    for (size_t k = 0; k < a.size(); ++k) {
      const bool same = (std::isnan(a[k]) && std::isnan(b[k])) || std::abs(a[k] - b[k]) <= tol * (1 + std::abs(b[k]));
      PACER_CHECK(same,
                  "PACER_VERIFY_FUSION: fused node {} ({}: {}) output {} differs from its unfused reference at element "
                  "{}: {} vs {} (tolerance {} for {})",
                  n.id, n.kind(), n.fused->describe(), i, k, a[k], b[k], tol, got.dtype());
    }
  }
}

std::vector<KindProfile> Executor::profile() const {
  std::vector<KindProfile> out;
  for (const auto& [kind, p] : profile_) out.push_back({kind, p.calls, p.seconds, p.cpu_seconds});
  std::sort(out.begin(), out.end(), [](const KindProfile& a, const KindProfile& b) { return a.seconds > b.seconds; });
  return out;
}

std::vector<Tensor> Executor::run(const std::vector<Tensor>& inputs) {
  PACER_CHECK(inputs.size() == graph_.inputs.size(), "graph run: expected {} inputs (as captured), got {}",
              graph_.inputs.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value& v = graph_.values[size_t(graph_.inputs[i])];
    const Tensor& t = inputs[i];
    PACER_CHECK(t.defined() && t.sizes() == v.meta.sizes && t.dtype() == v.meta.dtype && t.device() == v.meta.device,
                "graph run: input {} must be {} {} on {} (as captured), got {}", i, v.meta.dtype, v.meta.sizes,
                v.meta.device,
                t.defined() ? fmt::format("{} {} on {}", t.dtype(), t.sizes(), t.device()) : std::string("undefined"));
  }
  // The step set these gradients from nothing when it was captured (zero_grad first), and
  // will again: last run's gradients can go now rather than after this run.
  for (const auto& [param, v] : graph_.grad_outputs) {
    Tensor p = param;
    p.set_grad(Tensor());
  }
  // Every planned tensor holds a reference to its arena. Past this point none of this
  // executor's is alive, so another holder kept a gradient of an earlier run: that arena
  // stays with it, and this run takes a new one.
  bool arena_replaced = false;
  for (Arena& a : arenas_)
    if (a.storage && a.storage->use_count() > 1) {
      a.storage = Storage();
      arena_replaced = true;
    }
  // Scratch depends on the pool's size (per-thread buffers and sums): measured again when it
  // changed, in the tensors' current plan, and planned again after that run.
  if (workspaces_ == Workspaces::Planned && num_threads() != workspace_threads_) {
    workspaces_ = Workspaces::Measure;
    find_pairs();
  }
  if (cuda_graph_) return run_cuda_graph(inputs, arena_replaced);
  std::vector<Tensor> out = run_nodes(inputs);
  return outputs_planned_ ? handed_out(out) : out;
}

std::vector<Tensor> Executor::handed_out(const std::vector<Tensor>& outputs) const {
  NoGradGuard no_grad;
  AutocastSuspend no_autocast;
  std::vector<Tensor> copies;
  copies.reserve(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i)
    copies.push_back(graph_.values[size_t(graph_.outputs[i])].kind == ValueKind::State
                         ? outputs[i]
                         : detail::copy_keeping_layout(outputs[i]));
  return copies;
}

namespace detail {

Tensor copy_keeping_layout(const Tensor& t) {
  std::vector<size_t> order(size_t(t.dim()));
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return t.strides()[a] < t.strides()[b]; });
  int64_t expect = 1;
  bool dense = true;
  for (size_t d : order) {
    if (t.sizes()[d] == 1) continue;
    dense = dense && t.strides()[d] == expect;
    expect *= t.sizes()[d];
  }
  const Options o{.dtype = t.dtype(), .device = t.device()};
  Tensor m = dense ? empty_strided(t.sizes(), t.strides(), o) : empty(t.sizes(), o);
  copy_(m, t);
  return m;
}

}  // namespace detail

std::vector<Tensor> Executor::run_nodes(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> env(graph_.values.size());
  for (size_t i = 0; i < inputs.size(); ++i) env[size_t(graph_.inputs[i])] = inputs[i];
  for (const Value& v : graph_.values)
    if (v.kind == ValueKind::State) env[size_t(v.id)] = v.state;
  // Node p with its scratch served from its workspace range (or measured), fused nodes
  // checked against their references when asked.
  auto run_at = [&](size_t p) {
    const Node& n = graph_.nodes[p];
    try {
      std::vector<Tensor> reference;
      if (n.fused && options_.verify_fusion) reference = run_reference(n, env);
      {
        std::optional<ScratchRegion> region;
        if (workspaces_ == Workspaces::Measure) {
          region.emplace();
        } else if (workspace_arena_[p] >= 0) {
          const Arena& a = arenas_[size_t(workspace_arena_[p])];
          region.emplace(a.storage, workspace_offset_[p], workspace_bytes_[p]);
        }
        run_node(n, env);
        if (workspaces_ == Workspaces::Measure) workspace_bytes_[p] = region->requested();
      }
      if (!reference.empty()) check_fused(n, env, reference);
    } catch (const Error& e) {
      throw Error(fmt::format("graph run: node {} ({}): {}", n.id, n.kind(), e.what()));
    }
  };
  // The arenas exist before any node runs (a pair's two nodes would race to allocate one).
  // Arenas planned again after the first run are also first touched here, not inside a node.
  for (Arena& a : arenas_)
    if (!a.storage && a.bytes > 0) {
      a.storage = make_intrusive<StorageImpl>(a.bytes, a.device);
      if (touch_new_arenas_ && a.device.is_cpu()) std::memset(a.storage->data(), 0, a.bytes);
    }
  touch_new_arenas_ = false;
  for (size_t p = 0; p < graph_.nodes.size(); ++p) {
    const Node& n = graph_.nodes[p];
    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = options_.profile ? process_cpu_seconds() : 0;
    // (Not while measuring scratch: alone, each node asks for what it needs with all threads.)
    const bool pair = with_next_[p] && num_threads() == 2 && workspaces_ != Workspaces::Measure;
    if (pair) {
      // One node per thread, each running its kernels' chunks one after the other: the
      // same chunks as alone, so the same results bit for bit.
      parallel_for(0, 2, 1, [&](int64_t b, int64_t e) {
        const SerialChunks serial;
        for (int64_t i = b; i < e; ++i) run_at(p + size_t(i));
      });
    } else {
      run_at(p);
    }
    if (options_.profile) {
      if (n.device.is_cuda()) cuda::synchronize(n.device.index);
      std::string key = pair ? n.kind() + " | " + graph_.nodes[p + 1].kind() : n.kind();
      if (profile_shapes_) key += fmt::format("{}", graph_.values[size_t(n.outputs[0])].meta.sizes);
      KindProfile& k = profile_[key];
      ++k.calls;
      k.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      k.cpu_seconds += process_cpu_seconds() - cpu0;
    }
    if (pair) {
      for (int v : release_after_[p]) env[size_t(v)] = Tensor();
      ++p;
    }
    for (int v : release_after_[p]) env[size_t(v)] = Tensor();
  }
  if (workspaces_ == Workspaces::Measure) plan_with_workspaces();
  std::vector<Tensor> out;
  out.reserve(graph_.outputs.size());
  for (int v : graph_.outputs) out.push_back(env[size_t(v)]);
  for (const auto& [param, v] : graph_.grad_outputs) {
    Tensor p = param;
    p.set_grad(env[size_t(v)]);
  }
  return out;
}

}  // namespace pacer::graph
