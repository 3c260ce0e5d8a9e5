// BN-apply + (add) + ReLU fusion, forward and backward (CPU, and CUDA for dense
// channels-last tensors through ops/cuda/batch_norm_nhwc.cu's vectorized kernels). Forward: batch_norm_train's
// output read only by relu, or by an add (the residual) read only by relu, becomes one
// kernel whose normalize loop adds and clamps: the normalized tensor and the sum are never
// written. Backward: batch_norm_train_backward of a relu_backward read only by it takes
// the ReLU output as its mask and applies ReLU's backward on the fly: the masked gradient
// is never written. (The residual unit's masked gradient also feeds the shortcut, so it is
// kept and its backward is left alone.)
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "ops/api.h"
#include "ops/cpu/batch_norm.h"
#include "ops/cpu/conv.h"
#include "ops/graph/alias.h"
#include "ops/graph/cuda_batch_norm_relu.h"
#include "ops/graph/cuda_conv_bn.h"
#include "ops/graph/fusion.h"

namespace pacer::graph {

namespace detail {
CudaBatchNormRelu& cuda_batch_norm_relu() {
  static CudaBatchNormRelu hooks;
  return hooks;
}
CudaConvBatchNorm& cuda_conv_bn() {
  static CudaConvBatchNorm hooks;
  return hooks;
}
}  // namespace detail

namespace {

class BatchNormReluKernel final : public FusedKernel {
 public:
  BatchNormReluKernel(double eps, bool residual) : eps_(eps), residual_(residual) {}
  double eps() const { return eps_; }
  bool residual() const { return residual_; }
  std::string name() const override { return residual_ ? "bn_add_relu" : "bn_relu"; }
  std::string describe() const override {
    return fmt::format("relu(batch_norm_train(x, weight, bias; eps={}){})", eps_, residual_ ? " + residual" : "");
  }
  // inputs: x, weight, bias (either may be undefined), [residual]; outputs: out, mean, invstd.
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (in[0].device().is_cuda()) {  // made by bn_relu only where the CUDA kernels take it
      const detail::CudaBatchNormRelu& h = detail::cuda_batch_norm_relu();
      PACER_CHECK(h.forward != nullptr, "{}: this build cannot run it on {}", name(), in[0].device());
      h.forward(in[0], in[1], in[2], residual_ ? in[3] : Tensor(), eps_, out[0], out[1], out[2]);
      return;
    }
    PACER_CHECK(in[0].is_cpu(), "{}: runs on CPU or CUDA tensors, got {}", name(), in[0].device());
    ops::cpu::batch_norm_forward_from_sums(contiguous(in[0]), in[1], in[2], residual_ ? contiguous(in[3]) : Tensor(),
                                           true, eps_, nullptr, out[0], out[1], out[2]);
  }

 private:
  double eps_;
  bool residual_;
};

class BatchNormReluBackwardKernel final : public FusedKernel {
 public:
  std::string name() const override { return "bn_relu_backward"; }
  std::string describe() const override {
    return "batch_norm_train_backward(relu_backward(dout, out), x, weight, mean, invstd)";
  }
  // inputs: dout, out, x, weight (may be undefined), mean, invstd; outputs: dx, dweight, dbias.
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (in[0].device().is_cuda()) {
      const detail::CudaBatchNormRelu& h = detail::cuda_batch_norm_relu();
      PACER_CHECK(h.backward != nullptr, "{}: this build cannot run it on {}", name(), in[0].device());
      h.backward(in[0], in[1], in[2], in[3], in[4], in[5], out[0], out[1], out[2]);
      return;
    }
    PACER_CHECK(in[0].is_cpu(), "{}: runs on CPU or CUDA tensors, got {}", name(), in[0].device());
    ops::cpu::batch_norm_relu_backward(contiguous(in[0]), contiguous(in[1]), contiguous(in[2]), in[3], in[4], in[5],
                                       out[0], out[1], out[2]);
  }
};

