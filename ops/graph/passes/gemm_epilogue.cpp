// GEMM epilogue fusion (CPU): the activation after a linear layer, and ReLU's backward with
// the bias gradient after the GEMM that computes the layer's output gradient, run over the
// GEMM's output while it is being finished instead of as separate passes over memory.
// Forward: linear(x, w, b) -> [view] -> relu, each intermediate read only by the next,
// becomes linear_relu: the pre-activation is never stored. Backward: mm(g, w) -> [view] ->
// relu_backward(., y) -> [view] -> sum(dims [0]) (the bias gradient; the masked gradient may
// have other readers, the weight and input gradients' GEMMs) becomes mm_relu_bgrad (the
// view after relu_backward stays, over the fused node's output), which
// masks each row and adds it into the column sums in one sweep: the unmasked gradient is
// never stored and the sum reads nothing again. These are cuBLASLt's RELU_BIAS and
// DRELU_BGRAD epilogues. Also conv2d with a bias -> relu becomes conv_bias_relu, whose ReLU
// runs on each output image in the convolution's epilogue (its backward is left as it is).
// On CUDA (ops/graph/cuda_gemm_epilogue.h): linear_relu as one cuBLASLt matmul with the
// RELU_BIAS epilogue; mm_relu_bgrad as the GEMM into dz and one sweep that masks it in place
// and sums its columns (cuBLASLt's DRELU_BGRAD wants the forward's bit mask, which the graph
// does not keep; the ReLU output is the mask here); relu_bgrad for dense channels-last
// tensors, whose channel sums are column sums. conv_bias_relu stays CPU only.
#include <fmt/format.h>

#include <algorithm>

#include "ops/api.h"
#include "ops/cpu/conv.h"
#include "ops/cpu/gemm_epilogue.h"
#include "ops/graph/alias.h"
#include "ops/graph/cuda_gemm_epilogue.h"
#include "ops/graph/fusion.h"
#include "ops/shape_utils.h"

namespace pacer::graph {

namespace detail {
CudaGemmEpilogue& cuda_gemm_epilogue() {
  static CudaGemmEpilogue hooks;
  return hooks;
}
}  // namespace detail

namespace {

bool cuda_epilogues() { return detail::cuda_gemm_epilogue().linear_relu != nullptr; }

// Whether the fused GEMM kernels run on `d` in this build.
bool runs_on(Device d) { return d.is_cpu() || (d.is_cuda() && cuda_epilogues()); }

void check_device(const std::string& name, Device d) {
  PACER_CHECK(runs_on(d), "{}: this build cannot run it on {}", name, d);
}

// A contiguous tensor seen as [rows, cols] (cols: its last dimension).
Tensor as_matrix(const Tensor& t, int64_t cols) {
  return make_view(t, {t.numel() / cols, cols}, {cols, 1}, t.storage_offset());
}

class LinearReluKernel final : public FusedKernel {
 public:
  std::string name() const override { return "linear_relu"; }
  std::string describe() const override { return "relu(linear(x, w, b))"; }
  // inputs: x [m, k], w [n, k], b [n] (may be undefined); output: relu(x w^T + b), m * n elements.
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    check_device(name(), in[0].device());
    Tensor y = as_matrix(out[0], in[1].size(0));
    if (in[0].device().is_cuda()) detail::cuda_gemm_epilogue().linear_relu(in[0], in[1], in[2], y);
    else ops::cpu::linear_relu_forward(in[0], in[1], in[2], y);
  }
};

// conv2d + bias, then ReLU on each output image right after the convolution writes it
// (conv2d_forward's epilogue hook), while it is in cache.
class ConvBiasReluKernel final : public FusedKernel {
 public:
  explicit ConvBiasReluKernel(ops::Attrs conv) : conv_(std::move(conv)) {}
  std::string name() const override { return "conv_bias_relu"; }
  std::string describe() const override { return fmt::format("relu(conv2d(x, w, b; {}))", conv_.to_string()); }
  // inputs: x, w, b; output: relu(conv2d(x, w, b)).
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    PACER_CHECK(in[0].is_cpu(), "{}: runs on CPU tensors only, got {}", name(), in[0].device());
    Tensor& y = out[0];
    const int64_t per_image = y.numel() / std::max<int64_t>(y.size(0), 1);
    ops::cpu::conv2d_forward(in[0], in[1], in[2], conv_, y, [&](int64_t n0, int64_t nb) {
      Tensor images = make_view(y, {nb * per_image}, {1}, y.storage_offset() + n0 * per_image);
      ops::cpu::relu_in_place(images);
    });
  }

 private:
  ops::Attrs conv_;
};

