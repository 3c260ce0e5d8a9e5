// Multi-tensor fusion (horizontal): fused pointwise nodes that run the same program over
// different tensors (the optimizer's update of each parameter, each parameter's squared
// norm, each trust ratio, each batch norm's running statistics) become one node that runs
// them all in one parallel loop, the way multi-tensor-apply kernels batch an optimizer step.
// A batch sits where its first member was; a member joins only if moving it there changes
// nothing any node reads (MemoryOrderCheck). Else the batch may sink to the new member's
// place instead (members whose inputs come later, as the running statistics of each batch
// norm in turn, which nothing reads before the step ends), if that changes nothing either;
// else a new batch starts.
#include <fmt/format.h>

#include <map>
#include <set>

#include "ops/graph/alias.h"
#include "ops/graph/fused_pointwise.h"
#include "ops/graph/pass.h"

namespace pacer::graph {

namespace {

// Nodes with the same key run the same program on tensors of the same kinds.
std::string batch_key(const Graph& g, const Node& n, const FusedPointwiseKernel& k) {
  std::string s = fmt::format("{}|{}|", n.device, k.program().text());
  for (int in : n.inputs) {
    const ops::TensorMeta& m = g.values[size_t(in)].meta;
    // A 0-d input's device too: a host scalar is a launch argument, a device one a pointer.
    s += m.sizes.empty() ? fmt::format("{}s@{},", m.dtype, m.device) : fmt::format("{}t,", m.dtype);
  }
  s += "|";
  for (size_t o = 0; o < n.outputs.size(); ++o)
    s += fmt::format("{}@{},", g.values[size_t(n.outputs[o])].meta.dtype, n.aliased_input(o));
  return s;
}

// A batch runs where its first member ran, so later members' fresh results appear early:
// only small ones (the norms, trust ratios) may; updates in place (the optimizer's) are free.
bool small_fresh_outputs(const Graph& g, const Node& n) {
  constexpr int64_t kSmall = 4096;  // elements
  for (size_t o = 0; o < n.outputs.size(); ++o) {
    if (n.aliased_input(o) >= 0) continue;
    if (shape_numel(g.values[size_t(n.outputs[o])].meta.sizes) > kSmall) return false;
  }
  return true;
}

class MultiTensorFusion final : public Pass {
 public:
  std::string name() const override { return "multi_tensor"; }
  std::string summary() const override {
    return "batches fused pointwise nodes that run one program over different tensors into one loop";
  }

  void run(Graph& g, PassContext& ctx) override {
    const Graph before = g;
    const MemoryOrderCheck check(before);
    std::vector<std::vector<size_t>> batches;  // positions of members, in order
    std::vector<bool> at_last;                 // a batch placed at its last member, not its first
    std::map<std::string, size_t> open;        // key -> its open batch
    int next_id = before.next_node_id();
    std::vector<int> batch_id;
    // Per batch, the memory its members read and write (by root): a batch's members run at
    // once (CUDA blocks, CPU threads), so no member may touch memory another one writes.
    const std::vector<int> root = memory_roots(before);
    std::vector<std::set<int>> reads, writes;
    auto independent = [&](size_t b, const Node& n) {
      for (int in : n.inputs)
        if (in >= 0 && writes[b].count(root[size_t(in)])) return false;
      for (int out : n.outputs)
        if (writes[b].count(root[size_t(out)]) || reads[b].count(root[size_t(out)])) return false;
      return true;
    };
    auto add_member = [&](size_t b, const Node& n) {
      for (int in : n.inputs)
        if (in >= 0) reads[b].insert(root[size_t(in)]);
      for (int out : n.outputs) writes[b].insert(root[size_t(out)]);
    };
    Graph after = before;
    for (size_t p = 0; p < before.nodes.size(); ++p) {
      const Node& n = before.nodes[p];
      const FusedPointwiseKernel* k = pointwise_kernel_of(n);
      if (!k || k->members() != 1 || !small_fresh_outputs(before, n)) continue;
      const std::string key = batch_key(before, n, *k);
      auto it = open.find(key);
      if (it != open.end() && independent(it->second, n)) {
        const size_t b = it->second;
        batches[b].push_back(p);
        after.nodes = assemble(before, batches, batch_id, at_last);
        if (!check.hazard(after)) {
          add_member(b, n);
          continue;
        }
        if (!at_last[b]) {  // the whole batch at this member's place instead
          at_last[b] = true;
          after.nodes = assemble(before, batches, batch_id, at_last);
          if (!check.hazard(after)) {
            add_member(b, n);
            continue;
          }
          at_last[b] = false;
        }
        batches[b].pop_back();
      }
      open[key] = batches.size();
      batches.push_back({p});
      at_last.push_back(false);
      batch_id.push_back(next_id++);
      reads.emplace_back();
      writes.emplace_back();
      add_member(batches.size() - 1, n);
    }
    after.nodes = assemble(before, batches, batch_id, at_last);
    const Hazard hazard = check.hazard(after);
    PACER_CHECK(!hazard, "multi_tensor: the batched graph is inconsistent: {}", hazard.what);
    for (const std::vector<size_t>& b : batches)
      if (b.size() > 1)
        ctx.fused(fmt::format("{} x {}", b.size(), pointwise_kernel_of(before.nodes[b[0]])->program().text()));
    after.rebuild_uses();
    g = std::move(after);
  }

 private:
  // The node list with each batch of two or more in one node at its first member's place
  // (its last member's, when at_last).
  static std::vector<Node> assemble(const Graph& before, const std::vector<std::vector<size_t>>& batches,
                                    const std::vector<int>& ids, const std::vector<bool>& at_last) {
    std::vector<int> batch_at(before.nodes.size(), -1);  // -2: a member placed elsewhere
    for (size_t b = 0; b < batches.size(); ++b) {
      if (batches[b].size() < 2) continue;
      for (size_t m : batches[b]) batch_at[m] = -2;
      batch_at[at_last[b] ? batches[b].back() : batches[b][0]] = int(b);
    }
    std::vector<Node> nodes;
    nodes.reserve(before.nodes.size());
    for (size_t p = 0; p < before.nodes.size(); ++p) {
      if (batch_at[p] == -1) nodes.push_back(before.nodes[p]);
      else if (batch_at[p] >= 0) nodes.push_back(merge(before, batches[size_t(batch_at[p])], ids[size_t(batch_at[p])]));
    }
    return nodes;
  }

  static Node merge(const Graph& before, const std::vector<size_t>& members, int id) {
    const Node& first = before.nodes[members[0]];
    Node f;
    f.id = id;
    f.device = first.device;
    for (size_t m : members) {
      const Node& n = before.nodes[m];
      const int offset = int(f.inputs.size());
      f.inputs.insert(f.inputs.end(), n.inputs.begin(), n.inputs.end());
      f.outputs.insert(f.outputs.end(), n.outputs.begin(), n.outputs.end());
      for (size_t o = 0; o < n.outputs.size(); ++o)
        f.output_alias.push_back(n.aliased_input(o) < 0 ? -1 : n.aliased_input(o) + offset);
      f.reference.push_back(n);
    }
    f.fused = std::make_shared<FusedPointwiseKernel>(pointwise_kernel_of(first)->program(), int(members.size()));
    return f;
  }
};

PACER_REGISTER_PASS(MultiTensorFusion);

}  // namespace

}  // namespace pacer::graph