// recompute_bn_relu's recomputation: batch norm's normalize pass alone (+ residual, + ReLU)
// from the statistics the forward stored, which batch norm's backward keeps anyway: the
// forward's output again, bit for bit, without another pass over x for the statistics.
class BatchNormApplyKernel final : public FusedKernel {
 public:
  BatchNormApplyKernel(bool residual, bool relu) : residual_(residual), relu_(relu) {}
  std::string name() const override {
    return relu_ ? (residual_ ? "bn_add_relu_apply" : "bn_relu_apply") : (residual_ ? "bn_add_apply" : "bn_apply");
  }
  std::string describe() const override {
    return fmt::format("{}batch_norm(x, weight, bias, mean, invstd){}{} (statistics given)", relu_ ? "relu(" : "",
                       residual_ ? " + residual" : "", relu_ ? ")" : "");
  }
  // inputs: x, weight, bias (either may be undefined), mean, invstd, [residual]; outputs: out.
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    PACER_CHECK(in[0].is_cpu(), "{}: runs on CPU tensors only, got {}", name(), in[0].device());
    ops::cpu::batch_norm_apply(contiguous(in[0]), in[1], in[2], in[3], in[4], residual_ ? contiguous(in[5]) : Tensor(),
                               relu_, out[0]);
  }

 private:
  bool residual_, relu_;
};

// conv2d whose output batch norm (+ residual, + ReLU) normalizes: the statistics are summed
// image by image right after the convolution writes each image, while it is in cache, so
// batch norm's own pass over the conv output for them is saved.
class ConvBatchNormKernel final : public FusedKernel {
 public:
  ConvBatchNormKernel(ops::Attrs conv, double eps, bool residual, bool relu)
      : conv_(std::move(conv)), eps_(eps), residual_(residual), relu_(relu) {}
  double eps() const { return eps_; }
  bool residual() const { return residual_; }
  bool relu() const { return relu_; }
  std::string name() const override { return relu_ ? (residual_ ? "conv_bn_add_relu" : "conv_bn_relu") : "conv_bn"; }
  std::string describe() const override {
    return fmt::format("y = conv2d(x, w, b; {}); {}batch_norm_train(y; eps={}){}{}", conv_.to_string(),
                       relu_ ? "relu(" : "", eps_, residual_ ? " + residual" : "", relu_ ? ")" : "");
  }
  // inputs: x, w, b (may be undefined), bn weight, bn bias, [residual];
  // outputs: y, the normalized (or relu'd) tensor, mean, invstd.
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    if (in[0].device().is_cuda()) {
      const detail::CudaConvBatchNorm& h = detail::cuda_conv_bn();
      PACER_CHECK(h.forward != nullptr, "{}: this build cannot run it on {}", name(), in[0].device());
      h.forward(in[0], in[1], in[2], conv_, in[3], in[4], residual_ ? in[5] : Tensor(), relu_, eps_, out[0], out[1],
                out[2], out[3]);
      return;
    }
    PACER_CHECK(in[0].is_cpu(), "{}: runs on CPU or CUDA tensors, got {}", name(), in[0].device());
    Tensor& y = out[0];
    std::vector<double> sums(2 * size_t(y.size(1)), 0.0);
    ops::cpu::conv2d_forward(in[0], in[1], in[2], conv_, y, [&](int64_t n0, int64_t nb) {
      ops::cpu::batch_norm_add_image_sums(y, n0, nb, sums.data());
    });
    ops::cpu::batch_norm_forward_from_sums(y, in[3], in[4], residual_ ? contiguous(in[5]) : Tensor(), relu_, eps_,
                                           sums.data(), out[1], out[2], out[3]);
  }

 private:
  ops::Attrs conv_;
  double eps_;
  bool residual_, relu_;
};

class BatchNormReluFusion final : public Pass {
 public:
  std::string name() const override { return "bn_relu"; }
  std::string summary() const override {
    return "fuses batch norm with the add and ReLU after it, and ReLU's backward into batch norm's (CPU; CUDA "
           "channels-last)";
  }

