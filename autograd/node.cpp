#include "autograd/node.h"

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "core/autograd_meta.h"

namespace pacer::autograd {

namespace {
std::atomic<uint64_t> g_next_sequence_nr{0};
GradFunctions g_grad_functions;
}  // namespace

void delete_node(Node* node) {
  thread_local bool deleting = false;
  thread_local std::vector<Node*> pending;
  if (deleting) {
    pending.push_back(node);
    return;
  }
  deleting = true;
  delete node;
  while (!pending.empty()) {
    Node* next = pending.back();
    pending.pop_back();
    delete next;
  }
  deleting = false;
}

Node::Node() : sequence_nr_(g_next_sequence_nr.fetch_add(1, std::memory_order_relaxed)) {}

void Node::add_pre_hook(uint32_t output_nr, GradHook hook) { pre_hooks_.emplace_back(output_nr, std::move(hook)); }

void Node::run_pre_hooks(std::vector<Tensor>& grads) const {
  for (const auto& [nr, hook] : pre_hooks_) {
    if (nr >= grads.size() || !grads[nr].defined()) continue;
    Tensor replaced = hook(grads[nr]);
    if (replaced.defined()) grads[nr] = std::move(replaced);
  }
}

void register_grad_functions(const GradFunctions& fns) { g_grad_functions = fns; }

const GradFunctions& grad_functions() {
  PACER_CHECK(g_grad_functions.add != nullptr,
              "autograd: no gradient functions registered (is the pacer_ops library linked?)");
  return g_grad_functions;
}

namespace {

// Whether t's elements fill its memory exactly once in some order of its dims (contiguous,
// channels-last, a transpose of a contiguous tensor, ...).
bool dense_non_overlapping(const Tensor& t) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of the dims of size > 1
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.size(d) != 1) dims.emplace_back(t.stride(d), t.size(d));
  std::sort(dims.begin(), dims.end());
  int64_t expected = 1;
  for (const auto& [stride, size] : dims) {
    if (stride != expected) return false;
    expected *= size;
  }
  return true;
}

}  // namespace

AccumulateGrad::AccumulateGrad(Tensor leaf) : leaf_(std::move(leaf)) {}

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>&& grads) {
  Tensor g = std::move(grads[0]);
  if (!g.defined()) return {};
  AutogradMeta& meta = leaf_.impl()->autograd_mut();
  for (const auto& hook : meta.hooks) {
    Tensor replaced = hook(g);
    if (replaced.defined()) g = std::move(replaced);
  }
  const auto& fns = grad_functions();
  if (!meta.grad.defined()) {
    // Keep the incoming tensor only when nobody else holds it: gradients are often
    // shared (add's backward hands one tensor to both inputs), and a user may edit
    // .grad() in place. It is kept when contiguous, or dense in the leaf's own layout (a
    // channels-last gradient of a channels-last leaf is not transposed into NCHW), as
    // PyTorch keeps a gradient's layout to its parameter's; else it becomes contiguous.
    const bool leaf_layout = g.strides() == leaf_.strides() && dense_non_overlapping(g);
    meta.grad = g.impl()->use_count() == 1 && (g.is_contiguous() || leaf_layout) ? g : fns.clone(g);
  } else {
    meta.grad = fns.add(meta.grad, g);
  }
  return {};
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined()) return {};
  const AutogradMeta* m = t.impl()->autograd();
  if (!m) return {};
  if (m->grad_fn) return {m->grad_fn, m->output_nr};
  if (m->requires_grad) return {grad_accumulator(t), 0};
  return {};
}

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  AutogradMeta& m = leaf.impl()->autograd_mut();
  if (auto existing = m.grad_accumulator.lock()) return existing;
  auto fresh = make_node<AccumulateGrad>(leaf);
  m.grad_accumulator = fresh;
  return fresh;
}

void set_history(const Tensor& t, const std::shared_ptr<Node>& fn, uint32_t output_nr) {
  AutogradMeta& m = t.impl()->autograd_mut();
  m.grad_fn = fn;
  m.output_nr = output_nr;
  m.requires_grad = true;
}

}  // namespace pacer::autograd