// ReLU's backward and the bias gradient of the convolution before the ReLU, in one sweep.
class ReluBiasGradKernel final : public FusedKernel {
 public:
  std::string name() const override { return "relu_bgrad"; }
  std::string describe() const override { return "dz = relu_backward(dy, y); db = sum(dz, [0, 2, 3])"; }
  // inputs: dy, y [N, C, H, W]; outputs: dz, db [C].
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    check_device(name(), in[0].device());
    if (in[0].device().is_cuda())
      detail::cuda_gemm_epilogue().relu_bgrad_channels_last(in[0], in[1], out[0], out[1]);
    else
      ops::cpu::relu_backward_channel_sums(contiguous(in[0]), contiguous(in[1]), out[0], out[1]);
  }
};

class MmReluBiasGradKernel final : public FusedKernel {
 public:
  std::string name() const override { return "mm_relu_bgrad"; }
  std::string describe() const override { return "dz = relu_backward(mm(g, w), y); db = sum(dz, [0])"; }
  // inputs: g [m, k], w [k, n], y (the ReLU output, m * n elements); outputs: dz, db [n].
  void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override {
    check_device(name(), in[0].device());
    const int64_t n = in[1].size(1);
    Tensor dz = as_matrix(out[0], n);
    if (in[0].device().is_cuda())
      detail::cuda_gemm_epilogue().mm_relu_bgrad(in[0], in[1], in[2], dz, out[1]);
    else
      ops::cpu::mm_relu_backward_bias_grad(in[0], in[1], as_matrix(contiguous(in[2]), n), dz, out[1]);
  }
};

class GemmEpilogueFusion final : public Pass {
 public:
  std::string name() const override { return "gemm_epilogue"; }
  std::string summary() const override {
    return "fuses ReLU into the linear or biased convolution before it, and ReLU's backward + the bias "
           "gradient into the GEMM before them (CPU; CUDA except the convolution)";
  }

