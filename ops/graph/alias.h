#pragma once
/// Which values share memory: a view or an in-place version of a tensor shares its root,
/// the value whose producer allocated the memory (or the input / state tensor itself).
/// Passes use it to stay off tensors that are modified in place; the executor to keep a
/// tensor's memory until the last reader of any value sharing it.

#include <vector>

#include "ops/graph/graph.h"

namespace pacer::graph {

/// Per value id: the id of its memory root.
std::vector<int> memory_roots(const Graph& g);

/// Per value id: whether some in-place node modifies its root's memory.
std::vector<bool> mutated_roots(const Graph& g, const std::vector<int>& roots);

}  // namespace pacer::graph
