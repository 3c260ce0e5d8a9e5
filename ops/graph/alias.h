#pragma once
/// Which values share memory: a view or an in-place version of a tensor shares its root,
/// the value whose producer allocated the memory (or the input / state tensor itself).
/// Passes use it to stay off tensors that are modified in place; the executor to keep a
/// tensor's memory until the last reader of any value sharing it.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "ops/graph/graph.h"

namespace pacer::graph {

/// Per value id: the id of its memory root.
std::vector<int> memory_roots(const Graph& g);

/// Per value id: whether some in-place node modifies its root's memory.
std::vector<bool> mutated_roots(const Graph& g, const std::vector<int>& roots);

}  // namespace pacer::graph

namespace pacer::graph {

/// Whether `after`, a rewrite of `before` that fuses nodes (a fused node stands for the nodes
/// of its reference, which carry their ids from `before`) or moves them, still reads every
/// value when its memory holds the same version as in `before`, and leaves every input and
/// state tensor at the same final version. Returns "" when it does, else what breaks.
/// The versions `before` reads are worked out once, so that many candidate rewrites can
/// be checked against it.
class MemoryOrderCheck {
 public:
  explicit MemoryOrderCheck(const Graph& before);
  std::string hazard(const Graph& after) const;

 private:
  const Graph& before_;
  std::map<std::pair<int, int>, int> seen_;  // (node id, value) -> version read in `before`
  std::set<int> before_ids_;
  std::vector<int> final_;                   // per value: the final version of its memory
};

}  // namespace pacer::graph
