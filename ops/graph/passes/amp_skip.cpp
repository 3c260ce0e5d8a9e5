// The loss scaler's overflow check fused into the optimizer's update. A captured step with
// dynamic loss scaling cannot read the overflow flag on the host, so the optimizer keeps a
// copy of every tensor the update writes and selects it back where the flag is set
// (Optimizer::step_without_sync): t0' = clone(t0); t1 = update_(t0, ...); copy_(t1,
// where(skip, t0', t1)). This pass moves the select into the update's loop instead: the
// update writes where(skip, t0, new) in place, reading t0 before it stores (elementwise), so
// the copy, the select and the write-back disappear, and multi_tensor then batches the
// guarded updates of all parameters into one loop. Run after pointwise_fusion (the update
// is a fused in-place loop, or a single in-place pointwise op such as add_). A guarded
// update that reads another's result (a parameter's step reading its new momentum buffer)
// is then joined with it in one loop (checked by apply_fusions).
//
// Readers of t1 between the update and the select now see the selected value: equal to the
// updated one whenever the step is not skipped, and when it is, every tensor the step
// updates is put back anyway (the step's outputs, the loss, come before the optimizer).
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "ops/graph/fused_pointwise.h"
#include "ops/graph/fusion.h"
#include "ops/graph/pass.h"
#include "ops/registry.h"

namespace pacer::graph {

namespace {

// p with one more input register (the flag) appended after the existing inputs: the
// instructions' registers shift by one.
PwProgram with_flag_input(const PwProgram& p) {
  PwProgram q = p;
  q.num_inputs = p.num_inputs + 1;
  auto shift = [&](int& r) {
    if (r >= p.num_inputs) ++r;
  };
  for (PwInstr& in : q.code) {
    shift(in.a);
    shift(in.b);
    shift(in.c);
  }
  for (int& r : q.outputs) shift(r);
  return q;
}

class AmpSkipFusion final : public Pass {
 public:
  std::string name() const override { return "amp_skip"; }
  std::string summary() const override {
    return "fuses the loss scaler's skip of an overflowed step into the optimizer's update loops (no copies)";
  }

