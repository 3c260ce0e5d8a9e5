// Dead-code elimination: drops nodes whose outputs nobody needs. A node is needed when an
// output escapes (step outputs, rebound gradients) or is read by a needed node. An
// in-place node is also needed when what it modifies can be observed: state or an input
// (the update is the point), or memory some other value shares and a later node reads.
#include <set>

#include "ops/graph/alias.h"
#include "ops/graph/pass.h"

namespace pacer::graph {

namespace {

class DeadCodeElimination final : public Pass {
 public:
  std::string name() const override { return "dce"; }
  std::string summary() const override { return "removes nodes whose results are never used"; }

  void run(Graph& g, PassContext&) override {
    const std::vector<int> roots = memory_roots(g);
    // Per root: the last position at which any value sharing it is read.
    std::vector<int> root_last_read(g.values.size(), -1);
    for (size_t p = 0; p < g.nodes.size(); ++p)
      for (int in : g.nodes[p].inputs)
        if (in >= 0) root_last_read[size_t(roots[size_t(in)])] = int(p);
    std::vector<bool> needed(g.values.size(), false);
    for (int v : g.escaping_values()) needed[size_t(v)] = true;
    std::vector<bool> keep(g.nodes.size(), false);
    for (size_t p = g.nodes.size(); p-- > 0;) {
      const Node& n = g.nodes[p];
      bool live = false;
      for (int out : n.outputs) live = live || needed[size_t(out)];
      for (int i : n.written_inputs()) {
        if (live) break;
        const int root = roots[size_t(n.inputs[size_t(i)])];
        live = g.values[size_t(root)].kind != ValueKind::Internal || root_last_read[size_t(root)] > int(p);
      }
      if (!live) continue;
      keep[p] = true;
      for (int in : n.inputs)
        if (in >= 0) needed[size_t(in)] = true;
    }
    std::vector<Node> kept;
    int64_t removed = 0;
    for (size_t p = 0; p < g.nodes.size(); ++p) {
      if (keep[p]) kept.push_back(std::move(g.nodes[p]));
      else ++removed;
    }
    g.nodes = std::move(kept);
  }
};

PACER_REGISTER_PASS(DeadCodeElimination);

}  // namespace

}  // namespace pacer::graph
