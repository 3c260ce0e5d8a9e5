#include "ops/graph/alias.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

namespace pacer::graph {

std::vector<int> memory_roots(const Graph& g) {
  std::vector<int> root(g.values.size());
  std::iota(root.begin(), root.end(), 0);
  for (const Node& n : g.nodes) {
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      const int a = n.aliased_input(k);
      if (a < 0 || n.inputs[size_t(a)] < 0) continue;
      root[size_t(n.outputs[k])] = root[size_t(n.inputs[size_t(a)])];
    }
  }
  return root;
}

std::vector<bool> mutated_roots(const Graph& g, const std::vector<int>& roots) {
  std::vector<bool> root_mutated(g.values.size(), false);
  for (const Node& n : g.nodes)
    for (int i : n.written_inputs()) root_mutated[size_t(roots[size_t(n.inputs[size_t(i)])])] = true;
  std::vector<bool> out(g.values.size());
  for (size_t v = 0; v < out.size(); ++v) out[v] = root_mutated[size_t(roots[v])];
  return out;
}

namespace {

// Replays the memory effects of a node list: per root, the value that is its current
// version (the last one written to it). Reads are reported with the version they see.
class MemoryVersions {
 public:
  explicit MemoryVersions(const Graph& g) : root_(memory_roots(g)), current_(g.values.size()) {
    for (size_t v = 0; v < current_.size(); ++v) current_[v] = int(v);
  }
  int version_of(int value) const { return current_[size_t(root_[size_t(value)])]; }
  void apply_writes(const Node& n) {
    const std::vector<int> written = n.written_inputs();
    std::vector<bool> through_output(n.inputs.size(), false);
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      const int out = n.outputs[k];
      const int a = n.aliased_input(k);
      const bool writes = a < 0 || std::find(written.begin(), written.end(), a) != written.end();
      if (writes) current_[size_t(root_[size_t(out)])] = out;
      if (writes && a >= 0) through_output[size_t(a)] = true;
    }
    // An input written with no output for it (amp_unscale_'s gradients): a version named by
    // the node and the input, the same in the graph before and after a pass.
    for (int i : written)
      if (!through_output[size_t(i)]) current_[size_t(root_[size_t(n.inputs[size_t(i)])])] = -2 - (n.id * 1024 + i);
  }
 private:
  std::vector<int> root_;
  std::vector<int> current_;
};

}  // namespace

MemoryOrderCheck::MemoryOrderCheck(const Graph& before) : before_(before) {
  MemoryVersions b(before);
  for (const Node& n : before.nodes) {
    before_ids_.insert(n.id);
    for (int in : n.inputs)
      if (in >= 0) seen_[{n.id, in}] = b.version_of(in);
    b.apply_writes(n);
  }
  final_.resize(before.values.size());
  for (size_t v = 0; v < final_.size(); ++v) final_[v] = b.version_of(int(v));
}

Hazard MemoryOrderCheck::hazard(const Graph& after) const {
  MemoryVersions a(after);
  std::vector<const Node*> readers;
  std::set<int> inside;
  std::vector<bool> defined(after.values.size(), false);
  for (const Value& v : after.values) defined[size_t(v.id)] = v.kind != ValueKind::Internal;
  for (const Node& n : after.nodes) {
    for (int in : n.inputs)
      if (in >= 0 && !defined[size_t(in)])
        return {fmt::format("node {} ({}) would read {} before it is computed", n.id, n.kind(), value_name(in)), n.id,
                in};
    // A fused node reads, at its own place, what the nodes it replaces read from outside it.
    readers.clear();
    inside.clear();
    if (n.reference.empty() || before_ids_.count(n.id)) readers.push_back(&n);
    else
      for (const Node& r : n.reference) readers.push_back(&r);
    for (const Node* r : readers) {
      for (int in : r->inputs) {
        if (in < 0 || inside.count(in)) continue;
        auto it = seen_.find({r->id, in});
        if (it == seen_.end()) continue;  // a node `before` does not have: nothing to compare
        const int now = a.version_of(in);
        if (now != it->second)
          return {fmt::format("node {} ({}) would read {} when its memory holds {} instead of {}", r->id, r->kind(),
                              value_name(in), value_name(now), value_name(it->second)),
                  r->id, in};
      }
      for (int out : r->outputs) inside.insert(out);
    }
    a.apply_writes(n);
    for (int out : n.outputs) defined[size_t(out)] = true;
  }
  for (const Value& v : before_.values) {
    if (v.kind == ValueKind::Internal) continue;
    if (final_[size_t(v.id)] != a.version_of(v.id))
      return {fmt::format("{} {} would end at version {} instead of {}", v.kind == ValueKind::State ? "state" : "input",
                          value_name(v.id), value_name(a.version_of(v.id)), value_name(final_[size_t(v.id)])),
              -1, a.version_of(v.id)};
  }
  return {};
}

}  // namespace pacer::graph