  void run(Graph& g, PassContext& ctx) override {
    const GraphIndex ix(g);
    const std::vector<int>& pos = ix.pos;
    auto producer = [&](int v) { return ix.producer_node(v); };
    // Whether v is read by that node alone.
    auto only_use = [&](int v, int node_id) { return ix.only_reader(v) == pos[size_t(node_id)]; };
    int next_id = g.next_node_id();
    std::map<int, int> flag_scalar;      // flag value -> its 0-d view
    std::map<int, std::vector<Node>> flag_views;  // flag producer's node id (-1: an input) -> views after it
    std::map<int, Node> rewritten;       // update node id -> its guarded replacement
    std::map<int, int> renamed;          // write-back output -> the update's output
    std::vector<bool> removed(size_t(next_id) + 1, false);
    std::set<int> guarded_ids;
    for (const Node& x : g.nodes) {
      if (!x.op || x.kind() != "copy_") continue;
      if (!x.device.is_cpu() && !(x.device.is_cuda() && cuda_pointwise_available())) continue;
      const int t1 = x.inputs[0];
      const Node* w = producer(x.inputs[1]);
      if (!w || !w->op || w->kind() != "where" || w->inputs[2] != t1 || !only_use(w->outputs[0], x.id)) continue;
      const Node* c = producer(w->inputs[1]);
      if (!c || !c->op || c->kind() != "clone" || !only_use(c->outputs[0], w->id)) continue;
      const int t0 = c->inputs[0], flag = w->inputs[0];
      const ops::TensorMeta& fm = g.values[size_t(flag)].meta;
      if (fm.dtype != DType::Bool || shape_numel(fm.sizes) != 1) continue;
      const Node* u = producer(t1);
      if (!u || rewritten.count(u->id) || u->device != x.device) continue;
      // t1 is u's in-place update of t0.
      int out_index = -1;
      for (size_t k = 0; k < u->outputs.size(); ++k)
        if (u->outputs[k] == t1) out_index = int(k);
      if (out_index < 0 || u->aliased_input(size_t(out_index)) < 0 ||
          u->inputs[size_t(u->aliased_input(size_t(out_index)))] != t0)
        continue;
      const int in_index = u->aliased_input(size_t(out_index));
      const Node* f = producer(flag);
      if (f && pos[size_t(f->id)] > pos[size_t(u->id)]) continue;  // the flag must exist before the update
      // The update as a program.
      PwProgram prog;
      std::vector<Node> ref;
      std::vector<int> alias;
      if (const FusedPointwiseKernel* k = pointwise_kernel_of(*u); k && k->members() == 1 && !k->program().reduce_sum) {
        prog = with_flag_input(k->program());
        ref = u->reference;
        alias = u->output_alias;
      } else if (u->op && u->is_inplace() && u->outputs.size() == 1) {
        const std::optional<PwInstr> instr = pointwise_instr(*u->op, u->attrs);
        if (!instr || u->inputs.size() > 3) continue;
        bool fits = true;  // inputs of the domain's shape or 0-d, loadable dtypes
        for (int v : u->inputs) {
          const ops::TensorMeta& m = g.values[size_t(v)].meta;
          fits = fits && v >= 0 && pointwise_dtype(m.dtype) && is_contiguous(m) &&
                 (m.sizes.empty() || m.sizes == g.values[size_t(t1)].meta.sizes);
        }
        if (!fits) continue;
        prog.num_inputs = int(u->inputs.size()) + 1;
        PwInstr in = *instr;
        int* operand[3] = {&in.a, &in.b, &in.c};
        for (size_t j = 0; j < u->inputs.size(); ++j) *operand[j] = int(j);
        prog.code.push_back(in);
        // A half result rounded as the op stores it (as pointwise_fusion does).
        const DType t = g.values[size_t(t1)].meta.dtype;
        if ((t == DType::F16 || t == DType::BF16) && in.op != PwOp::Round) {
          PwInstr round;
          round.op = PwOp::Round;
          round.dtype = t;
          round.a = prog.num_registers() - 1;
          prog.code.push_back(round);
        }
        prog.outputs = {prog.num_registers() - 1};
        ref = {*u};
        alias = {0};
      } else {
        continue;
      }
      if (!pointwise_dtype(g.values[size_t(t1)].meta.dtype)) continue;
      // out = where(flag, t0 as loaded, out): the flag register is the last input.
      PwInstr sel;
      sel.op = PwOp::Where;
      sel.a = prog.num_inputs - 1;
      sel.b = in_index;
      sel.c = prog.outputs[size_t(out_index)];
      prog.code.push_back(sel);
      prog.outputs[size_t(out_index)] = prog.num_registers() - 1;
      // The flag as a 0-d tensor (the loop broadcasts 0-d inputs): a view made once per flag.
      if (!flag_scalar.count(flag)) {
        Node view;
        view.id = next_id++;
        view.op = &ops::find_op("view");
        view.attrs.set("size", Shape{});
        view.inputs = {flag};
        view.device = x.device;
        view.alias_input = 0;
        view.outputs = {g.add_value(ValueKind::Internal, {Shape{}, DType::Bool, x.device})};
        flag_scalar[flag] = view.outputs[0];
        flag_views[f ? f->id : -1].push_back(view);
      }
      Node guarded;
      guarded.id = next_id++;
      guarded.device = u->device;
      guarded.inputs = u->inputs;
      guarded.inputs.push_back(flag_scalar[flag]);
      guarded.outputs = u->outputs;
      guarded.output_alias = alias;
      guarded.fused = std::make_shared<FusedPointwiseKernel>(std::move(prog), 1);
      // The reference: the update into a value of its own, then the copy, select and
      // write-back it replaces, defining the update's output.
      const int t1_ref = g.add_value(ValueKind::Internal, g.values[size_t(t1)].meta);
      for (Node& r : ref) {
        for (int& o : r.outputs) o = o == t1 ? t1_ref : o;
        for (int& i : r.inputs) i = i == t1 ? t1_ref : i;
      }
      Node rc = *c, rw = *w, rx = x;
      rw.inputs[0] = flag_scalar[flag];  // the reference reads only the fused node's inputs
      rw.inputs[2] = t1_ref;
      rx.inputs[0] = t1_ref;
      rx.outputs = {t1};
      guarded.reference = {rc};
      for (Node& r : ref) guarded.reference.push_back(std::move(r));
      guarded.reference.push_back(rw);
      guarded.reference.push_back(rx);
      guarded_ids.insert(guarded.id);
      rewritten[u->id] = std::move(guarded);
      renamed[x.outputs[0]] = t1;
      for (int id : {c->id, w->id, x.id}) removed[size_t(id)] = true;
      ctx.fused(fmt::format("skip of {} in node {} ({}) -> node {}", value_name(t1), u->id, u->kind(),
                            rewritten[u->id].id));
    }
    if (rewritten.empty()) return;
    std::vector<Node> nodes;
    for (Node& n : g.nodes) {
      if (size_t(n.id) < removed.size() && removed[size_t(n.id)]) continue;
      Node keep = rewritten.count(n.id) ? std::move(rewritten[n.id]) : std::move(n);
      for (int& i : keep.inputs)
        if (renamed.count(i)) i = renamed[i];
      nodes.push_back(std::move(keep));
      auto v = flag_views.find(nodes.back().id);
      if (v != flag_views.end()) nodes.insert(nodes.end(), v->second.begin(), v->second.end());
    }
    if (flag_views.count(-1))  // flags that are graph inputs
      nodes.insert(nodes.begin(), flag_views[-1].begin(), flag_views[-1].end());
    for (int& o : g.outputs)
      if (renamed.count(o)) o = renamed[o];
    for (auto& [t, v] : g.grad_outputs)
      if (renamed.count(v)) v = renamed[v];
    g.nodes = std::move(nodes);
    g.rebuild_uses();
    merge_chained(g, ctx, guarded_ids);
  }

