// Pointwise-chain fusion: connected pointwise ops over one shape become one fused loop
// (ops/graph/fused_pointwise.h) that reads each input once and writes only what is needed
// outside: intermediates whose readers are all inside the group stay in registers. A full
// sum of such a chain (the squared norm of LARS) becomes the loop's reduction. In-place
// updates of inputs and state (the optimizer's buffers and parameters) are written in place.
//
// Fused only across an intermediate when every reader of it joins the group; a group that
// would change what some node reads (memory updated in place, MemoryOrderCheck) is left
// alone and reported.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "ops/graph/alias.h"
#include "ops/graph/fused_pointwise.h"
#include "ops/graph/fusion.h"

namespace pacer::graph {

namespace {

Shape strides_of(const ops::TensorMeta& m) { return m.strides.empty() ? contiguous_strides(m.sizes) : m.strides; }

// Whether the elements fill their memory without gaps in some dim order (contiguous, or
// channels-last): a loop over the raw memory then visits each element once.
bool dense(const ops::TensorMeta& m) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of the dims longer than 1
  const Shape st = strides_of(m);
  for (size_t i = 0; i < m.sizes.size(); ++i)
    if (m.sizes[i] != 1) dims.emplace_back(st[i], m.sizes[i]);
  std::sort(dims.begin(), dims.end());
  int64_t expect = 1;
  for (const auto& [stride, size] : dims) {
    if (size == 0) return true;
    if (stride != expect) return false;
    expect *= size;
  }
  return true;
}

// The loop a node can join: its shape and memory layout (fused tensors share both).
using Domain = std::pair<Shape, Shape>;


size_t bytes_of(const ops::TensorMeta& m) { return size_t(shape_numel(m.sizes)) * element_size(m.dtype); }
constexpr size_t kSmallBytes = 64 * 1024;

// Instructions that produce numbers (not truth values): their outputs must be floating.
bool arithmetic(PwOp op) {
  switch (op) {
    case PwOp::Eq: case PwOp::Ne: case PwOp::Lt: case PwOp::Le: case PwOp::Gt: case PwOp::Ge:
    case PwOp::LogicalAnd: case PwOp::LogicalOr: case PwOp::LogicalXor: case PwOp::LogicalNot:
    case PwOp::Where: case PwOp::Round:
      return false;
    default:
      return true;
  }
}

bool is_full_sum(const Graph& g, const Node& n) {
  if (n.op->name != "sum" || n.inputs.size() != 1 || n.inputs[0] < 0) return false;
  const ops::TensorMeta& in = g.values[size_t(n.inputs[0])].meta;
  const ops::TensorMeta& out = g.values[size_t(n.outputs[0])].meta;
  return !in.sizes.empty() && is_contiguous(in) && pointwise_dtype(in.dtype) && in.dtype != DType::Bool &&
         shape_numel(out.sizes) == 1 && pointwise_dtype(out.dtype) && out.dtype != DType::Bool;
}

// The shape and layout a node's loop would run over, when the fused loop can compute it.
std::optional<Domain> loop_domain(const Graph& g, const Node& n, bool& is_sum) {
  is_sum = false;
  if (!n.op || n.outputs.size() != 1) return std::nullopt;
  if (!n.device.is_cpu() && !(n.device.is_cuda() && cuda_pointwise_available())) return std::nullopt;
  if (is_full_sum(g, n)) {
    is_sum = true;
    const ops::TensorMeta& in = g.values[size_t(n.inputs[0])].meta;
    return Domain{in.sizes, strides_of(in)};
  }
  if (!n.op->has(ops::kPointwise)) return std::nullopt;
  const std::optional<PwInstr> instr = pointwise_instr(*n.op, n.attrs);
  const ops::TensorMeta& out = g.values[size_t(n.outputs[0])].meta;
  if (!instr || !pointwise_dtype(out.dtype) || !dense(out)) return std::nullopt;
  if (arithmetic(instr->op) && out.dtype == DType::Bool) return std::nullopt;
  for (int in : n.inputs) {
    if (in < 0) return std::nullopt;
    const ops::TensorMeta& m = g.values[size_t(in)].meta;
    if (m.sizes.empty() && (m.device.is_cpu() || m.device == n.device)) continue;  // a scalar, broadcast
    if (m.sizes != out.sizes || strides_of(m) != strides_of(out) || !pointwise_dtype(m.dtype) || m.device != n.device)
      return std::nullopt;
  }
  return Domain{out.sizes, strides_of(out)};
}

struct UnionFind {
  std::vector<size_t> parent;
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), size_t(0)); }
  size_t find(size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void unite(size_t a, size_t b) { parent[find(a)] = find(b); }
};

