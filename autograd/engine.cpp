#include "autograd/engine.h"

#include <queue>
#include <unordered_map>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "core/autograd_meta.h"

namespace pacer::autograd {

namespace {

struct NodeState {
  int dependencies = 0;
  std::vector<Tensor> grads;  // one slot per output of the node
};

struct LaterFirst {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
};

void accumulate(Tensor& slot, Tensor g) {
  if (!g.defined()) return;
  slot = slot.defined() ? grad_functions().add(slot, g) : std::move(g);
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
              bool create_graph) {
  PACER_CHECK(roots.size() == grads.size(), "backward: {} roots but {} gradients", roots.size(), grads.size());
  std::unordered_map<Node*, NodeState> state;
  std::vector<std::pair<Edge, Tensor>> root_edges;

  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    PACER_CHECK(r.defined(), "backward: root {} is undefined", i);
    Edge e = gradient_edge(r);
    PACER_CHECK(e.valid(),
                "backward: element {} of the roots does not require grad and has no grad_fn (did you "
                "forget set_requires_grad, or run under NoGradGuard?)",
                i);
    Tensor g = grads[i];
    if (!g.defined()) {
      PACER_CHECK(r.numel() == 1,
                  "backward: a gradient can be implied only for one-element outputs; got shape {}, pass "
                  "a gradient of that shape",
                  r.sizes());
      g = grad_functions().ones_like(r);
    } else {
      PACER_CHECK(g.sizes() == r.sizes(), "backward: expected a gradient of shape {}, got {}", r.sizes(),
                  g.sizes());
    }
    root_edges.emplace_back(e, g);
  }

  // Count, for every reachable node, how many edges point at it (iterative DFS).
  std::vector<Node*> stack;
  for (auto& [e, g] : root_edges) {
    if (state.emplace(e.fn.get(), NodeState{}).second) stack.push_back(e.fn.get());
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      auto [it, fresh] = state.emplace(e.fn.get(), NodeState{});
      it->second.dependencies++;
      if (fresh) stack.push_back(e.fn.get());
    }
  }

  std::priority_queue<Node*, std::vector<Node*>, LaterFirst> ready;
  for (auto& [e, g] : root_edges) {
    NodeState& s = state[e.fn.get()];
    s.grads.resize(e.fn->num_outputs());
    accumulate(s.grads[e.input_nr], g);
  }
  for (auto& [e, g] : root_edges) {
    NodeState& s = state[e.fn.get()];
    if (s.dependencies == 0) {
      s.dependencies = -1;  // queued
      ready.push(e.fn.get());
    }
  }

  GradModeGuard mode(create_graph);
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    NodeState& s = state[n];
    std::vector<Tensor> in = std::move(s.grads);
    in.resize(n->num_outputs());
    n->run_pre_hooks(in);
    std::vector<Tensor> out = n->apply(std::move(in));
    if (!retain_graph) n->release_saved();
    const auto& edges = n->next_edges();
    PACER_CHECK(out.size() == edges.size() || out.empty(), "backward: {} returned {} gradients for {} inputs",
                n->name(), out.size(), edges.size());
    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.valid()) continue;
      NodeState& t = state[e.fn.get()];
      if (t.grads.size() < e.fn->num_outputs()) t.grads.resize(e.fn->num_outputs());
      if (!out.empty()) accumulate(t.grads[e.input_nr], std::move(out[i]));
      if (--t.dependencies == 0) ready.push(e.fn.get());
    }
  }
}

}  // namespace pacer::autograd
