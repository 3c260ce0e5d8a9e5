// Softmax + cross-entropy fusion (CPU, and CUDA through ops/graph/cuda_softmax_xent.h),
// label smoothing included. cross_entropy() is built
// from public ops: logp = log_softmax(x, 1), the target's logp picked by gather, the row sum
// of logp for the smoothing term, and in the backward P = [expand(spread) +]
// scatter_add(zeros, target, picked's gradient), then dx = P - exp(logp) * sum(P, 1). Two
// fused nodes replace them, and logp [N, C] is never stored:
// - backward: full / scatter_add / [expand + add] / sum / exp / mul / sub -> one row sweep
//   (log_softmax_xent_backward) that recomputes each row's log-softmax from the logits;
// - forward, once its exp reader is gone: log_softmax + gather [+ sum] -> log_softmax_pick.
// On the CPU the numbers equal the unfused ops' bit for bit (ops/cpu/softmax_xent.h); on
// CUDA the row sums run in another order than the unfused reductions' (last bits).
#include <fmt/format.h>

#include <algorithm>

#include "ops/api.h"
#include "ops/cpu/softmax_xent.h"
#include "ops/graph/alias.h"
#include "ops/graph/cuda_softmax_xent.h"
#include "ops/graph/fusion.h"

namespace pacer::graph {

namespace detail {
CudaSoftmaxXent& cuda_softmax_xent() {
  static CudaSoftmaxXent hooks;
  return hooks;
}
}  // namespace detail

namespace {

// Whether the fused kernels run on `d` in this build.
bool runs_on(Device d) { return d.is_cpu() || (d.is_cuda() && detail::cuda_softmax_xent().pick != nullptr); }

class LogSoftmaxPickKernel final : public FusedKernel {
 public:
  explicit LogSoftmaxPickKernel(bool rowsum) : rowsum_(rowsum) {}
  std::string name() const override { return "log_softmax_pick"; }
  std::string describe() const override {
    return rowsum_ ? "logp = log_softmax(x, 1); (gather(logp, 1, index), sum(logp, 1))"
                   : "gather(log_softmax(x, 1), 1, index)";
  }
  // inputs: x [N, C], index [N, 1]; outputs: picked [N, 1], [rowsum [N]].
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    PACER_CHECK(runs_on(in[0].device()), "{}: this build cannot run it on {}", name(), in[0].device());
    if (in[0].device().is_cuda())
      detail::cuda_softmax_xent().pick(contiguous(in[0]), contiguous(in[1]), out[0], rowsum_ ? &out[1] : nullptr);
    else
      ops::cpu::log_softmax_pick(contiguous(in[0]), contiguous(in[1]), out[0], rowsum_ ? &out[1] : nullptr);
  }

 private:
  bool rowsum_;
};

class XentBackwardKernel final : public FusedKernel {
 public:
  std::string name() const override { return "log_softmax_xent_backward"; }
  std::string describe() const override {
    return "P = [expand(spread) +] scatter_add(0, 1, index, src); P - exp(log_softmax(x, 1)) * sum(P, 1)";
  }
  // inputs: x [N, C], index [N, 1], src [N, 1], spread [N, 1] (may be undefined); output: dx.
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    PACER_CHECK(runs_on(in[0].device()), "{}: this build cannot run it on {}", name(), in[0].device());
    if (in[0].device().is_cuda())
      detail::cuda_softmax_xent().backward(contiguous(in[0]), contiguous(in[1]), in[2], in[3], out[0]);
    else
      ops::cpu::log_softmax_xent_backward(contiguous(in[0]), contiguous(in[1]), in[2], in[3], out[0]);
  }
};

class SoftmaxXentFusion final : public Pass {
 public:
  std::string name() const override { return "softmax_xent"; }
  std::string summary() const override {
    return "fuses log-softmax with the cross-entropy (label smoothing too) around it, forward and backward, "
           "without storing the log-probabilities (CPU, CUDA)";
  }

  void run(Graph& g, PassContext& ctx) override {
    fuse_backward(g, ctx);
    fuse_forward(g, ctx);
  }

