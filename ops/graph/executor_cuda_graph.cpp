// The executor's runs as one CUDA graph. A graph launch costs one call where the step's
// ~400 kernels cost one launch each; what makes that safe is that a planned step touches the
// same memory every run:
//  - intermediates and rebound gradients sit in the arenas (planned), parameters and
//    optimizer state are the step's state, updated in place;
//  - inputs are copied into memory the executor keeps (the caller's tensors move);
//  - outputs are written where the capture put them and handed out as copies (the caller
//    may keep them while the next replay runs);
//  - temporaries the kernels allocate while being captured come from the caching allocator
//    on a stream of the executor's own, whose blocks are never given back while the graph
//    lives and that nothing else allocates on.
// What a capture freezes and can change is checked before every replay: a new arena (a
// gradient held by the caller) or a changed value of a CPU tensor that a kernel reads as a
// scalar means capturing again after one warm-up run over the new memory.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "autograd/grad_mode.h"
#include "core/cuda/caching_allocator.h"
#include "core/cuda/graph.h"
#include "core/cuda/runtime.h"
#include "core/cuda/stream.h"
#include "ops/api.h"
#include "ops/autocast.h"
#include "ops/dispatch.h"
#include "ops/graph/executor.h"

namespace pacer::graph {

struct Executor::CudaGraphReplay {
  int device = 0;
  cuda::Stream stream;  // the capture stream; its cached blocks are retained
  bool stream_made = false;
  std::vector<Tensor> inputs;  // every run's inputs are copied here
  bool warm = false;           // a run over `inputs` and the current arenas has completed
  std::unique_ptr<cuda::CudaGraph> graph;
  std::vector<Tensor> outputs;  // where the graph leaves the step's outputs
  std::vector<bool> copy_output;
  struct GradAt {
    int arena = -1;
    size_t offset = 0;
    ops::TensorMeta meta;
  };
  std::vector<GradAt> grads;  // per grad_outputs entry
  std::vector<std::pair<Tensor, Tensor>> host_values;  // CPU tensors kernels read, and their values at capture