  void run(Graph& g, PassContext& ctx) override {
    const GraphIndex ix(g);
    const std::vector<int>& pos = ix.pos;
    auto kind_at = [&](int p) { return p >= 0 ? g.nodes[size_t(p)].kind() : std::string(); };
    auto meta = [&](int v) -> const ops::TensorMeta& { return g.values[size_t(v)].meta; };
    int next_id = g.next_node_id();
    std::vector<Fusion> fusions;
    for (size_t p = 0; p < g.nodes.size(); ++p) {
      const Node& n = g.nodes[p];
      if (!runs_on(n.device) || !n.op) continue;
      if (n.kind() == "conv2d" && n.device.is_cpu() && n.inputs.size() > 2 && n.inputs[2] >= 0 && is_contiguous(meta(n.outputs[0]))) {
        // conv2d with a bias -> relu.
        const int r = ix.only_reader(n.outputs[0]);
        if (kind_at(r) != "relu") continue;
        const int out = g.nodes[size_t(r)].outputs[0];
        if (!is_contiguous(meta(out)) || meta(out).dtype != meta(n.outputs[0]).dtype) continue;
        Fusion f;
        f.members = {p, size_t(r)};
        f.node.id = next_id++;
        f.node.device = n.device;
        f.node.fused = std::make_shared<ConvBiasReluKernel>(n.attrs);
        f.node.inputs = n.inputs;
        f.node.outputs = {out};
        f.node.reference = {n, g.nodes[size_t(r)]};
        fusions.push_back(std::move(f));
      } else if (n.kind() == "linear" && meta(n.inputs[0]).sizes.size() == 2 && is_floating(meta(n.outputs[0]).dtype)) {
        // linear -> [view] -> relu.
        std::vector<size_t> members = {p};
        int r = ix.only_reader(n.outputs[0]);
        if (kind_at(r) == "view") {
          members.push_back(size_t(r));
          r = ix.only_reader(g.nodes[size_t(r)].outputs[0]);
        }
        if (kind_at(r) != "relu") continue;
        members.push_back(size_t(r));
        const int out = g.nodes[size_t(r)].outputs[0];
        if (!is_contiguous(meta(out)) || meta(out).dtype != meta(n.outputs[0]).dtype) continue;
        Fusion f;
        f.members = members;
        f.node.id = next_id++;
        f.node.device = n.device;
        f.node.fused = std::make_shared<LinearReluKernel>();
        f.node.inputs = {n.inputs[0], n.inputs[1], n.inputs.size() > 2 ? n.inputs[2] : -1};
        f.node.outputs = {out};
        for (size_t m : members) f.node.reference.push_back(g.nodes[m]);
        fusions.push_back(std::move(f));
      } else if (n.kind() == "relu_backward" && meta(n.outputs[0]).sizes.size() == 4) {
        // relu_backward -> sum(dims [0, 2, 3]): a convolution's bias gradient (the masked
        // gradient's other readers, the convolution's backward ops, stay as they are).
        // CPU: contiguous (NCHW); CUDA: dense channels-last, dy and y laid out as dz.
        const ops::TensorMeta& dm = meta(n.outputs[0]);
        const bool same_strides = meta(n.inputs[0]).strides == dm.strides && meta(n.inputs[1]).strides == dm.strides;
        const bool layout = n.device.is_cpu() ? is_contiguous(dm)
                                              : ops::is_dense_channels_last(dm.sizes, dm.strides) && same_strides;
        if (!layout || !is_floating(dm.dtype) || dm.sizes[1] < 2 || meta(n.inputs[0]).sizes != dm.sizes ||
            meta(n.inputs[1]).sizes != dm.sizes || meta(n.inputs[0]).dtype != dm.dtype ||
            meta(n.inputs[1]).dtype != dm.dtype)
          continue;
        int s = -1;
        for (int u : g.values[size_t(n.outputs[0])].uses) {
          const Node& r = g.nodes[size_t(pos[size_t(u)])];
          if (r.kind() == "sum" && r.inputs.size() == 1 && r.attrs.shape("dims") == Shape{0, 2, 3} &&
              !r.attrs.b("keepdim") && meta(r.outputs[0]).dtype == dm.dtype) {
            s = pos[size_t(u)];
            break;
          }
        }
        if (s < 0) continue;
        Fusion f;
        f.members = {p, size_t(s)};
        f.node.id = next_id++;
        f.node.device = n.device;
        f.node.fused = std::make_shared<ReluBiasGradKernel>();
        f.node.inputs = {n.inputs[0], n.inputs[1]};
        f.node.outputs = {n.outputs[0], g.nodes[size_t(s)].outputs[0]};
        f.node.reference = {n, g.nodes[size_t(s)]};
        f.at_first = true;  // dz's other readers come before the sum
        fusions.push_back(std::move(f));
      } else if (n.kind() == "relu_backward") {
        // mm -> [view] -> relu_backward(., y) -> [view] -> sum(dims [0]).
        std::vector<size_t> members;
        int q = ix.producer(n.inputs[0]);
        if (kind_at(q) == "view" && ix.only_reader(g.nodes[size_t(q)].outputs[0]) == int(p)) {
          members.push_back(size_t(q));
          q = ix.producer(g.nodes[size_t(q)].inputs[0]);
        }
        if (kind_at(q) != "mm" || ix.only_reader(g.nodes[size_t(q)].outputs[0]) != (members.empty() ? int(p) : int(members[0])))
          continue;
        const Node& mm = g.nodes[size_t(q)];
        members.insert(members.begin(), size_t(q));
        members.push_back(p);
        // dz is relu_backward's output; the sum reads it or (when dz has no other reader) a
        // 2-d view of it. That view stays a node of its own: the fused node makes dz.
        const int dz = n.outputs[0];
        int summed = dz;
        const int v = ix.only_reader(dz);
        if (kind_at(v) == "view") summed = g.nodes[size_t(v)].outputs[0];
        const ops::TensorMeta& sm = meta(summed);
        const ops::TensorMeta& gm = meta(mm.outputs[0]);
        if (sm.sizes.size() != 2 || sm.sizes != gm.sizes || !is_contiguous(meta(dz)) || sm.sizes[0] < 2 ||
            sm.sizes[1] < 2 || meta(n.inputs[1]).dtype != sm.dtype ||
            shape_numel(meta(n.inputs[1]).sizes) != shape_numel(sm.sizes))
          continue;
        // The bias gradient among the readers.
        int s = -1;
        for (int u : g.values[size_t(summed)].uses) {
          const Node& r = g.nodes[size_t(pos[size_t(u)])];
          if (r.kind() == "sum" && r.inputs.size() == 1 && r.attrs.shape("dims") == Shape{0} && !r.attrs.b("keepdim") &&
              meta(r.outputs[0]).dtype == sm.dtype) {
            s = pos[size_t(u)];
            break;
          }
        }
        if (s < 0) continue;
        members.push_back(size_t(s));
        Fusion f;
        f.members = members;
        f.node.id = next_id++;
        f.node.device = n.device;
        f.node.fused = std::make_shared<MmReluBiasGradKernel>();
        f.node.inputs = {mm.inputs[0], mm.inputs[1], n.inputs[1]};
        f.node.outputs = {dz, g.nodes[size_t(s)].outputs[0]};
        for (size_t m : members) f.node.reference.push_back(g.nodes[m]);
        if (summed != dz) {
          // The reference (PACER_VERIFY_FUSION) sums dz itself over all but its last
          // dimension: the view it read stays outside (the same rows, in the same order).
          Node& ref_sum = f.node.reference.back();
          Shape dims;
          for (int64_t d = 0; d + 1 < int64_t(meta(dz).sizes.size()); ++d) dims.push_back(d);
          ref_sum.inputs = {dz};
          ref_sum.attrs.set("dims", dims);
        }
        f.at_first = true;  // with the GEMM: dz's other readers come before the sum
        fusions.push_back(std::move(f));
      }
    }
    apply_fusions(g, std::move(fusions), ctx);
  }
};

PACER_REGISTER_PASS(GemmEpilogueFusion);

}  // namespace

}  // namespace pacer::graph
