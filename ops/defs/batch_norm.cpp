// Training-mode batch normalization as one primitive (statistics and normalization in two
// passes over x; the gradient in two more), instead of the ~10 elementwise and reduction
// ops the composite formula takes. batch_norm() in ops/defs/pool.cpp calls it.
#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

// Statistics are f64 for f64 inputs and f32 otherwise (half inputs keep f32 statistics).
DType stats_dtype(DType x) { return x == DType::F64 ? DType::F64 : DType::F32; }

// The affine parameters' dtype: a float32 weight beside half data stays float32 (mixed
// precision: f32 parameters, as cuDNN's batch norm and NVIDIA's MLPerf code keep them, and
// no cast of them each step); otherwise the data's dtype.
DType param_dtype(const OpCall& c) {
  const DType x = c.in(0).dtype();
  const bool f32_weight = c.inputs.size() > 1 && c.in(1).defined() && c.in(1).dtype() == DType::F32;
  return (x == DType::F16 || x == DType::BF16) && f32_weight ? DType::F32 : x;
}

}  // namespace

// Inputs: x [N, C, ...], weight [C] or undefined (1), bias [C] or undefined (0).
// Outputs: y, batch mean [C], inverse standard deviation 1 / sqrt(biased var + eps) [C].
PACER_OP(batch_norm_train) {
  OpDef d;
  d.name = "batch_norm_train";
  d.tags = kReduction;
  // Half inputs stay half: the statistics are f32 already (stats_dtype), as in NVIDIA's
  // MLPerf BN (f16 data, f32 statistics); a cast to f32 would only add traffic.
  d.amp = AmpPolicy::None;
  d.infer = [](OpCall& c) {
    const Tensor& x = c.in(0);
    check_floating(x, "input");
    PACER_CHECK(x.dim() >= 2, "expected an input [N, C, ...], got shape {}", x.sizes());
    const int64_t C = x.size(1);
    PACER_CHECK(x.numel() / std::max<int64_t>(C, 1) > 1,
                "training needs more than one value per channel, got input shape {}", x.sizes());
    const DType p = param_dtype(c);
    for (size_t i = 1; i < 3; ++i) {
      if (i >= c.inputs.size() || !c.in(i).defined()) continue;
      PACER_CHECK(c.in(i).dim() == 1 && c.in(i).size(0) == C, "expected {} of shape [{}], got {}",
                  i == 1 ? "weight" : "bias", C, c.in(i).sizes());
      cast_inputs(c, p, i, 1);
    }
    const DType s = stats_dtype(x.dtype());
    // y keeps a channels-last input's layout on CUDA (suggested_strides), as in PyTorch.
    c.output_meta = {{x.sizes(), x.dtype(), c.device, suggested_strides(c, x.sizes())},
                     {{C}, s, c.device},
                     {{C}, s, c.device}};
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    std::vector<Tensor> in = {g.grad(0), g.inputs[0], g.inputs.size() > 1 ? g.inputs[1] : Tensor(), g.outputs[1],
                              g.outputs[2]};
    auto r = call(find_op("batch_norm_train_backward"), std::move(in));
    std::vector<Tensor> out(g.input_meta.size());
    out[0] = r[0];
    if (out.size() > 1 && g.needs(1)) out[1] = r[1];
    if (out.size() > 2 && g.needs(2)) out[2] = r[2];
    return out;
  };
  d.save_inputs = 0b011;
  d.save_outputs = 0b110;
  return d;
}

// (dy, x, weight or undefined, mean, invstd) -> (dx, dweight, dbias). First derivatives only.
PACER_OP(batch_norm_train_backward) {
  OpDef d;
  d.name = "batch_norm_train_backward";
  d.tags = kReduction;
  d.infer = [](OpCall& c) {
    const Tensor& x = c.in(1);
    const int64_t C = x.size(1);
    // The parameter gradients in the weight's dtype (float32 beside half data, see above).
    const DType p = c.in(2).defined() ? c.in(2).dtype() : x.dtype();
    PACER_CHECK(p == x.dtype() || (p == DType::F32 && (x.dtype() == DType::F16 || x.dtype() == DType::BF16)),
                "expected the weight as {} (or float32 beside half data), got {}", x.dtype(), p);
    c.output_meta = {{x.sizes(), x.dtype(), c.device, suggested_strides(c, x.sizes())},
                     {{C}, p, c.device},
                     {{C}, p, c.device}};
  };
  d.not_differentiable = true;
  return d;
}

}  // namespace pacer::ops
