// The executor's runs as one CUDA graph. A graph launch costs one call where the step's
// ~400 kernels cost one launch each; what makes that safe is that a planned step touches the
// same memory every run:
//  - intermediates and rebound gradients sit in the arenas (planned), parameters and
//    optimizer state are the step's state, updated in place;
//  - inputs are copied into memory the executor keeps (the caller's tensors move);
//  - outputs are planned in the arenas like gradients (alive to the end of the run) and
//    handed out as copies: the caller may keep them while the next replay runs;
//  - temporaries the kernels allocate while being captured come from the caching allocator
//    on a stream of the executor's own, whose blocks are never given back while the graph
//    lives and that nothing else allocates on.
// What a capture freezes and can change is checked before every replay: a new arena (a
// gradient held by the caller) or a changed value of a CPU tensor that a kernel reads as a
// scalar means capturing again after one warm-up run over the new memory. Each run waits
// for the last one's work first (an event), whichever stream either was queued on.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "autograd/grad_mode.h"
#include "core/cuda/caching_allocator.h"
#include "core/cuda/graph.h"
#include "core/cuda/runtime.h"
#include "core/cuda/stream.h"
#include "ops/api.h"
#include "ops/autocast.h"
#include "ops/dispatch.h"
#include "ops/graph/alias.h"
#include "ops/graph/executor.h"
#include "ops/graph/fused_pointwise.h"

namespace pacer::graph {

namespace {

// Where a replay leaves a tensor it hands out: a range of an arena, rebuilt per run (holding a
// tensor over an arena would read as one kept by the caller, see Executor::run()), or a tensor
// outside the arenas (state, input memory, a block the capture allocated: replays write it in
// place, and holding it keeps it).
struct Slot {
  int arena = -1;
  size_t offset = 0;
  ops::TensorMeta meta;
  Tensor held;
};

// The slot of `t` among the arenas (base address, bytes; a null base: not allocated yet).
Slot slot_in(const std::vector<std::pair<const char*, size_t>>& arenas, const Tensor& t) {
  Slot s;
  s.meta = {.sizes = t.sizes(), .dtype = t.dtype(), .device = t.device(), .strides = t.strides()};
  const char* p = t.nbytes() > 0 ? static_cast<const char*>(t.data()) : nullptr;
  for (size_t a = 0; a < arenas.size() && p; ++a) {
    const auto [base, bytes] = arenas[a];
    if (base && p >= base && p < base + bytes) {
      s.arena = int(a);
      s.offset = size_t(p - base);
    }
  }
  if (s.arena < 0) s.held = t;
  return s;
}

// The CPU tensors the graph's kernels read, with their values now: a capture freezes them into
// launch arguments. Emulated (every tensor on the CPU), the small ones the step does not write
// itself stand for them.
std::vector<std::pair<Tensor, Tensor>> host_values_of(const Graph& g, bool emulated) {
  std::vector<bool> seen(g.values.size(), false);
  if (emulated) {
    const std::vector<int> root = memory_roots(g);
    for (const Node& n : g.nodes)
      for (int i : n.written_inputs())
        if (n.inputs[size_t(i)] >= 0) seen[size_t(root[size_t(n.inputs[size_t(i)])])] = true;
  }
  std::vector<std::pair<Tensor, Tensor>> out;
  for (const Node& n : g.nodes)
    for (int in : n.inputs) {
      if (in < 0 || seen[size_t(in)]) continue;
      seen[size_t(in)] = true;
      const Value& v = g.values[size_t(in)];
      if (v.kind == ValueKind::State && v.state.defined() && v.state.device().is_cpu() &&
          (!emulated || v.state.nbytes() <= 16))
        out.emplace_back(v.state, clone(contiguous(v.state)));
    }
  return out;
}

}  // namespace

struct Executor::CudaGraphReplay {
  int device = 0;
  bool emulated = false;  // ExecutorOptions::emulate_cuda_graph: CPU nodes, "launches" re-run them
  bool captured = false;
  cuda::Stream stream;  // the capture stream (null until made); its cached blocks are retained
  std::vector<Tensor> inputs;  // every run's inputs are copied here
  bool warm = false;           // a run over `inputs` and the current arenas has completed
  std::unique_ptr<cuda::CudaGraph> graph;
  std::vector<Slot> outputs, grads;  // where the replays leave them
  std::vector<std::pair<Tensor, Tensor>> host_values;  // CPU tensors kernels read, and their values at capture
  std::vector<Tensor> kept;  // device tables the fused kernels read (a graph copy may upload new ones)
  cuda::Event done;          // recorded after each run's work

