#include "ops/dispatch.h"

#include <atomic>
#include <optional>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/saved_tensor.h"
#include "core/autograd_meta.h"
#include "core/cuda/runtime.h"
#include "core/host_reads.h"
#include "ops/api.h"
#include "ops/autocast.h"
#include "ops/autocast_apply.h"
#include "ops/graph/capture.h"

namespace pacer::ops {

namespace {

std::atomic<uint64_t> g_launches{0};

// The backward node of one op call: saved tensors, input metadata, and the OpDef whose
// backward turns output gradients into input gradients.
class OpNode final : public autograd::Node {
 public:
  OpNode(const OpDef& op, Attrs attrs) : op_(op), attrs_(std::move(attrs)) {}

  std::string name() const override { return op_.name + "Backward"; }

  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    bool any = false;
    for (const Tensor& g : grads) any = any || g.defined();
    if (!any) return std::vector<Tensor>(inputs_meta_.size());

    // Backward runs the ops of the gradient formulas as written, whatever autocast says.
    AutocastSuspend no_autocast;
    GradCall gc{attrs_, {}, {}, inputs_meta_, std::move(grads), needs_};
    const std::string node = name();
    gc.inputs.reserve(saved_inputs_.size());
    for (const auto& s : saved_inputs_) gc.inputs.push_back(s.unpack(node));
    for (const auto& s : saved_outputs_) gc.outputs.push_back(s.unpack(node));
    for (size_t i = 0; i < gc.grads.size(); ++i) {
      if (!gc.grads[i].defined() && is_floating(output_meta_[i].dtype))
        gc.grads[i] = zeros(output_meta_[i].sizes, {.dtype = output_meta_[i].dtype, .device = output_meta_[i].device});
    }
    std::vector<Tensor> out = op_.backward(gc);
    PACER_CHECK(out.size() == inputs_meta_.size(), "{}: backward returned {} gradients for {} inputs", node,
                out.size(), inputs_meta_.size());
    for (size_t i = 0; i < out.size(); ++i) {
      if (!out[i].defined() || !needs_[i]) {
        out[i] = Tensor();
        continue;
      }
      const TensorMeta& m = inputs_meta_[i];
      PACER_CHECK(out[i].sizes() == m.sizes, "{}: gradient for input {} has shape {}, expected {}", node, i,
                  out[i].sizes(), m.sizes);
      if (out[i].dtype() != m.dtype) out[i] = out[i].to(m.dtype);
    }
    return out;
  }

  void release_saved() override {
    for (auto& s : saved_inputs_) s.reset();
    for (auto& s : saved_outputs_) s.reset();
  }