 private:
  // The graph index, and the lookups the patterns below read it through.
  struct View {
    explicit View(const Graph& g) : ix(g) {}
    GraphIndex ix;
    const Node* producer(int v) const { return ix.producer_node(v); }
    size_t at(const Node* n) const { return size_t(ix.pos[size_t(n->id)]); }
    // Whether v is read only by the nodes in `readers` (ids) and is not a graph output.
    bool read_only_by(int v, std::initializer_list<const Node*> readers) const {
      if (ix.escaping[size_t(v)]) return false;
      for (int u : ix.g.values[size_t(v)].uses)
        if (std::none_of(readers.begin(), readers.end(), [&](const Node* r) { return r && r->id == u; }))
          return false;
      return true;
    }
    const ops::TensorMeta& meta(int v) const { return ix.g.values[size_t(v)].meta; }
    static bool is(const Node* n, const char* kind) { return n && n->op && n->kind() == kind; }
  };

  // x of a log_softmax over dim 1 of a contiguous float32 / float64 [N, C] tensor, or -1.
  static int softmax_input(const View& w, const Node* l) {
    if (!View::is(l, "log_softmax") || !runs_on(l->device)) return -1;
    const ops::TensorMeta& xm = w.meta(l->inputs[0]);
    if (xm.sizes.size() != 2 || (l->attrs.i("dim") != 1 && l->attrs.i("dim") != -1)) return -1;
    if (xm.dtype != DType::F32 && xm.dtype != DType::F64) return -1;
    // sum()'s kernel splits one very long row across threads: keep to its plain row order.
    if (xm.sizes[0] < 2 && xm.sizes[1] > 65536) return -1;
    return l->inputs[0];
  }

  void fuse_backward(Graph& g, PassContext& ctx) {
    const View w(g);
    int next_id = g.next_node_id();
    std::vector<Fusion> fusions;
    for (const Node& d : g.nodes) {
      if (!View::is(&d, "sub") || !runs_on(d.device)) continue;
      // dx = sub(P, mul(exp(logp), s)), s = sum(P, [1], keepdim).
      const Node* m = w.producer(d.inputs[1]);
      if (!View::is(m, "mul")) continue;
      const Node* e = w.producer(m->inputs[0]);
      const Node* sv = w.producer(m->inputs[1]);
      if (!View::is(e, "exp")) std::swap(e, sv);
      if (!View::is(e, "exp") || !View::is(sv, "sum")) continue;
      const Node* l = w.producer(e->inputs[0]);
      const int x = softmax_input(w, l);
      if (x < 0) continue;
      const int p = d.inputs[0];
      if (sv->inputs[0] != p || sv->attrs.shape("dims") != Shape{1} || !sv->attrs.b("keepdim")) continue;
      // P = scatter_add(zeros, index, src) [+ expand(spread)].
      const Node* sa = w.producer(p);
      const Node *add = nullptr, *ex = nullptr;
      if (View::is(sa, "add")) {
        add = sa;
        sa = w.producer(add->inputs[1]);
        ex = w.producer(add->inputs[0]);
        if (!View::is(sa, "scatter_add")) std::swap(sa, ex);
        if (!View::is(ex, "expand")) continue;
      }
      if (!View::is(sa, "scatter_add") || sa->attrs.i("dim") != 1) continue;
      const Node* z = w.producer(sa->inputs[0]);
      if (!View::is(z, "full") || z->attrs.scalar("value").to_double() != 0.0) continue;
      const ops::TensorMeta &xm = w.meta(x), &pm = w.meta(p);
      const int64_t N = xm.sizes[0];
      const int index = sa->inputs[1], src = sa->inputs[2], spread = ex ? ex->inputs[0] : -1;
      const Shape column{N, 1};
      if (pm.sizes != xm.sizes || pm.dtype != xm.dtype || w.meta(z->outputs[0]).sizes != xm.sizes ||
          w.meta(index).sizes != column || w.meta(src).sizes != column || w.meta(src).dtype != xm.dtype ||
          (ex && (w.meta(spread).sizes != column || w.meta(spread).dtype != xm.dtype)) ||
          w.meta(e->outputs[0]).dtype != xm.dtype || w.meta(m->outputs[0]).dtype != xm.dtype ||
          w.meta(d.outputs[0]).dtype != xm.dtype || w.meta(sv->outputs[0]).dtype != xm.dtype)
        continue;
      // Every intermediate read only inside the group.
      if (!w.read_only_by(z->outputs[0], {sa}) || !w.read_only_by(e->outputs[0], {m}) ||
          !w.read_only_by(sv->outputs[0], {m}) || !w.read_only_by(m->outputs[0], {&d}) ||
          !w.read_only_by(p, {sv, &d}) || (add && !w.read_only_by(sa->outputs[0], {add})) ||
          (ex && !w.read_only_by(ex->outputs[0], {add})))
        continue;
      Fusion f;
      for (const Node* n : {z, sa, ex, add, sv, e, m, &d})
        if (n) f.members.push_back(w.at(n));
      std::sort(f.members.begin(), f.members.end());
      f.node.id = next_id++;
      f.node.device = d.device;
      f.node.fused = std::make_shared<XentBackwardKernel>();
      f.node.inputs = {x, index, src, spread};
      f.node.outputs = {d.outputs[0]};
      // The reference recomputes logp into a value of its own: the forward fusion below may
      // remove the graph's.
      Node ref_l = *l;
      ref_l.id = next_id++;
      ref_l.outputs = {g.add_value(ValueKind::Internal, w.meta(l->outputs[0]))};
      f.node.reference.push_back(ref_l);
      for (size_t mpos : f.members) {
        Node r = g.nodes[mpos];
        if (r.id == e->id) r.inputs = {ref_l.outputs[0]};
        f.node.reference.push_back(r);
      }
      fusions.push_back(std::move(f));
    }
    if (!fusions.empty()) g.rebuild_uses();  // the reference values added above
    apply_fusions(g, std::move(fusions), ctx);
  }