  ~CudaGraphReplay() {
    graph.reset();  // waits for queued replays
    if (stream_made) cuda::release_stream_blocks(stream);
  }
};

void Executor::setup_cuda_graph() {
  const std::string refusal = cuda_graph_refusal();
  stats_.cuda_graph = refusal == "cpu" ? "" : refusal;
  if (!refusal.empty()) return;
  cuda_graph_ = std::make_shared<CudaGraphReplay>();
  cuda_graph_->device = graph_.nodes.at(0).device.index;
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
  if (!options_.cuda_graph) return "off (ExecutorOptions::cuda_graph is false)";
  if (const char* v = std::getenv("PACER_CUDA_GRAPH"); v && std::strcmp(v, "0") == 0) return "off (PACER_CUDA_GRAPH=0)";
  if (options_.profile) return "off: per-node profiling waits for each node";
  if (options_.verify_fusion) return "off: PACER_VERIFY_FUSION compares values on the host";
  if (cuda::caching_disabled()) return "off: PACER_CUDA_ALLOC_DEBUG=1 frees each block at once";
  for (size_t i = 0; i < graph_.inputs.size(); ++i)
    if (!graph_.values[size_t(graph_.inputs[i])].meta.device.is_cuda())
      return fmt::format("off: input {} is on the CPU", i);
  for (const Node& n : graph_.nodes)
    if (n.op && n.op->has(ops::kDynamicShape))
      return fmt::format("off: node {} ({}) has a shape that depends on values", n.id, n.kind());
  return "";
}

namespace {

// Whether `t` covers its memory exactly, in some order of its dimensions (contiguous,
// channels-last, ...): a copy can then keep its layout.
bool dense(const Tensor& t) {
  std::vector<size_t> order(size_t(t.dim()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return t.strides()[a] < t.strides()[b]; });
  int64_t expect = 1;
  for (size_t d : order) {
    if (t.sizes()[d] == 1) continue;
    if (t.strides()[d] != expect) return false;
    expect *= t.sizes()[d];
  }
  return true;
}

// Memory for a run's input that every run copies into: laid out as the first input was
// (a channels-last image stays channels-last for the kernels captured over it).
Tensor input_memory_like(const Tensor& t) {
  const Options o{.dtype = t.dtype(), .device = t.device()};
  Tensor m = dense(t) ? empty_strided(t.sizes(), t.strides(), o) : empty(t.sizes(), o);
  copy_(m, t);
  return m;
}

bool same_values(const Tensor& now, const Tensor& snapshot) {
  const Tensor c = contiguous(now);
  return c.dtype() == snapshot.dtype() && c.nbytes() == snapshot.nbytes() &&
         std::memcmp(c.data(), snapshot.data(), c.nbytes()) == 0;
}

}  // namespace

std::vector<Tensor> Executor::run_cuda_graph(const std::vector<Tensor>& inputs, bool arena_replaced) {
  CudaGraphReplay& r = *cuda_graph_;
  cuda::DeviceGuard on_device(r.device);
  const cuda::Stream caller = cuda::current_stream(r.device);
  {
    NoGradGuard no_grad;
    AutocastSuspend no_autocast;
    if (r.inputs.empty()) {
      for (const Tensor& t : inputs) r.inputs.push_back(input_memory_like(t));
    } else {
      for (size_t i = 0; i < inputs.size(); ++i) copy_(r.inputs[i], inputs[i]);
    }
  }
  bool moved = arena_replaced;
  for (const auto& [now, snapshot] : r.host_values) moved = moved || !same_values(now, snapshot);
  if (moved) {
    r.graph.reset();
    r.warm = false;
  }
  if (!r.graph && !r.warm) {
    std::vector<Tensor> out = run_nodes(r.inputs);
    r.warm = true;
    return out;
  }

  if (!r.graph) {
    if (!r.stream_made) {
      r.stream = cuda::Stream::create(r.device);
      cuda::retain_stream_blocks(r.stream);
      r.stream_made = true;
    }
    r.host_values.clear();
    std::vector<bool> seen(graph_.values.size(), false);
    for (const Node& n : graph_.nodes)
      for (int in : n.inputs) {
        if (in < 0 || seen[size_t(in)]) continue;
        seen[size_t(in)] = true;
        const Value& v = graph_.values[size_t(in)];
        if (v.kind == ValueKind::State && v.state.defined() && v.state.device().is_cpu())
          r.host_values.emplace_back(v.state, clone(contiguous(v.state)));
      }
    auto g = std::make_unique<cuda::CudaGraph>();
    std::vector<Tensor> out;
    std::string why;
    {
      cuda::StreamGuard on_capture_stream(r.stream);
      g->begin_capture(r.stream);
      try {
        out = run_nodes(r.inputs);
      } catch (const std::exception& e) {
        why = e.what();
      }
      const std::string ended = g->end_capture();
      if (why.empty()) why = ended;
    }
    // Nothing of the captured run ran: the step runs without the graph, now and from now on.
    auto refuse = [&](const std::string& reason) {
      stats_.cuda_graph = "refused: " + reason;
      const std::vector<Tensor> static_inputs = r.inputs;
      cuda_graph_.reset();
      for (const auto& [param, v] : graph_.grad_outputs) {
        Tensor p = param;
        p.set_grad(Tensor());
      }
      return run_nodes(static_inputs);
    };
    if (!why.empty()) return refuse(why);
    ++stats_.cuda_graph_captures;
    stats_.cuda_graph_nodes = g->nodes();
    stats_.cuda_graph = "on";
    r.outputs = out;
    r.copy_output.assign(out.size(), true);
    for (size_t i = 0; i < out.size(); ++i)
      r.copy_output[i] = graph_.values[size_t(graph_.outputs[i])].kind != ValueKind::State;
    // Where each rebound gradient lies: replays rebuild it there (holding a tensor over an
    // arena here would read as a gradient kept by the caller, see run()).
    r.grads.clear();
    for (const auto& [param, v] : graph_.grad_outputs) {
      const Tensor grad = param.grad();
      CudaGraphReplay::GradAt at;
      if (grad.defined()) {
        at.meta = {.sizes = grad.sizes(), .dtype = grad.dtype(), .device = grad.device(), .strides = grad.strides()};
        for (size_t a = 0; a < arenas_.size(); ++a) {
          if (!arenas_[a].storage) continue;
          const char* base = static_cast<const char*>(arenas_[a].storage->data());
          const char* p = static_cast<const char*>(grad.data());
          if (p >= base && p < base + arenas_[a].bytes) {
            at.arena = int(a);
            at.offset = size_t(p - base);
          }
        }
      }
      if (at.arena < 0) why = fmt::format("gradient value {} lies outside the planned memory", v);
      r.grads.push_back(std::move(at));
    }
    if (!why.empty()) return refuse(why);
    r.graph = std::move(g);
    // The capture recorded the step without running it: the launch below is the run.
  }

  r.graph->launch(caller);
  ++stats_.cuda_graph_replays;
  ops::note_kernel_launches(1);
  size_t k = 0;
  for (const auto& [param, v] : graph_.grad_outputs) {
    const CudaGraphReplay::GradAt& at = r.grads[k++];
    Tensor p = param;
    p.set_grad(arena_tensor(size_t(at.arena), at.offset, at.meta));
  }
  std::vector<Tensor> result;
  NoGradGuard no_grad;
  for (size_t i = 0; i < r.outputs.size(); ++i) result.push_back(r.copy_output[i] ? clone(r.outputs[i]) : r.outputs[i]);
  return result;
}

}  // namespace pacer::graph