  const OpDef& op_;
  Attrs attrs_;
  std::vector<TensorMeta> inputs_meta_;
  std::vector<TensorMeta> output_meta_;
  std::vector<bool> needs_;
  std::vector<autograd::SavedTensor> saved_inputs_, saved_outputs_;
};

// Refuses, before anything is written, in-place updates that autograd could not follow.
void check_inplace(const OpCall& c) {
  bool any = false;
  for (const Tensor& t : c.inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return;
  const Tensor& self = c.inputs[0];
  PACER_CHECK(!(self.is_leaf() && self.requires_grad()),
              "a leaf tensor that requires grad is being used in an in-place operation; use the "
              "out-of-place form, or run it under NoGradGuard");
  PACER_CHECK(!self.impl()->view_base,
              "in-place update of a view while gradients are recorded is not supported (the viewed "
              "tensor's history would miss it); build the result out of place (cat, pad, where) or update "
              "a clone()");
}

[[noreturn]] void rethrow_named(const OpDef& op, const Error& e) {
  throw Error(fmt::format("{}: {}", op.name, e.what()));
}

void record(const OpDef& op, OpCall& c) {
  if (op.not_differentiable) return;  // like comparisons in PyTorch: outputs need no grad
  bool any = false;
  for (const Tensor& t : c.inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return;
  auto node = autograd::make_node<OpNode>(op, std::move(c.attrs));
  const size_t n = c.inputs.size();
  node->inputs_meta_.resize(n);
  node->needs_.resize(n);
  auto& edges = node->next_edges();
  edges.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const Tensor& t = c.inputs[i];
    if (!t.defined()) continue;
    node->inputs_meta_[i] = {t.sizes(), t.dtype(), t.device()};
    edges[i] = autograd::gradient_edge(t);
    node->needs_[i] = edges[i].valid();
    if (op.save_inputs & (1u << i)) node->saved_inputs_.emplace_back(t, false);
    else if (op.save_inputs) node->saved_inputs_.emplace_back();
  }
  node->set_num_outputs(uint32_t(c.outputs.size()));
  node->output_meta_.reserve(c.outputs.size());
  for (size_t i = 0; i < c.outputs.size(); ++i) {
    const Tensor& t = c.outputs[i];
    node->output_meta_.push_back({t.sizes(), t.dtype(), t.device()});
    if (op.save_outputs & (1u << i)) node->saved_outputs_.emplace_back(t, true);
    else if (op.save_outputs) node->saved_outputs_.emplace_back();
  }
  for (size_t i = 0; i < c.outputs.size(); ++i)
    if (is_floating(c.outputs[i].dtype())) autograd::set_history(c.outputs[i], node, uint32_t(i));
}

}  // namespace

uint64_t kernel_launch_count() { return g_launches.load(std::memory_order_relaxed); }

void note_kernel_launches(uint64_t n) { g_launches.fetch_add(n, std::memory_order_relaxed); }

std::vector<Tensor> call(const OpDef& op, std::vector<Tensor> inputs, Attrs attrs) {
  if (autocast_active()) apply_autocast(op, inputs, attrs);
  if (op.decompose) return op.decompose(inputs, attrs);

  OpCall c{op, std::move(inputs), std::move(attrs), {}, {}, kCPU};
  const bool recording = graph::detail::recording();
  try {
    if (recording) graph::detail::check_capturable(op);
    // An op's own checks and kernel may read values on the host; a captured step may not.
    AllowHostReads host_reads;
    // One device per call; a 0-dim CPU tensor may join any device (as a scalar).
    bool have = false;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      const Tensor& t = c.inputs[i];
      PACER_CHECK(t.defined() || !(i == 0), "input {} is undefined", i);
      if (!t.defined() || (t.dim() == 0 && t.is_cpu())) continue;
      if (!have) {
        c.device = t.device();
        have = true;
      } else if (!op.has(kCrossDevice)) {
        PACER_CHECK(t.device() == c.device, "expected all tensors on one device, got {} (input 0) and {} (input {})",
                    c.device, t.device(), i);
      }
    }
    if (!have && !c.inputs.empty() && c.inputs[0].defined()) c.device = c.inputs[0].device();
    op.infer(c);
    if (op.has(kFactory)) c.device = c.output_meta.empty() ? kCPU : c.output_meta[0].device;

    if (op.has(kInplace) && autograd::grad_enabled() && !op.not_differentiable) check_inplace(c);
    // CUDA kernels run with their device current (allocations and launches go there); the
    // guard also refuses a device this build or machine lacks, with the reason.
    std::optional<cuda::DeviceGuard> device_guard;
    if (c.device.is_cuda()) device_guard.emplace(c.device.index);
    KernelFn kernel = op.kernels[int(c.device.type)];
    PACER_CHECK(kernel != nullptr, "no kernel for device {} (this op runs on: {}{})", c.device,
                op.kernels[0] ? "cpu " : "", op.kernels[1] ? "cuda" : "");
    if (op.has(kInplace)) {
      c.outputs.push_back(c.inputs[0]);
    } else if (!op.has(kView) && !op.has(kDynamicShape)) {  // those kernels set c.outputs
      c.outputs.reserve(c.output_meta.size());
      for (const TensorMeta& m : c.output_meta) {
        const Options o{.dtype = m.dtype, .device = m.device};
        c.outputs.push_back(m.strides.empty() ? empty(m.sizes, o) : empty_strided(m.sizes, m.strides, o));
      }
    }
    {
      // Ops a kernel calls internally (contiguous copies, temporaries) are not part of the
      // differentiated program: the op's own backward covers them.
      NoGradGuard no_grad;
      AutocastSuspend no_autocast;
      graph::detail::KernelScope in_kernel;
      kernel(c);
    }
    g_launches.fetch_add(1, std::memory_order_relaxed);
  } catch (const Error& e) {
    rethrow_named(op, e);
  }
  for (int i : op.written_inputs(c.inputs.size()))
    if (c.inputs[size_t(i)].defined()) c.inputs[size_t(i)].bump_version();
  if (recording) graph::detail::record_call(c);
  if (autograd::grad_enabled() && !op.has(kFactory)) record(op, c);
  return std::move(c.outputs);
}

Tensor call1(const OpDef& op, std::vector<Tensor> inputs, Attrs attrs) {
  return std::move(call(op, std::move(inputs), std::move(attrs))[0]);
}

}  // namespace pacer::ops