  ~CudaGraphReplay() {
    graph.reset();  // waits for queued replays
    if (stream.handle()) cuda::release_stream_blocks(stream);
  }
};

void Executor::setup_cuda_graph() {
  const bool all_cpu =
      std::all_of(graph_.nodes.begin(), graph_.nodes.end(), [](const Node& n) { return n.device.is_cpu(); });
  const bool emulated = options_.emulate_cuda_graph && !graph_.nodes.empty() && all_cpu;
  const std::string refusal = emulated ? emulation_refusal() : cuda_graph_refusal();
  stats_.cuda_graph = refusal == "cpu" ? "" : refusal;
  if (!refusal.empty()) return;
  cuda_graph_ = std::make_shared<CudaGraphReplay>();
  cuda_graph_->emulated = emulated;
  cuda_graph_->device = emulated ? -1 : graph_.nodes.at(0).device.index;
  outputs_planned_ = true;
}

std::string Executor::cuda_graph_refusal() const {
  int device = -1;
  const Node* on_cpu = nullptr;
  for (const Node& n : graph_.nodes) {
    if (!n.device.is_cuda()) {
      if (!on_cpu) on_cpu = &n;
      continue;
    }
    if (device >= 0 && n.device.index != device)
      return fmt::format("off: nodes run on cuda:{} and cuda:{}; a CUDA graph holds one device's work", device,
                         n.device.index);
    device = n.device.index;
  }
  if (device < 0) return "cpu";
  if (on_cpu)
    return fmt::format("off: node {} ({}) runs on the CPU, and a CUDA graph replays device work only", on_cpu->id,
                       on_cpu->kind());
  if (cuda::caching_disabled()) return "off: PACER_CUDA_ALLOC_DEBUG=1 frees each block at once";
  for (size_t i = 0; i < graph_.inputs.size(); ++i)
    if (!graph_.values[size_t(graph_.inputs[i])].meta.device.is_cuda())
      return fmt::format("off: input {} is on the CPU", i);
  return emulation_refusal();
}

// The conditions that do not depend on the device (an emulated CUDA graph checks these alone).
std::string Executor::emulation_refusal() const {
  if (!options_.cuda_graph) return "off (ExecutorOptions::cuda_graph is false)";
  if (const char* v = std::getenv("PACER_CUDA_GRAPH"); v && std::strcmp(v, "0") == 0)
    return "off (PACER_CUDA_GRAPH=0)";
  if (!options_.plan_memory) return "off: memory planning is off (a CUDA graph replays over planned memory)";
  if (options_.profile) return "off: per-node profiling waits for each node";
  if (options_.verify_fusion) return "off: PACER_VERIFY_FUSION compares values on the host";
  const std::vector<int> root = memory_roots(graph_);
  for (const Node& n : graph_.nodes) {
    if (n.op && n.op->has(ops::kDynamicShape))
      return fmt::format("off: node {} ({}) has a shape that depends on values", n.id, n.kind());
    // Runs read copies of the inputs: an update of one in place would miss the caller's tensor.
    for (int i : n.written_inputs()) {
      const int v = n.inputs[size_t(i)];
      if (v >= 0 && graph_.values[size_t(root[size_t(v)])].kind == ValueKind::Input)
        return fmt::format("off: node {} ({}) updates input memory in place", n.id, n.kind());
    }
  }
  return "";
}

namespace {

bool same_values(const Tensor& now, const Tensor& snapshot) {
  const Tensor c = contiguous(now);
  return c.dtype() == snapshot.dtype() && c.nbytes() == snapshot.nbytes() &&
         std::memcmp(c.data(), snapshot.data(), c.nbytes()) == 0;
}

}  // namespace

std::vector<Tensor> Executor::run_cuda_graph(const std::vector<Tensor>& inputs, bool arena_replaced) {
  CudaGraphReplay& r = *cuda_graph_;
  std::optional<cuda::DeviceGuard> on_device;
  cuda::Stream caller;
  if (!r.emulated) {
    on_device.emplace(r.device);
    caller = cuda::current_stream(r.device);
    r.done.wait(caller);
  }
  auto finish = [&](std::vector<Tensor> out) {
    if (!r.emulated) r.done.record(caller);
    return out;
  };
  {
    NoGradGuard no_grad;
    AutocastSuspend no_autocast;
    if (r.inputs.empty()) {
      for (const Tensor& t : inputs) r.inputs.push_back(detail::copy_keeping_layout(t));  // the first's layout
    } else {
      for (size_t i = 0; i < inputs.size(); ++i) copy_(r.inputs[i], inputs[i]);
    }
  }
  bool moved = arena_replaced;
  for (const auto& [now, snapshot] : r.host_values) moved = moved || !same_values(now, snapshot);
  if (moved) {
    r.graph.reset();
    r.captured = false;
    r.warm = false;
    r.host_values.clear();
    r.kept.clear();
  }
  if (!r.captured && !r.warm) {
    // The warm-up uploads the fused kernels' tables with today's host scalars: snapshot them
    // now, so a scalar that moves before the capture warms up again instead of capturing
    // over stale tables (which would refuse the CUDA graph for good).
    r.host_values = host_values_of(graph_, r.emulated);
    std::vector<Tensor> out = handed_out(run_nodes(r.inputs));
    r.warm = true;
    return finish(std::move(out));
  }

  bool ran = false;  // the emulated capture runs the step itself
  if (!r.captured) {
    if (!r.emulated && !r.stream.handle()) {
      r.stream = cuda::Stream::create(r.device);
      cuda::retain_stream_blocks(r.stream);
    }
    // (r.host_values: taken at the warm-up, and unmoved since, or this run would have warmed up.)
    std::unique_ptr<cuda::CudaGraph> g = r.emulated ? nullptr : std::make_unique<cuda::CudaGraph>();
    std::string why;
    std::vector<Tensor> out;
    bool completed = false;  // the nodes' run returned (emulated: the step has run)
    {
      std::optional<cuda::StreamGuard> on_capture_stream;
      if (!r.emulated) on_capture_stream.emplace(r.stream);
      try {
        // Blocks cached for other streams cannot serve the capture stream, and no memory can
        // be freed during a capture: hand the unused ones back first, or a large step may
        // run out of memory while captured (and run without its graph from then on).
        if (g) cuda::empty_cache();
        if (g) g->begin_capture(r.stream);
        out = run_nodes(r.inputs);
        completed = true;
        // Where the outputs and gradients lie, for the replays to hand them out.
        std::vector<std::pair<const char*, size_t>> arenas;
        for (const Arena& a : arenas_)
          arenas.emplace_back(a.storage ? static_cast<const char*>(a.storage->data()) : nullptr, a.bytes);
        r.outputs.clear();
        for (const Tensor& t : out) r.outputs.push_back(slot_in(arenas, t));
        r.grads.clear();
        size_t k = 0;
        for (const auto& [param, v] : graph_.grad_outputs) {
          r.grads.push_back(slot_in(arenas, param.grad()));
          // A held gradient would be overwritten by the next replay while the caller may keep it.
          PACER_CHECK(r.grads.back().arena >= 0 || param.grad().nbytes() == 0,
                      "gradient {} lies outside the planned memory", k);
          ++k;
        }
      } catch (const std::exception& e) {
        if (r.emulated && !completed) throw;  // a failing step, not a capture: as the plain run would
        why = e.what();
      }
      if (g) {
        const std::string ended = g->end_capture();
        if (why.empty()) why = ended;
      }
    }
    if (!why.empty()) {
      // From now on the step runs without the graph. A real capture ran nothing: run the step
      // now. An emulated one ran it (unless it threw): hand out what it made.
      stats_.cuda_graph = "refused: " + why;
      const std::vector<Tensor> kept_inputs = r.inputs;
      const bool ran_already = r.emulated && completed;
      cuda_graph_.reset();
      if (ran_already) return handed_out(out);
      for (const auto& [param, v] : graph_.grad_outputs) {
        Tensor p = param;
        p.set_grad(Tensor());
      }
      return handed_out(run_nodes(kept_inputs));
    }
    out.clear();  // its arena references: a held one would read as a gradient kept by the caller
    for (const Node& n : graph_.nodes)
      if (const FusedPointwiseKernel* k = pointwise_kernel_of(n)) {
        r.kept.push_back(k->device_tables().table);
        r.kept.push_back(k->device_tables().chunks);
      }
    ++stats_.cuda_graph_captures;
    stats_.cuda_graph_nodes = g ? g->nodes() : int64_t(graph_.nodes.size());
    stats_.cuda_graph = "on";
    r.graph = std::move(g);
    r.captured = true;
    // A capture records the step without running it: the launch below is the run (an
    // emulated capture ran it).
    ran = r.emulated;
  }

  if (!ran) {
    if (r.emulated) {
      run_nodes(r.inputs);  // the "launch": the same nodes over the same memory
    } else {
      r.graph->launch(caller);
      ops::note_kernel_launches(1);
    }
  }
  ++stats_.cuda_graph_replays;
  auto rebuilt = [&](const Slot& s) {
    return s.arena >= 0 ? arena_tensor(size_t(s.arena), s.offset, s.meta) : s.held;
  };
  size_t k = 0;
  for (const auto& [param, v] : graph_.grad_outputs) {
    Tensor p = param;
    p.set_grad(rebuilt(r.grads[k++]));
  }
  std::vector<Tensor> out;
  for (const Slot& s : r.outputs) out.push_back(rebuilt(s));
  return finish(handed_out(out));
}

}  // namespace pacer::graph
