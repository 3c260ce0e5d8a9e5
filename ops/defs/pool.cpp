// Pooling and normalization layers of the CNN workloads. max_pool2d and avg_pool2d are
// primitive (ops/cpu/pool.cpp); adaptive_avg_pool2d, batch_norm and dropout decompose into
// other ops, so they are differentiable without kernels of their own.
#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

// Normalizes kernel/stride/padding/dilation attrs and sets the [N, C, OH, OW] output.
Shape infer_pool(OpCall& c) {
  const Tensor& x = c.in(0);
  PACER_CHECK(x.dim() == 4, "expected a 4-d input [N, C, H, W], got shape {}", x.sizes());
  check_floating(x, "input");
  const Shape& k = c.attrs.shape("kernel");
  Shape st = c.attrs.shape("stride");
  if (st.empty()) st = k;
  const Shape& pad = c.attrs.shape("padding");
  const Shape dil = c.attrs.has("dilation") ? c.attrs.shape("dilation") : Shape{1, 1};
  PACER_CHECK(k.size() == 2 && st.size() == 2 && pad.size() == 2 && dil.size() == 2,
              "kernel, stride, padding and dilation take 2 values each");
  PACER_CHECK(k[0] > 0 && k[1] > 0 && st[0] > 0 && st[1] > 0 && dil[0] > 0 && dil[1] > 0,
              "expected positive kernel, stride and dilation, got kernel {} stride {} dilation {}", k, st, dil);
  PACER_CHECK(pad[0] >= 0 && pad[1] >= 0 && pad[0] * 2 <= k[0] && pad[1] * 2 <= k[1],
              "padding {} must be non-negative and at most half the kernel {}", pad, k);
  const int64_t oh = (x.size(2) + 2 * pad[0] - dil[0] * (k[0] - 1) - 1) / st[0] + 1;
  const int64_t ow = (x.size(3) + 2 * pad[1] - dil[1] * (k[1] - 1) - 1) / st[1] + 1;
  PACER_CHECK(oh > 0 && ow > 0, "input {}x{} is smaller than the pooling window {}", x.size(2), x.size(3), k);
  c.attrs.set("stride", st);
  c.attrs.set("dilation", dil);
  return {x.size(0), x.size(1), oh, ow};
}

}  // namespace

PACER_OP(max_pool2d) {
  OpDef d;
  d.name = "max_pool2d";
  d.tags = kReduction;
  d.infer = [](OpCall& c) {
    Shape out = infer_pool(c);
    c.output_meta = {{out, c.in(0).dtype(), c.device}, {out, DType::I64, c.device}};
  };
  // Each output's gradient goes to the input position its index names.
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const Shape& in = g.input_meta[0].sizes;
    const Tensor& gy = g.grad();
    Tensor flat = zeros({in[0], in[1], in[2] * in[3]}, {.dtype = gy.dtype(), .device = gy.device()});
    Tensor idx = reshape(g.outputs[1], {in[0], in[1], -1});
    return {reshape(scatter_add(flat, 2, idx, reshape(gy, {in[0], in[1], -1})), in)};
  };
  d.save_outputs = 0b10;
  return d;
}

PACER_OP(avg_pool2d) {
  OpDef d;
  d.name = "avg_pool2d";
  d.tags = kReduction;
  d.infer = [](OpCall& c) { c.output_meta = {{infer_pool(c), c.in(0).dtype(), c.device}}; };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    Attrs a = g.attrs;
    a.set("input_size", g.input_meta[0].sizes);
    return {call1(find_op("avg_pool2d_backward"), {g.grad()}, a)};
  };
  return d;
}

// Spreads each output gradient evenly over its window (the adjoint of avg_pool2d).
PACER_OP(avg_pool2d_backward) {
  OpDef d;
  d.name = "avg_pool2d_backward";
  d.tags = kReduction;
  d.infer = [](OpCall& c) { c.output_meta = {{c.attrs.shape("input_size"), c.in(0).dtype(), c.device}}; };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    // avg_pool2d_backward is linear in its input; its adjoint is avg_pool2d itself.
    return {avg_pool2d(g.grad(), g.attrs.shape("kernel"), g.attrs.shape("stride"), g.attrs.shape("padding"))};
  };
  return d;
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const Shape& kernel, const Shape& stride,
                                                  const Shape& padding, const Shape& dilation) {
  auto r = call(op_max_pool2d(), {x},
                {{"kernel", kernel}, {"stride", stride}, {"padding", padding}, {"dilation", dilation}});
  return {r[0], r[1]};
}

