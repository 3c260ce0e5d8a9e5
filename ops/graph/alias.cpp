#include "ops/graph/alias.h"

#include <numeric>

namespace pacer::graph {

std::vector<int> memory_roots(const Graph& g) {
  std::vector<int> root(g.values.size());
  std::iota(root.begin(), root.end(), 0);
  for (const Node& n : g.nodes) {
    if (n.allocates()) continue;
    const int src = n.inputs[size_t(n.alias_input)];
    if (src < 0) continue;
    for (int out : n.outputs) root[size_t(out)] = root[size_t(src)];
  }
  return root;
}

std::vector<bool> mutated_roots(const Graph& g, const std::vector<int>& roots) {
  std::vector<bool> root_mutated(g.values.size(), false);
  for (const Node& n : g.nodes)
    if (n.is_inplace()) root_mutated[size_t(roots[size_t(n.inputs[0])])] = true;
  std::vector<bool> out(g.values.size());
  for (size_t v = 0; v < out.size(); ++v) out[v] = root_mutated[size_t(roots[v])];
  return out;
}

}  // namespace pacer::graph