  void run(Graph& g, PassContext& ctx) override {
    const GraphIndex ix(g);
    const std::vector<int>& pos = ix.pos;
    auto is = [&](int p, const char* kind) { return p >= 0 && g.nodes[size_t(p)].kind() == kind; };
    int next_id = g.next_node_id();
    std::vector<Fusion> fusions;
    // On CUDA every tensor of the pattern must be one the vectorized kernels take (dense
    // channels-last); the CPU kernels make their operands contiguous themselves.
    const detail::CudaBatchNormRelu& cuda = detail::cuda_batch_norm_relu();
    auto takes = [&](const Node& n, std::initializer_list<int> values) {
      if (n.device.is_cpu()) return true;
      if (!n.device.is_cuda() || cuda.takes == nullptr) return false;
      for (int v : values)
        if (v < 0 || !cuda.takes(g.values[size_t(v)].meta)) return false;
      return true;
    };
    for (size_t p = 0; p < g.nodes.size(); ++p) {
      const Node& n = g.nodes[p];
      if (n.kind() == "batch_norm_train" && (n.device.is_cpu() ? is_contiguous(g.values[size_t(n.outputs[0])].meta)
                                                                : takes(n, {n.inputs[0], n.outputs[0]}))) {
        const int r = ix.only_reader(n.outputs[0]);
        std::vector<size_t> members = {p};
        int residual = -1;
        if (is(r, "add")) {
          const Node& add = g.nodes[size_t(r)];
          residual = add.inputs[0] == n.outputs[0] ? add.inputs[1] : add.inputs[0];
          const ops::TensorMeta& rm = g.values[size_t(residual)].meta;
          const ops::TensorMeta& ym = g.values[size_t(n.outputs[0])].meta;
          const int r2 = ix.only_reader(add.outputs[0]);
          if (add.inputs[0] == add.inputs[1] || rm.sizes != ym.sizes || rm.dtype != ym.dtype || !is(r2, "relu")) continue;
          if (!takes(n, {residual, add.outputs[0], g.nodes[size_t(r2)].outputs[0]})) continue;
          // A residual computed after this batch norm (the downsampling shortcut's batch norm):
          // that batch norm is fused with the add instead, this one's output being its residual.
          const Value& res = g.values[size_t(residual)];
          if (res.kind == ValueKind::Internal && pos[size_t(res.producer)] > int(p)) continue;
          members.push_back(size_t(r));
          members.push_back(size_t(r2));
        } else if (is(r, "relu") && takes(n, {g.nodes[size_t(r)].outputs[0]})) {
          members.push_back(size_t(r));
        } else {
          continue;
        }
        Fusion f;
        f.members = members;
        f.node.id = next_id++;
        f.node.device = n.device;
        f.node.fused = std::make_shared<BatchNormReluKernel>(n.attrs.f("eps"), residual >= 0);
        f.node.inputs = {n.inputs[0], n.inputs.size() > 1 ? n.inputs[1] : -1, n.inputs.size() > 2 ? n.inputs[2] : -1};
        if (residual >= 0) f.node.inputs.push_back(residual);
        f.node.outputs = {g.nodes[members.back()].outputs[0], n.outputs[1], n.outputs[2]};
        for (size_t m : members) f.node.reference.push_back(g.nodes[m]);
        // At the batch norm's place: the running statistics' update right after it reads
        // the mean and variance. (A residual computed later moves it to the ReLU's place.)
        f.at_first = true;
        fusions.push_back(std::move(f));
      } else if (n.kind() == "batch_norm_train_backward" && n.inputs[0] >= 0) {
        const Value& dy = g.values[size_t(n.inputs[0])];
        if (dy.kind != ValueKind::Internal) continue;
        const int q = pos[size_t(dy.producer)];
        if (!is(q, "relu_backward") || ix.only_reader(n.inputs[0]) != int(p)) continue;
        const Node& rb = g.nodes[size_t(q)];
        if (!takes(n, {rb.inputs[0], rb.inputs[1], n.inputs[0], n.inputs[1], n.outputs[0]})) continue;
        Fusion f;
        f.members = {size_t(q), p};
        f.node.id = next_id++;
        f.node.device = n.device;
        f.node.fused = std::make_shared<BatchNormReluBackwardKernel>();
        f.node.inputs = {rb.inputs[0], rb.inputs[1], n.inputs[1], n.inputs[2], n.inputs[3], n.inputs[4]};
        f.node.outputs = n.outputs;
        f.node.reference = {rb, n};
        fusions.push_back(std::move(f));
      }
    }
    apply_fusions(g, std::move(fusions), ctx);
  }
};