struct Group {
  std::vector<size_t> members;  // positions, in order
  Node fused;
  std::string what;             // for the report
};

class PointwiseFusion final : public Pass {
 public:
  std::string name() const override { return "pointwise_fusion"; }
  std::string summary() const override {
    return "fuses chains of pointwise ops (and a full sum ending one) into one loop (CPU)";
  }

  void run(Graph& g, PassContext& ctx) override {
    const size_t n_nodes = g.nodes.size();
    std::vector<std::optional<Domain>> domain(n_nodes);
    std::vector<bool> is_sum(n_nodes, false);
    int on_cuda = 0;
    for (size_t p = 0; p < n_nodes; ++p) {
      bool s = false;
      domain[p] = loop_domain(g, g.nodes[p], s);
      is_sum[p] = s;
      const Node& n = g.nodes[p];
      if (n.op && n.device.is_cuda() && n.op->has(ops::kPointwise) && !cuda_pointwise_available()) ++on_cuda;
    }
    if (on_cuda > 0)
      ctx.rejected(fmt::format("{} CUDA pointwise nodes left unfused: this build has no CUDA backend", on_cuda));
    const std::vector<int> pos = g.positions();
    const std::vector<bool> escaping = g.escaping_mask();

    // Join a node with the producer of an input when every reader of that input can join too.
    UnionFind uf(n_nodes);
    for (size_t q = 0; q < n_nodes; ++q) {
      if (!domain[q] || is_sum[q]) continue;  // a sum joins below, as the end of one group
      for (int v : g.nodes[q].inputs) {
        const Value& val = g.values[size_t(v)];
        if (val.kind != ValueKind::Internal || escaping[size_t(v)]) continue;
        const int p = pos[size_t(val.producer)];
        if (p < 0 || !domain[size_t(p)] || is_sum[size_t(p)] || *domain[size_t(p)] != *domain[q]) continue;
        bool all_join = true;
        for (int u : val.uses) {
          const size_t pu = size_t(pos[size_t(u)]);
          all_join = all_join && domain[pu] && *domain[pu] == *domain[q] && !is_sum[pu] &&
                     g.nodes[pu].device == g.nodes[size_t(p)].device;
        }
        if (all_join) uf.unite(size_t(p), q);
      }
    }
    std::map<size_t, std::vector<size_t>> components;
    for (size_t p = 0; p < n_nodes; ++p)
      if (domain[p] && !is_sum[p]) components[uf.find(p)].push_back(p);
    // A full sum ends the group that computes its input, when that input is all the group
    // gives out (checked by build; the group is tried without the sum otherwise).
    std::map<size_t, size_t> sum_of;  // component -> sum position
    for (size_t q = 0; q < n_nodes; ++q) {
      if (!is_sum[q]) continue;
      const int v = g.nodes[q].inputs[0];
      const Value& val = g.values[size_t(v)];
      if (val.kind != ValueKind::Internal || escaping[size_t(v)] || val.uses.size() != 1) continue;
      const int p = pos[size_t(val.producer)];
      if (p < 0 || !domain[size_t(p)] || is_sum[size_t(p)] || g.nodes[size_t(p)].device != g.nodes[q].device) continue;
      sum_of.emplace(uf.find(size_t(p)), q);
    }

    const std::vector<int> roots = memory_roots(g);
    int next_id = g.next_node_id();
    std::vector<Group> groups;
    for (auto& [root, members] : components) {
      std::vector<std::vector<size_t>> tries;
      if (auto it = sum_of.find(root); it != sum_of.end()) {
        tries.push_back(members);
        tries.back().push_back(it->second);
        std::sort(tries.back().begin(), tries.back().end());
      }
      if (members.size() >= 2) tries.push_back(members);
      std::string why;
      for (const std::vector<size_t>& t : tries) {
        // A group whose result is read before its last op is split there and tried again.
        std::vector<std::vector<size_t>> queue = {t};
        bool made = false;
        while (!queue.empty()) {
          Group grp{queue.back(), {}, {}};
          queue.pop_back();
          if (grp.members.size() < 2) continue;
          std::string reason;
          size_t split_at = 0;
          if (build(g, grp, roots, escaping, pos, next_id, reason, split_at)) {
            ++next_id;
            groups.push_back(std::move(grp));
            made = true;
          } else if (split_at > 0) {
            ctx.rejected(fmt::format("split before node {}: {}", g.nodes[split_at].id, reason));
            std::vector<size_t> head, tail;
            for (size_t m : grp.members) (m < split_at ? head : tail).push_back(m);
            queue.push_back(tail);
            queue.push_back(head);
          } else {
            why += (why.empty() ? "" : "; ") + reason;
          }
        }
        if (made) {
          why.clear();
          break;
        }
      }
      if (!why.empty())
        ctx.rejected(fmt::format("{} pointwise nodes ending at node {}: {}", members.size(), g.nodes[members.back()].id,
                                 why));
    }

    std::vector<Fusion> fusions;
    for (Group& grp : groups) fusions.push_back({grp.members, std::move(grp.fused), grp.what});
    apply_fusions(g, std::move(fusions), ctx);
  }