  void fuse_forward(Graph& g, PassContext& ctx) {
    const View w(g);
    int next_id = g.next_node_id();
    std::vector<Fusion> fusions;
    for (const Node& l : g.nodes) {
      const int x = softmax_input(w, &l);
      if (x < 0) continue;
      const int logp = l.outputs[0];
      const Node *gather = nullptr, *rowsum = nullptr;
      bool other = w.ix.escaping[size_t(logp)];
      for (int u : g.values[size_t(logp)].uses) {
        const Node& r = g.nodes[size_t(w.ix.pos[size_t(u)])];
        if (View::is(&r, "gather") && !gather && r.inputs[0] == logp && r.attrs.i("dim") == 1) gather = &r;
        else if (View::is(&r, "sum") && !rowsum && r.attrs.shape("dims") == Shape{1} && !r.attrs.b("keepdim"))
          rowsum = &r;
        else other = true;
      }
      const int64_t N = w.meta(x).sizes[0];
      if (other || !gather || w.meta(gather->inputs[1]).sizes != Shape{N, 1} ||
          (rowsum && w.meta(rowsum->outputs[0]).dtype != w.meta(x).dtype))
        continue;
      Fusion f;
      for (const Node* n : {&l, gather, rowsum})
        if (n) f.members.push_back(w.at(n));
      std::sort(f.members.begin(), f.members.end());
      f.node.id = next_id++;
      f.node.device = l.device;
      f.node.fused = std::make_shared<LogSoftmaxPickKernel>(rowsum != nullptr);
      f.node.inputs = {x, gather->inputs[1]};
      f.node.outputs = {gather->outputs[0]};
      if (rowsum) f.node.outputs.push_back(rowsum->outputs[0]);
      for (size_t mpos : f.members) f.node.reference.push_back(g.nodes[mpos]);
      // At the gather's place: the index is computed after the log_softmax, and the picked
      // value is read before the row sum.
      f.at_member = size_t(std::find(f.members.begin(), f.members.end(), w.at(gather)) - f.members.begin());
      fusions.push_back(std::move(f));
    }
    apply_fusions(g, std::move(fusions), ctx);
  }
};

PACER_REGISTER_PASS(SoftmaxXentFusion);

}  // namespace

}  // namespace pacer::graph