Tensor max_pool2d(const Tensor& x, const Shape& kernel, const Shape& stride, const Shape& padding, const Shape& dilation) {
  return max_pool2d_with_indices(x, kernel, stride, padding, dilation).first;
}

Tensor avg_pool2d(const Tensor& x, const Shape& kernel, const Shape& stride, const Shape& padding) {
  return call1(op_avg_pool2d(), {x}, {{"kernel", kernel}, {"stride", stride}, {"padding", padding}});
}

// Window i covers [floor(i * H / OH), ceil((i + 1) * H / OH)), as torch's adaptive pooling.
Tensor adaptive_avg_pool2d(const Tensor& x, const Shape& output_size) {
  PACER_CHECK(x.dim() == 4, "adaptive_avg_pool2d: expected a 4-d input [N, C, H, W], got shape {}", x.sizes());
  PACER_CHECK(output_size.size() == 2 && output_size[0] > 0 && output_size[1] > 0,
              "adaptive_avg_pool2d: expected a positive [oh, ow] output size, got {}", output_size);
  const int64_t H = x.size(2), W = x.size(3), OH = output_size[0], OW = output_size[1];
  if (H % OH == 0 && W % OW == 0) return avg_pool2d(x, {H / OH, W / OW});
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < OH; ++i) {
    const int64_t h0 = i * H / OH, h1 = ((i + 1) * H + OH - 1) / OH;
    std::vector<Tensor> cells;
    for (int64_t j = 0; j < OW; ++j) {
      const int64_t w0 = j * W / OW, w1 = ((j + 1) * W + OW - 1) / OW;
      cells.push_back(mean(slice(slice(x, 2, h0, h1), 3, w0, w1), {2, 3}, true));
    }
    rows.push_back(cat(cells, 3));
  }
  return cat(rows, 2);
}

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  PACER_CHECK(x.dim() >= 2, "batch_norm: expected an input [N, C, ...], got shape {}", x.sizes());
  const int64_t C = x.size(1);
  auto check_channel = [&](const Tensor& t, const char* what) {
    PACER_CHECK(!t.defined() || (t.dim() == 1 && t.size(0) == C), "batch_norm: expected {} of shape [{}], got {}", what,
                C, t.defined() ? fmt::format("{}", t.sizes()) : "undefined");
  };
  check_channel(weight, "weight");
  check_channel(bias, "bias");
  check_channel(running_mean, "running_mean");
  check_channel(running_var, "running_var");
  Shape dims = {0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  Shape channel_shape(static_cast<size_t>(x.dim()), 1);
  channel_shape[1] = C;
  Tensor mu, var;
  if (training) {
    const int64_t n = x.numel() / std::max<int64_t>(C, 1);
    auto r = call(find_op("batch_norm_train"), {x, weight, bias}, {{"eps", eps}});
    if (running_mean.defined() && running_var.defined()) {
      NoGradGuard no_grad;
      Tensor rm = running_mean, rv = running_var;
      // The biased variance back from 1 / sqrt(var + eps); the running estimate is unbiased.
      Tensor batch_var = 1.0 / (r[2] * r[2]) - eps;
      mul_(rm, wrap(1.0 - momentum));
      add_(rm, cast(r[1], rm.dtype()), momentum);
      mul_(rv, wrap(1.0 - momentum));
      add_(rv, cast(batch_var, rv.dtype()) * (double(n) / double(std::max<int64_t>(n - 1, 1))), momentum);
    }
    return r[0];
  } else {
    PACER_CHECK(running_mean.defined() && running_var.defined(),
                "batch_norm: evaluation needs running_mean and running_var");
    mu = reshape(running_mean, channel_shape);
    var = reshape(running_var, channel_shape);
  }
  Tensor y = (x - mu) * rsqrt(var + eps);
  if (weight.defined()) y = y * reshape(weight, channel_shape);
  if (bias.defined()) y = y + reshape(bias, channel_shape);
  return y;
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  PACER_CHECK(p >= 0 && p <= 1, "dropout: expected a probability in [0, 1], got {}", p);
  if (!training || p == 0) return x;
  if (p == 1) return x * 0.0;
  Tensor keep = cast(ge(rand(x.sizes(), {.dtype = DType::F32, .device = x.device()}, gen), wrap(p)), x.dtype());
  return x * keep * (1.0 / (1.0 - p));
}

}  // namespace pacer
