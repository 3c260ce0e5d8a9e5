#pragma once
/// The autograd slot of a tensor. Core only stores it; the autograd layer gives it meaning.

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace pacer::autograd {
class Node;
}

namespace pacer {

struct AutogradMeta {
  bool requires_grad = false;
  bool retains_grad = false;
  Tensor grad;
  /// The node that produced this tensor (null for leaves).
  std::shared_ptr<autograd::Node> grad_fn;
  /// Which output of grad_fn this tensor is.
  uint32_t output_nr = 0;
  /// A leaf's gradient accumulator, shared by every graph that uses the leaf.
  std::weak_ptr<autograd::Node> grad_accumulator;
  /// Where a non-leaf keeps its gradient after retain_grad() (shared with the hook that fills it).
  std::shared_ptr<Tensor> retained_grad;
  /// Hooks on a leaf's gradient (non-leaf hooks live on grad_fn).
  std::vector<std::function<Tensor(const Tensor&)>> hooks;
};

}  // namespace pacer
