#pragma once
/// The backward engine: an iterative (no recursion) walk of the graph in dependency
/// order, later-created nodes first among the ready ones.

#include <vector>

#include "core/tensor.h"

namespace pacer::autograd {

/// Backpropagates `grads` (one per root; undefined = ones for one-element roots).
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph = false,
              bool create_graph = false);

}  // namespace pacer::autograd
