#include "ops/graph/fusion.h"

#include <fmt/format.h>

#include <algorithm>

#include "ops/graph/alias.h"

namespace pacer::graph {

namespace {

Graph assemble(const Graph& before, const std::vector<Fusion>& fusions) {
  Graph after = before;
  std::vector<int> at(before.nodes.size(), -1);  // -2: fused away
  for (size_t k = 0; k < fusions.size(); ++k) {
    const Fusion& f = fusions[k];
    for (size_t m : f.members) at[m] = -2;
    const size_t place = f.at_member < f.members.size() ? f.members[f.at_member]
                         : f.at_first                   ? f.members.front()
                                                        : f.members.back();
    at[place] = int(k);
  }
  after.nodes.clear();
  for (size_t p = 0; p < before.nodes.size(); ++p) {
    if (at[p] == -1) after.nodes.push_back(before.nodes[p]);
    else if (at[p] >= 0) after.nodes.push_back(fusions[size_t(at[p])].node);
  }
  after.rebuild_uses();
  return after;
}

// The fusion a hazard comes from: the one whose node or member would misread, or whose node
// makes the misread value.
size_t culprit(const Graph& before, const std::vector<Fusion>& fusions, const Hazard& h) {
  for (size_t k = 0; k < fusions.size(); ++k) {
    if (fusions[k].node.id == h.node) return k;
    for (size_t m : fusions[k].members)
      if (before.nodes[m].id == h.node) return k;
    const std::vector<int>& outs = fusions[k].node.outputs;
    if (std::find(outs.begin(), outs.end(), h.value) != outs.end()) return k;
  }
  return fusions.size();
}

}  // namespace

void apply_fusions(Graph& g, std::vector<Fusion> fusions, PassContext& ctx) {
  for (Fusion& f : fusions)
    if (f.what.empty()) f.what = fmt::format("{} -> node {}", f.node.kind(), f.node.id);
  const Graph before = g;
  const MemoryOrderCheck check(before);
  while (true) {
    Graph after = assemble(before, fusions);
    const Hazard h = check.hazard(after);
    if (!h) {
      g = std::move(after);
      break;
    }
    const size_t k = culprit(before, fusions, h);
    if (k == fusions.size()) {  // no single fusion to blame: none is made
      for (const Fusion& f : fusions) ctx.rejected(fmt::format("{}: {}", f.what, h.what));
      fusions.clear();
    } else if (fusions[k].at_first || fusions[k].at_member < fusions[k].members.size()) {
      fusions[k].at_first = false;
      fusions[k].at_member = size_t(-1);
    } else {
      ctx.rejected(fmt::format("{}: {}", fusions[k].what, h.what));
      fusions.erase(fusions.begin() + long(k));
    }
  }
  for (const Fusion& f : fusions) ctx.fused(f.what);
}

}  // namespace pacer::graph
