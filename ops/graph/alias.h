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

/// Checks rewrites that fuse or move nodes against the graph before them. hazard(after)
/// says what breaks (and which node would read which value wrongly), or nothing when `after` still reads every value while its memory
/// holds the version it held in `before`, reads nothing before it is computed, and leaves
/// every input and state tensor at the same final version. A fused node of `after` stands
/// for the nodes of its reference, which keep their ids from `before`. The versions
/// `before` reads are worked out once, so many candidate rewrites can be checked cheaply.
struct Hazard {
  std::string what;  // empty: none
  int node = -1;     // the node (of `before`, or a fused node's reference) that would misread
  int value = -1;    // the value it would misread
  explicit operator bool() const { return !what.empty(); }
};

class MemoryOrderCheck {
 public:
  explicit MemoryOrderCheck(const Graph& before);
  Hazard hazard(const Graph& after) const;

 private:
  const Graph& before_;
  std::map<std::pair<int, int>, int> seen_;  // (node id, value) -> version read in `before`
  std::set<int> before_ids_;
  std::vector<int> final_;                   // per value: the final version of its memory
};

}  // namespace pacer::graph