 private:
  // A guarded update whose input is another guarded update's result (a parameter's step
  // reading its new momentum buffer) joins it in one loop, as pointwise_fusion joins the two
  // unguarded: one pass over the parameter, its buffer and its gradient instead of two.
  static void merge_chained(Graph& g, PassContext& ctx, const std::set<int>& guarded) {
    const GraphIndex ix(g);
    const std::vector<int>& pos = ix.pos;
    int next_id = g.next_node_id();
    std::set<int> used;
    std::vector<Fusion> fusions;
    for (const Node& b : g.nodes) {
      if (!guarded.count(b.id) || used.count(b.id)) continue;
      const Node* a = nullptr;
      for (int v : b.inputs) {
        const Node* p = ix.producer_node(v);
        if (p && guarded.count(p->id) && !used.count(p->id) && p->id != b.id) a = p;
      }
      if (!a) continue;
      Node merged;
      if (!merge_programs(*a, b, merged)) continue;
      used.insert(a->id);
      used.insert(b.id);
      Fusion f;
      f.members = {size_t(pos[size_t(a->id)]), size_t(pos[size_t(b.id)])};
      std::sort(f.members.begin(), f.members.end());
      merged.id = next_id++;
      merged.device = b.device;
      merged.reference = {*a, b};
      f.node = std::move(merged);
      f.at_first = true;
      f.what = fmt::format("guarded updates {} + {} -> node {}", a->id, b.id, f.node.id);
      fusions.push_back(std::move(f));
    }
    apply_fusions(g, std::move(fusions), ctx);
  }

  // a's and b's programs as one (a's code first; b reads a's results from registers): its
  // inputs, outputs and in-place aliases in `out`. False when b updates one of a's results.
  static bool merge_programs(const Node& a, const Node& b, Node& out) {
    const PwProgram& pa = pointwise_kernel_of(a)->program();
    const PwProgram& pb = pointwise_kernel_of(b)->program();
    std::vector<int> inputs = a.inputs;
    std::vector<int> b_input(b.inputs.size(), -1), b_from_a(b.inputs.size(), -1);  // input index, or a's output
    for (size_t k = 0; k < b.inputs.size(); ++k) {
      const int v = b.inputs[k];
      const auto o = std::find(a.outputs.begin(), a.outputs.end(), v);
      if (o != a.outputs.end()) {
        b_from_a[k] = int(o - a.outputs.begin());
        continue;
      }
      const auto i = std::find(inputs.begin(), inputs.end(), v);
      b_input[k] = int(i - inputs.begin());
      if (i == inputs.end()) inputs.push_back(v);
    }
    for (size_t k = 0; k < b.outputs.size(); ++k) {
      const int al = b.aliased_input(k);
      if (al >= 0 && b_input[size_t(al)] < 0) return false;  // b would update a result of a in place
    }
    PwProgram m;
    m.num_inputs = int(inputs.size());
    const int shift_a = m.num_inputs - pa.num_inputs;
    auto ra = [&](int r) { return r < 0 || r < pa.num_inputs ? r : r + shift_a; };
    for (PwInstr in : pa.code) {
      in.a = ra(in.a);
      in.b = ra(in.b);
      in.c = ra(in.c);
      m.code.push_back(in);
    }
    std::vector<int> a_out;
    for (int r : pa.outputs) a_out.push_back(ra(r));
    const int base_b = m.num_registers();
    auto rb = [&](int r) {
      if (r < 0) return r;
      if (r >= pb.num_inputs) return base_b + (r - pb.num_inputs);
      return b_from_a[size_t(r)] >= 0 ? a_out[size_t(b_from_a[size_t(r)])] : b_input[size_t(r)];
    };
    for (PwInstr in : pb.code) {
      in.a = rb(in.a);
      in.b = rb(in.b);
      in.c = rb(in.c);
      m.code.push_back(in);
    }
    m.outputs = a_out;
    for (int r : pb.outputs) m.outputs.push_back(rb(r));
    out.inputs = inputs;
    out.outputs = a.outputs;
    out.outputs.insert(out.outputs.end(), b.outputs.begin(), b.outputs.end());
    for (size_t k = 0; k < a.outputs.size(); ++k) out.output_alias.push_back(a.aliased_input(k));
    for (size_t k = 0; k < b.outputs.size(); ++k) {
      const int al = b.aliased_input(k);
      out.output_alias.push_back(al < 0 ? -1 : b_input[size_t(al)]);
    }
    out.fused = std::make_shared<FusedPointwiseKernel>(std::move(m), 1);
    return true;
  }
};

PACER_REGISTER_PASS(AmpSkipFusion);

}  // namespace

}  // namespace pacer::graph
