// Common-subexpression elimination: a node that repeats an earlier one (same op, attributes,
// inputs, device and output types) is dropped and its readers read the earlier outputs.
// Nodes that touch memory modified in place are left alone: two reads of one value at
// different times may see different data, and two results merged would share updates.
#include <map>

#include "ops/graph/alias.h"
#include "ops/graph/pass.h"

namespace pacer::graph {

namespace {

std::string signature(const Graph& g, const Node& n) {
  std::string s = fmt::format("{}|{}|{}|", n.op->name, n.device, n.attrs.to_string());
  for (int in : n.inputs) s += fmt::format("{},", in);
  s += "|";
  for (int out : n.outputs) {
    const ops::TensorMeta& m = g.values[size_t(out)].meta;
    s += fmt::format("{}{}{};", m.dtype, m.sizes, m.strides);
  }
  return s;
}

class CommonSubexpressionElimination final : public Pass {
 public:
  std::string name() const override { return "cse"; }
  std::string summary() const override { return "merges nodes that compute the same thing twice"; }

  void run(Graph& g, PassContext&) override {
    const std::vector<int> roots = memory_roots(g);
    const std::vector<bool> mutated = mutated_roots(g, roots);
    std::vector<int> replace(g.values.size());
    for (size_t v = 0; v < replace.size(); ++v) replace[v] = int(v);
    std::map<std::string, size_t> seen;  // signature -> position in `kept`
    std::vector<Node> kept;
    int64_t merged = 0;
    for (Node& n : g.nodes) {
      for (int& in : n.inputs)
        if (in >= 0) in = replace[size_t(in)];
      bool eligible = n.op != nullptr && !n.is_inplace() && !n.op->has(ops::kRandom);
      for (int in : n.inputs) eligible = eligible && (in < 0 || !mutated[size_t(in)]);
      for (int out : n.outputs) eligible = eligible && !mutated[size_t(out)];
      if (eligible) {
        const std::string sig = signature(g, n);
        auto [it, fresh] = seen.emplace(sig, kept.size());
        if (!fresh) {
          const Node& first = kept[it->second];
          for (size_t k = 0; k < n.outputs.size(); ++k) replace[size_t(n.outputs[k])] = first.outputs[k];
          ++merged;
          continue;
        }
      }
      kept.push_back(std::move(n));
    }
    g.nodes = std::move(kept);
    for (int& v : g.outputs) v = replace[size_t(v)];
    for (auto& [param, v] : g.grad_outputs) v = replace[size_t(v)];
  }
};

PACER_REGISTER_PASS(CommonSubexpressionElimination);

}  // namespace

}  // namespace pacer::graph
