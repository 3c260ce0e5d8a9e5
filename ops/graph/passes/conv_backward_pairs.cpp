// Puts each convolution's input gradient right before its weight gradient (the two read the
// same dy and nothing of each other), so that the executor runs the pair at once, one on
// each of two threads (ops/graph/executor.h). In a captured step the two are apart: the
// recomputed batch norm + ReLU output (recompute_bn_relu) that the weight gradient reads is
// made between them. The input gradient moves later, past nodes that neither read its output
// nor write what it reads; nothing else moves.
#include "ops/graph/alias.h"
#include "ops/graph/pass.h"

namespace pacer::graph {

namespace {

class ConvBackwardPairs final : public Pass {
 public:
  std::string name() const override { return "conv_backward_pairs"; }
  std::string summary() const override {
    return "schedules each convolution's input gradient next to its weight gradient, for the executor to run the "
           "two at once (CPU)";
  }

  void run(Graph& g, PassContext& ctx) override {
    const std::vector<int> roots = memory_roots(g);
    for (size_t q = 0; q < g.nodes.size(); ++q) {
      if (g.nodes[q].kind() != "conv2d_backward_weight" || !g.nodes[q].device.is_cpu()) continue;
      const int dy = g.nodes[q].inputs[0];
      // The input gradient of the same dy: the nearest before q.
      size_t p = q;
      while (p-- > 0)
        if (g.nodes[p].kind() == "conv2d_backward_input" && g.nodes[p].inputs[0] == dy) break;
      if (p == size_t(-1) || p + 1 == q) continue;
      if (!movable(g, roots, p, q)) {
        ctx.rejected("conv2d_backward_input of %" + std::to_string(dy) + ": a node between it and the weight "
                     "gradient reads its output or writes what it reads");
        continue;
      }
      Node moved = std::move(g.nodes[p]);
      g.nodes.erase(g.nodes.begin() + std::ptrdiff_t(p));
      g.nodes.insert(g.nodes.begin() + std::ptrdiff_t(q - 1), std::move(moved));
      ctx.fused("conv2d_backward_input + conv2d_backward_weight of %" + std::to_string(dy));
    }
  }

 private:
  // Whether node p can run after the nodes in (p, q): none reads p's outputs (or memory they
  // share), and none writes memory p reads.
  static bool movable(const Graph& g, const std::vector<int>& roots, size_t p, size_t q) {
    const Node& n = g.nodes[p];
    for (size_t m = p + 1; m < q; ++m) {
      const Node& other = g.nodes[m];
      for (int in : other.inputs)
        for (int out : n.outputs)
          if (in >= 0 && roots[size_t(in)] == roots[size_t(out)]) return false;
      for (int i : other.written_inputs())
        for (int in : n.inputs)
          if (in >= 0 && roots[size_t(other.inputs[size_t(i)])] == roots[size_t(in)]) return false;
    }
    return true;
  }
};

PACER_REGISTER_PASS(ConvBackwardPairs);

}  // namespace

}  // namespace pacer::graph