PACER_REGISTER_PASS(BatchNormReluFusion);

class ConvBatchNormFusion final : public Pass {
 public:
  std::string name() const override { return "conv_bn"; }
  std::string summary() const override {
    return "sums batch norm's statistics in the epilogue of the convolution before it (CPU; CUDA channels-last "
           "half through cuDNN's conv + genstats graph)";
  }

  // On CUDA: the convolution's input and output, and batch norm's output (and residual),
  // must be tensors the fused CUDA kernels take (dense channels-last half).
  static bool cuda_takes(const Graph& g, const Node& conv, const Node& bn, const BatchNormReluKernel* fused_bn) {
    const detail::CudaConvBatchNorm& h = detail::cuda_conv_bn();
    const detail::CudaBatchNormRelu& bnh = detail::cuda_batch_norm_relu();
    if (h.takes == nullptr || bnh.takes == nullptr || conv.device != bn.device) return false;
    auto meta = [&](int v) -> const ops::TensorMeta& { return g.values[size_t(v)].meta; };
    if (!h.takes(meta(conv.inputs[0]), meta(conv.outputs[0])) || !bnh.takes(meta(bn.outputs[0]))) return false;
    return !(fused_bn && fused_bn->residual()) || bnh.takes(meta(bn.inputs[3]));
  }

  void run(Graph& g, PassContext& ctx) override {
    const std::vector<int> pos = g.positions();
    int next_id = g.next_node_id();
    std::vector<Fusion> fusions;
    for (size_t p = 0; p < g.nodes.size(); ++p) {
      const Node& bn = g.nodes[p];
      const auto* fused_bn = dynamic_cast<const BatchNormReluKernel*>(bn.fused.get());
      if ((!bn.device.is_cpu() && !bn.device.is_cuda()) || (bn.kind() != "batch_norm_train" && !fused_bn) ||
          bn.inputs[0] < 0)
        continue;
      const Value& x = g.values[size_t(bn.inputs[0])];
      if (x.kind != ValueKind::Internal) continue;
      const int q = pos[size_t(x.producer)];
      if (q < 0 || g.nodes[size_t(q)].kind() != "conv2d") continue;
      const Node& conv = g.nodes[size_t(q)];
      if (bn.device.is_cpu() ? !is_contiguous(x.meta) : !cuda_takes(g, conv, bn, fused_bn)) continue;
      Fusion f;
      f.members = {size_t(q), p};
      f.node.id = next_id++;
      f.node.device = bn.device;
      const double eps = fused_bn ? fused_bn->eps() : bn.attrs.f("eps");
      const bool residual = fused_bn && fused_bn->residual();
      f.node.fused = std::make_shared<ConvBatchNormKernel>(conv.attrs, eps, residual, fused_bn != nullptr);
      f.node.inputs = {conv.inputs[0], conv.inputs[1], conv.inputs.size() > 2 ? conv.inputs[2] : -1,
                       bn.inputs.size() > 1 ? bn.inputs[1] : -1, bn.inputs.size() > 2 ? bn.inputs[2] : -1};
      if (residual) f.node.inputs.push_back(bn.inputs[3]);
      f.node.outputs = {conv.outputs[0]};
      f.node.outputs.insert(f.node.outputs.end(), bn.outputs.begin(), bn.outputs.end());
      f.node.reference = {conv, bn};
      f.at_first = true;  // where the convolution was: everything the batch norm reads exists by then
      fusions.push_back(std::move(f));
    }
    apply_fusions(g, std::move(fusions), ctx);
  }
};

PACER_REGISTER_PASS(ConvBatchNormFusion);

// The op nodes a fused node stands for, however deeply nested.
void leaf_nodes(const Node& n, std::vector<const Node*>& out) {
  if (n.reference.empty()) {
    out.push_back(&n);
    return;
  }
  for (const Node& r : n.reference) leaf_nodes(r, out);
}

// Replaces value `from` by `to` in the inputs of n and of its references.
void rewire(Node& n, int from, int to) {
  for (int& in : n.inputs)
    if (in == from) in = to;
  for (Node& r : n.reference) rewire(r, from, to);
}