 private:
  // Makes the fused node of a group, or says why not (with split_at > 0: the position of a
  // node outside the group that reads one of its results before the group's last op).
  static bool build(const Graph& g, Group& grp, const std::vector<int>& roots, const std::vector<bool>& escaping,
                    const std::vector<int>& pos, int id, std::string& why, size_t& split_at) {
    const int last = int(grp.members.back());
    std::set<int> member_ids, internal;
    for (size_t m : grp.members) {
      member_ids.insert(g.nodes[m].id);
      for (int out : g.nodes[m].outputs) internal.insert(out);
    }
    // In-place updates: per memory root, the value the chain starts from and its last version.
    std::map<int, int> chain_start, last_version;
    std::set<int> superseded;
    size_t sums = 0;
    for (size_t m : grp.members) {
      const Node& n = g.nodes[m];
      if (n.op->name == "sum") ++sums;
      if (!n.is_inplace()) continue;
      const int target = n.inputs[0];
      const int root = roots[size_t(target)];
      if (internal.count(target)) {
        if (!last_version.count(root) || last_version[root] != target) {
          why = "updates in place a tensor made inside the group";
          return false;
        }
        superseded.insert(target);
      } else {
        if (chain_start.count(root)) {
          why = fmt::format("updates {} through two different values", value_name(root));
          return false;
        }
        chain_start[root] = target;
      }
      last_version[root] = n.outputs[0];
    }
    if (sums > 1 || (sums == 1 && g.nodes[grp.members.back()].op->name != "sum")) {
      why = "a sum that does not end the group";
      return false;
    }
    Node f;
    f.id = id;
    f.device = g.nodes[grp.members.back()].device;
    std::map<int, int> input_index;
    for (size_t m : grp.members)
      for (int in : g.nodes[m].inputs)
        if (!internal.count(in) && !input_index.count(in)) {
          input_index[in] = int(f.inputs.size());
          f.inputs.push_back(in);
        }
    // The fused loop runs at the last member's place, so its inputs live until then. An input
    // whose readers were all done earlier would be kept alive across the nodes in between;
    // when one of those allocates (an LSTM's gradient sum over time steps, say), the group is
    // split after the input's last reader instead of holding every step's tensor at once.
    for (int in : f.inputs) {
      const Value& v = g.values[size_t(in)];
      // Inputs, state and escaping values live through the run anyway; small ones do not matter.
      if (v.kind != ValueKind::Internal || escaping[size_t(in)] || bytes_of(v.meta) < kSmallBytes) continue;
      int last_read = -1;
      for (int u : v.uses) last_read = std::max(last_read, pos[size_t(u)]);
      if (last_read >= last) continue;
      for (int q = last_read + 1; q < last; ++q) {
        const Node& between = g.nodes[size_t(q)];
        if (member_ids.count(between.id) || !between.allocates()) continue;
        why = fmt::format("{} would stay alive from node {} to node {}", value_name(in), g.nodes[size_t(last_read)].id,
                          g.nodes[size_t(last)].id);
        split_at = size_t(last_read) + 1;
        return false;
      }
    }
    for (int in : f.inputs)
      for (const auto& [root, start] : chain_start)
        if (roots[size_t(in)] == root && in != start) {
          why = fmt::format("reads {}, which shares memory with {} that the group updates", value_name(in),
                            value_name(start));
          return false;
        }
    for (size_t m : grp.members) {
      for (int out : g.nodes[m].outputs) {
        bool read_outside = escaping[size_t(out)];
        for (int u : g.values[size_t(out)].uses) {
          if (member_ids.count(u)) continue;
          read_outside = true;
          if (pos[size_t(u)] < last) {
            why = fmt::format("{} is read by node {} before the group's last op", value_name(out), u);
            split_at = size_t(pos[size_t(u)]);
            return false;
          }
        }
        const int root = roots[size_t(out)];
        const bool updates_outside = chain_start.count(root) && last_version[root] == out;
        if (superseded.count(out)) {
          if (read_outside) {
            why = fmt::format("{}, an intermediate version of an updated tensor, is read outside", value_name(out));
            return false;
          }
          continue;
        }
        if (!updates_outside && !read_outside) continue;
        f.outputs.push_back(out);
        f.output_alias.push_back(updates_outside ? input_index.at(chain_start[root]) : -1);
      }
    }
    if (f.outputs.empty()) {
      why = "nothing it computes is read outside it";
      return false;
    }
    if (sums == 1 && (f.outputs.size() != 1 || !chain_start.empty())) {
      why = "a sum whose group has other results";
      return false;
    }
    // The program: inputs in registers 0..n-1, then one register per instruction.
    PwProgram prog;
    prog.num_inputs = int(f.inputs.size());
    std::map<int, int> reg = input_index;
    std::string ops_text;
    for (size_t m : grp.members) {
      const Node& n = g.nodes[m];
      ops_text += (ops_text.empty() ? "" : "+") + n.op->name;
      if (n.op->name == "sum") {
        prog.reduce_sum = true;
        prog.outputs = {reg.at(n.inputs[0])};
        continue;
      }
      PwInstr in = *pointwise_instr(*n.op, n.attrs);
      int* operand[3] = {&in.a, &in.b, &in.c};
      for (size_t k = 0; k < n.inputs.size() && k < 3; ++k) *operand[k] = reg.at(n.inputs[k]);
      reg[n.outputs[0]] = prog.num_registers();
      prog.code.push_back(in);
      // A half-precision result is rounded as the unfused op stores it: the fused loop then
      // gives the unfused graph's numbers bit for bit.
      const DType t = g.values[size_t(n.outputs[0])].meta.dtype;
      if ((t == DType::F16 || t == DType::BF16) && in.op != PwOp::Round) {
        PwInstr round;
        round.op = PwOp::Round;
        round.dtype = t;
        round.a = reg[n.outputs[0]];
        reg[n.outputs[0]] = prog.num_registers();
        prog.code.push_back(round);
      }
    }
    if (!prog.reduce_sum)
      for (int out : f.outputs) prog.outputs.push_back(reg.at(out));
    f.fused = std::make_shared<FusedPointwiseKernel>(std::move(prog), 1);
    for (size_t m : grp.members) f.reference.push_back(g.nodes[m]);
    grp.what = fmt::format("{} over {} -> node {}", ops_text,
                           g.values[size_t(g.nodes[grp.members.front()].outputs[0])].meta.sizes, id);
    grp.fused = std::move(f);
    return true;
  }
};

PACER_REGISTER_PASS(PointwiseFusion);

}  // namespace

}  // namespace pacer::graph
