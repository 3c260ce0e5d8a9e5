#pragma once
/// Node and Edge: the backward graph. A Node turns the gradients of its outputs into the
/// gradients of its inputs; its edges say where those go. The engine knows no concrete
/// op: ops/ subclasses Node, and registers how gradients are summed.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pacer::autograd {

class Node;

struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

using GradHook = std::function<Tensor(const Tensor&)>;

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// Display name, e.g. "AddBackward".
  virtual std::string name() const = 0;
  /// Given one gradient per output (undefined = zero), returns one per next edge.
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grads) = 0;
  /// Frees saved tensors after a backward without retain_graph.
  virtual void release_saved() {}

  std::vector<Edge>& next_edges() { return next_edges_; }
  const std::vector<Edge>& next_edges() const { return next_edges_; }
  /// Number of outputs of the forward op (= gradients this node receives).
  uint32_t num_outputs() const { return num_outputs_; }
  void set_num_outputs(uint32_t n) { num_outputs_ = n; }
  /// Creation order; the engine runs later nodes first.
  uint64_t sequence_nr() const { return sequence_nr_; }

  /// Hook run on the gradient of output `output_nr` before apply().
  void add_pre_hook(uint32_t output_nr, GradHook hook);
  /// Applies the pre-hooks of every output to `grads` in place.
  void run_pre_hooks(std::vector<Tensor>& grads) const;

 private:
  std::vector<Edge> next_edges_;
  uint32_t num_outputs_ = 1;
  uint64_t sequence_nr_;
  std::vector<std::pair<uint32_t, GradHook>> pre_hooks_;
};

/// The sink of a leaf: adds incoming gradients into leaf.grad(), after the leaf's hooks.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(Tensor leaf);
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;

 private:
  Tensor leaf_;
};

/// Deletes a node without recursion: a node freed while another is being deleted on this
/// thread is queued and deleted by the outermost call, so tearing down a graph of 10^5
/// chained nodes cannot overflow the stack.
void delete_node(Node* node);

/// Creates a node owned through delete_node (every Node must be made this way).
template <class T, class... Args>
std::shared_ptr<T> make_node(Args&&... args) {
  return std::shared_ptr<T>(new T(std::forward<Args>(args)...), [](T* n) { delete_node(n); });
}

/// Where gradient flows for `t`: its grad_fn, its leaf accumulator, or nowhere.
Edge gradient_edge(const Tensor& t);
/// The leaf's accumulator (created on first use and shared afterwards).
std::shared_ptr<Node> grad_accumulator(const Tensor& leaf);
/// Makes `t` output `output_nr` of `fn` (t becomes a non-leaf that requires grad).
void set_history(const Tensor& t, const std::shared_ptr<Node>& fn, uint32_t output_nr);

/// Functions the ops layer provides, so that this layer stays op-free.
struct GradFunctions {
  Tensor (*add)(const Tensor&, const Tensor&) = nullptr;   // out-of-place sum
  Tensor (*clone)(const Tensor&) = nullptr;                // fresh contiguous copy
  Tensor (*ones_like)(const Tensor&) = nullptr;            // seed of a scalar backward
};
void register_grad_functions(const GradFunctions& fns);
const GradFunctions& grad_functions();

}  // namespace pacer::autograd