// Memory for time: a batch norm + (add +) ReLU output is kept from the forward to the
// backward only for ReLU's mask and the next convolution's weight gradient. This pass lets
// it go after its forward readers and computes it again from the conv output and the batch
// statistics (both kept anyway for batch norm's backward) just before its first backward
// reader: batch norm's normalize loop on the same inputs (BatchNormApplyKernel), so the same
// numbers, with no second statistics pass. A residual unit's output also needs its residual, the
// unit before's output: those are recomputed as a chain, from the stage's first unit (whose
// residual is the shortcut's batch norm, recomputed from its conv output) on, when the
// stage's backward starts. Not in the default list.
class RecomputeBnRelu final : public Pass {
 public:
  std::string name() const override { return "recompute_bn_relu"; }
  std::string summary() const override {
    return "recomputes batch norm (+ residual) + ReLU outputs in the backward instead of keeping them, residual units "
           "as chains (memory for time; CPU)";
  }

  void run(Graph& g, PassContext& ctx) override {
    const GraphIndex ix(g);
    const std::vector<int>& pos = ix.pos;
    std::vector<Plan> plans;
    std::map<int, size_t> plan_of;  // recomputed value -> its plan
    int next_id = g.next_node_id();
    auto last_reader = [&](int v) {
      int last = -1;
      for (int u : g.values[size_t(v)].uses) last = std::max(last, pos[size_t(u)]);
      return last;
    };
    // The leaves of fused node f: batch_norm_train, add (residual units), relu.
    auto leaves_of = [](const Node& f) {
      std::vector<const Node*> leaves;
      leaf_nodes(f, leaves);
      Leaves l;
      for (const Node* n : leaves) {
        if (n->kind() == "batch_norm_train") l.bn = n;
        if (n->kind() == "add") l.add = n;
        if (n->kind() == "relu") l.relu = n;
      }
      return l;
    };
    for (size_t p = 0; p < g.nodes.size(); ++p) {
      const Node& f = g.nodes[p];
      const auto* bn = dynamic_cast<const BatchNormReluKernel*>(f.fused.get());
      const auto* cbn = dynamic_cast<const ConvBatchNormKernel*>(f.fused.get());
      if (!f.device.is_cpu() || (!bn && !(cbn && cbn->relu()))) continue;
      const bool residual = bn ? bn->residual() : cbn->residual();
      const int z = bn ? f.outputs[0] : f.outputs[1];
      const int x = bn ? f.inputs[0] : f.outputs[0];
      if (ix.escaping[size_t(z)]) continue;
      // Forward readers, then backward ones: split at the widest gap between readers (the
      // forward's readers sit within a few units, a shortcut's conv up to ~10 nodes after
      // the next unit's first), when it holds kMinGap nodes or more.
      std::vector<int> readers;
      for (int u : g.values[size_t(z)].uses) readers.push_back(pos[size_t(u)]);
      std::sort(readers.begin(), readers.end());
      size_t split = 0;
      for (size_t k = 1; k < readers.size(); ++k)
        if (readers[k] - readers[k - 1] >= kMinGap && (split == 0 || readers[k] - readers[k - 1] > readers[split] - readers[split - 1]))
          split = k;
      // Only while x is kept anyway.
      if (split == 0 || last_reader(x) < readers[split]) continue;
      const Leaves l = leaves_of(f);
      if (!l.bn || !l.relu || (residual && !l.add)) continue;
      Plan plan;
      plan.z = z;
      plan.made_at = int(p);
      plan.at = readers[split];
      plan.late.assign(readers.begin() + long(split), readers.end());
      if (residual) plan.residual = bn ? f.inputs[3] : f.inputs[5];
      Node& r = plan.node;
      r.id = next_id++;
      r.device = f.device;
      r.fused = std::make_shared<BatchNormApplyKernel>(residual, true);
      // The statistics: the fused node's mean and invstd outputs.
      const int mean = bn ? f.outputs[1] : f.outputs[2], invstd = bn ? f.outputs[2] : f.outputs[3];
      r.inputs = {x, l.bn->inputs.size() > 1 ? l.bn->inputs[1] : -1, l.bn->inputs.size() > 2 ? l.bn->inputs[2] : -1,
                  mean, invstd};
      if (residual) r.inputs.push_back(plan.residual);  // rewired below when the residual is recomputed too
      const int y2 = g.add_value(ValueKind::Internal, g.values[size_t(l.bn->outputs[0])].meta);
      const int m2 = g.add_value(ValueKind::Internal, g.values[size_t(l.bn->outputs[1])].meta);
      const int i2 = g.add_value(ValueKind::Internal, g.values[size_t(l.bn->outputs[2])].meta);
      const int z2 = g.add_value(ValueKind::Internal, g.values[size_t(z)].meta);
      r.outputs = {z2};
      // The reference keeps the original nodes' ids, so MemoryOrderCheck compares what they
      // read then (x, weight, bias) with what the recomputation reads now.
      Node bn_ref = *l.bn, relu_ref = *l.relu;
      bn_ref.inputs[0] = x;
      bn_ref.outputs = {y2, m2, i2};
      relu_ref.outputs = {z2};
      if (residual) {
        Node add_ref = *l.add;
        const int s2 = g.add_value(ValueKind::Internal, g.values[size_t(l.add->outputs[0])].meta);
        for (int& in : add_ref.inputs) in = in == plan.residual ? plan.residual : y2;
        add_ref.outputs = {s2};
        relu_ref.inputs = {s2};
        r.reference = {bn_ref, add_ref, relu_ref};
      } else {
        relu_ref.inputs = {y2};
        r.reference = {bn_ref, relu_ref};
      }
      plan_of[z] = plans.size();
      plans.push_back(std::move(plan));
    }
    // A residual that is neither recomputed nor alive where its reader is recomputed: the
    // shortcut's batch norm output, recomputed (plainly) from its conv output, or else the
    // unit is kept as it is.
    for (size_t k = 0; k < plans.size(); ++k) {
      const int res = plans[k].residual;
      if (res < 0 || plan_of.count(res) || g.values[size_t(res)].kind != ValueKind::Internal ||
          last_reader(res) >= plans[k].at)
        continue;
      const Node* maker = ix.producer_node(res);
      const Node* bn_op = nullptr;
      if (maker && maker->kind() == "batch_norm_train") bn_op = maker;
      if (const auto* cbn = maker ? dynamic_cast<const ConvBatchNormKernel*>(maker->fused.get()) : nullptr;
          cbn && !cbn->relu() && !cbn->residual() && maker->outputs[1] == res)
        bn_op = leaves_of(*maker).bn;
      if (!bn_op || bn_op->outputs[0] != res || last_reader(bn_op->inputs[0]) < plans[k].at) {
        plans[k].dropped = true;
        continue;
      }
      Plan plan;
      plan.z = res;
      plan.made_at = pos[size_t(maker->id)];
      plan.at = plans[k].at;
      Node& r = plan.node;
      r.id = next_id++;
      r.device = maker->device;
      r.fused = std::make_shared<BatchNormApplyKernel>(false, false);
      // bn_op's mean and invstd are the maker's (a conv_bn node lists the conv output first).
      const int stats = maker->kind() == "batch_norm_train" ? 1 : 2;
      r.inputs = {bn_op->inputs[0], bn_op->inputs.size() > 1 ? bn_op->inputs[1] : -1,
                  bn_op->inputs.size() > 2 ? bn_op->inputs[2] : -1, maker->outputs[size_t(stats)],
                  maker->outputs[size_t(stats) + 1]};
      Node ref = *bn_op;  // its id kept, as above
      ref.outputs.clear();
      for (int out : bn_op->outputs) ref.outputs.push_back(g.add_value(ValueKind::Internal, g.values[size_t(out)].meta));
      r.outputs = {ref.outputs[0]};
      r.reference = {ref};
      plan_of[res] = plans.size();
      plans.push_back(std::move(plan));
    }
    // A chain is recomputed from its start: each recomputation goes no later than the ones
    // that read it (those made later in the forward come first here) and reads their outputs.
    std::vector<size_t> order(plans.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return plans[a].made_at > plans[b].made_at; });
    for (size_t k : order) {
      Plan& pl = plans[k];
      if (pl.residual < 0 || !plan_of.count(pl.residual)) continue;
      Plan& src = plans[plan_of[pl.residual]];
      src.at = std::min(src.at, pl.at);
      pl.node.inputs[kResidualInput] = src.node.outputs[0];
      for (Node& ref : pl.node.reference)
        for (int& in : ref.inputs)
          if (in == pl.residual) in = src.node.outputs[0];
    }
    // A plan whose residual's plan was dropped (or that was dropped) goes, with its readers.
    for (bool changed = true; changed;) {
      changed = false;
      for (Plan& pl : plans)
        if (!pl.dropped && pl.residual >= 0 && plan_of.count(pl.residual) && plans[plan_of[pl.residual]].dropped) {
          pl.dropped = changed = true;
        }
    }
    const Graph before = g;
    const MemoryOrderCheck check(before);
    while (true) {
      Graph after = build(before, plans);
      const Hazard h = check.hazard(after);
      if (!h) {
        g = std::move(after);
        break;
      }
      size_t bad = plans.size();
      for (size_t k = 0; k < plans.size() && bad == plans.size(); ++k) {
        if (plans[k].dropped) continue;
        bool hit = plans[k].node.id == h.node;
        for (const Node& ref : plans[k].node.reference) hit = hit || ref.id == h.node;
        if (hit) bad = k;
      }
      if (bad == plans.size()) {
        ctx.rejected("recompute_bn_relu: " + h.what);
        return;  // g is unchanged
      }
      ctx.rejected(fmt::format("recomputing {}: {}", value_name(plans[bad].z), h.what));
      drop_with_readers(plans, plan_of, bad);
    }
    for (const Plan& pl : plans)
      if (!pl.dropped)
        ctx.fused(fmt::format("{} recomputed before node {} (node {})", value_name(pl.z),
                              before.nodes[size_t(pl.at)].id, pl.node.id));
  }

 private:
  static constexpr int kMinGap = 8;
  static constexpr size_t kResidualInput = 5;  // of a BatchNormApplyKernel node
  struct Leaves {
    const Node* bn = nullptr;
    const Node* add = nullptr;
    const Node* relu = nullptr;
  };
  struct Plan {
    int z = -1;             // the value recomputed
    int made_at = -1;       // the position of the node that makes it in the forward
    int at = -1;            // the position to recompute it at (before that node)
    std::vector<int> late;  // positions of the readers that take the recomputed value
    int residual = -1;      // the value its add reads besides the batch norm (-1: none)
    bool dropped = false;
    Node node;              // the recomputation
  };

  static void drop_with_readers(std::vector<Plan>& plans, const std::map<int, size_t>& plan_of, size_t k) {
    plans[k].dropped = true;
    for (size_t j = 0; j < plans.size(); ++j)
      if (!plans[j].dropped && plans[j].residual >= 0 && plan_of.count(plans[j].residual) &&
          plan_of.at(plans[j].residual) == k)
        drop_with_readers(plans, plan_of, j);
  }

  // `before` with the recomputations of the kept plans inserted, sources first, and their
  // late readers rewired to them.
  static Graph build(const Graph& before, const std::vector<Plan>& plans) {
    Graph after = before;
    after.nodes.clear();
    std::vector<std::vector<size_t>> insert_at(before.nodes.size());
    std::vector<size_t> order(plans.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return plans[a].made_at < plans[b].made_at; });
    for (size_t k : order)
      if (!plans[k].dropped) insert_at[size_t(plans[k].at)].push_back(k);
    for (size_t p = 0; p < before.nodes.size(); ++p) {
      for (size_t k : insert_at[p]) after.nodes.push_back(plans[k].node);
      Node n = before.nodes[p];
      for (const Plan& pl : plans)
        if (!pl.dropped && std::find(pl.late.begin(), pl.late.end(), int(p)) != pl.late.end())
          rewire(n, pl.z, pl.node.outputs[0]);
      after.nodes.push_back(std::move(n));
    }
    after.rebuild_uses();
    return after;
  }
};

PACER_REGISTER_PASS(RecomputeBnRelu);

}  // namespace

}  // namespace pacer::graph
