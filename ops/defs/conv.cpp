// 2-d convolution (NCHW logical shapes; any input strides, so channels-last inputs work).
// Forward and its two gradients are primitive ops over im2col + GEMM (ops/cpu/conv.cpp).
#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

// On CUDA a convolution's output takes the layout of `like` (channels-last in, channels-last
// out: cuDNN's fast NHWC kernels want every operand NHWC). The CPU kernels write contiguous.
Shape layout_of(const OpCall& c, const Tensor& like, const Shape& sizes) {
  return c.device.is_cuda() && is_channels_last(like) ? channels_last_strides(sizes) : Shape{};
}

int64_t conv_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

// Checks shared by conv2d and conv_transpose2d: 4-d input and weight of one floating
// dtype, and the stride / padding / dilation attributes.
void check_conv_common(const OpCall& c, const char* weight_layout) {
  const Tensor &x = c.in(0), &w = c.in(1);
  const Shape &st = c.attrs.shape("stride"), &pad = c.attrs.shape("padding"), &dil = c.attrs.shape("dilation");
  PACER_CHECK(x.dim() == 4, "expected a 4-d input [N, C, H, W], got shape {}", x.sizes());
  PACER_CHECK(w.dim() == 4, "expected a 4-d weight {}, got shape {}", weight_layout, w.sizes());
  PACER_CHECK(st.size() == 2 && pad.size() == 2 && dil.size() == 2, "stride, padding and dilation take 2 values each");
  PACER_CHECK(st[0] > 0 && st[1] > 0 && dil[0] > 0 && dil[1] > 0 && pad[0] >= 0 && pad[1] >= 0,
              "expected positive stride and dilation and non-negative padding, got stride {} padding {} dilation {}", st,
              pad, dil);
  PACER_CHECK(x.dtype() == w.dtype(), "expected input and weight of one dtype, got {} and {}", x.dtype(), w.dtype());
  check_floating(x, "input");
}

// An optional bias (input 2) must be [channels] of the input's dtype.
void check_conv_bias(const OpCall& c, int64_t channels) {
  if (c.inputs.size() <= 2 || !c.in(2).defined()) return;
  const Tensor& b = c.in(2);
  PACER_CHECK(b.dim() == 1 && b.size(0) == channels && b.dtype() == c.in(0).dtype(),
              "expected a bias of shape [{}] and dtype {}, got {} {}", channels, c.in(0).dtype(), b.sizes(), b.dtype());
}

// Checks x [N, C, H, W] against w [K, C/groups, kh, kw] and the geometry attributes.
void infer_conv(OpCall& c) {
  check_conv_common(c, "[out_channels, in_channels / groups, kh, kw]");
  const Tensor &x = c.in(0), &w = c.in(1);
  const Shape &st = c.attrs.shape("stride"), &pad = c.attrs.shape("padding"), &dil = c.attrs.shape("dilation");
  const int64_t groups = c.attrs.i("groups");
  PACER_CHECK(groups > 0 && x.size(1) % groups == 0 && w.size(0) % groups == 0,
              "groups={} must divide in_channels={} and out_channels={}", groups, x.size(1), w.size(0));
  PACER_CHECK(w.size(1) * groups == x.size(1), "weight of shape {} expects {} input channels, got {} (input shape {})",
              w.sizes(), w.size(1) * groups, x.size(1), x.sizes());
  check_conv_bias(c, w.size(0));
  const int64_t oh = conv_out_size(x.size(2), w.size(2), st[0], pad[0], dil[0]);
  const int64_t ow = conv_out_size(x.size(3), w.size(3), st[1], pad[1], dil[1]);
  PACER_CHECK(oh > 0 && ow > 0, "input {}x{} (padding {}) is smaller than the dilated kernel {}x{}", x.size(2), x.size(3),
              pad, dil[0] * (w.size(2) - 1) + 1, dil[1] * (w.size(3) - 1) + 1);
  const Shape y{x.size(0), w.size(0), oh, ow};
  c.output_meta = {{y, x.dtype(), c.device, layout_of(c, x, y)}};
}

Attrs geometry(const Attrs& a) {
  return {{"stride", a.shape("stride")}, {"padding", a.shape("padding")}, {"dilation", a.shape("dilation")},
          {"groups", a.i("groups")}};
}

}  // namespace

PACER_OP(conv2d) {
  OpDef d;
  d.name = "conv2d";
  d.tags = kLinalg;
  d.amp = AmpPolicy::Lower;
  d.infer = infer_conv;
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const Tensor &x = g.inputs[0], &w = g.inputs[1];
    std::vector<Tensor> r(g.input_meta.size());
    if (g.needs(0)) {
      Attrs a = geometry(g.attrs);
      a.set("input_size", x.sizes());
      r[0] = call1(find_op("conv2d_backward_input"), {g.grad(), w}, a);
    }
    if (g.needs(1)) {
      Attrs a = geometry(g.attrs);
      a.set("weight_size", w.sizes());
      r[1] = call1(find_op("conv2d_backward_weight"), {g.grad(), x}, a);
    }
    if (r.size() > 2 && g.needs(2)) r[2] = sum(g.grad(), {0, 2, 3});
    return r;
  };
  d.save_inputs = 0b11;
  return d;
}

// dL/dx from dL/dy and w (col2im of w^T @ dy). Second derivatives are not offered yet.
PACER_OP(conv2d_backward_input) {
  OpDef d;
  d.name = "conv2d_backward_input";
  d.tags = kLinalg;
  d.infer = [](OpCall& c) {
    const Shape dx = c.attrs.shape("input_size");
    c.output_meta = {{dx, c.in(0).dtype(), c.device, layout_of(c, c.in(0), dx)}};
  };
  d.not_differentiable = true;
  return d;
}

// dL/dw from dL/dy and x (dy @ im2col(x)^T, summed over the batch).
PACER_OP(conv2d_backward_weight) {
  OpDef d;
  d.name = "conv2d_backward_weight";
  d.tags = kLinalg;
  // dw takes x's layout (inputs: dy, x): a channels-last step keeps channels-last filters.
  d.infer = [](OpCall& c) {
    const Shape dw = c.attrs.shape("weight_size");
    c.output_meta = {{dw, c.in(0).dtype(), c.device, layout_of(c, c.in(1), dw)}};
  };
  d.not_differentiable = true;
  return d;
}

// The adjoint of conv2d w.r.t. its input: x [N, Cin, H, W], weight [Cin, Cout / groups, kh, kw]
// (PyTorch's layout) gives [N, Cout, OH, OW] with OH = (H - 1) * stride - 2 * padding +
// dilation * (kh - 1) + output_padding + 1. Its gradients are conv2d (input) and
// conv2d_backward_weight with the roles of input and output exchanged (weight).
PACER_OP(conv_transpose2d) {
  OpDef d;
  d.name = "conv_transpose2d";
  d.tags = kLinalg;
  d.amp = AmpPolicy::Lower;
  d.infer = [](OpCall& c) {
    const Tensor &x = c.in(0), &w = c.in(1);
    const Shape &st = c.attrs.shape("stride"), &pad = c.attrs.shape("padding"), &dil = c.attrs.shape("dilation"),
                &opad = c.attrs.shape("output_padding");
    const int64_t groups = c.attrs.i("groups");
    check_conv_common(c, "[in_channels, out_channels / groups, kh, kw]");
    PACER_CHECK(opad.size() == 2, "output_padding takes 2 values, got {}", opad);
    PACER_CHECK(opad[0] >= 0 && opad[1] >= 0 && (opad[0] < st[0] || opad[0] < dil[0]) &&
                    (opad[1] < st[1] || opad[1] < dil[1]),
                "output_padding {} must be smaller than stride {} or dilation {}", opad, st, dil);
    PACER_CHECK(w.size(0) == x.size(1), "weight of shape {} expects {} input channels, got {} (input shape {})",
                w.sizes(), w.size(0), x.size(1), x.sizes());
    PACER_CHECK(groups > 0 && x.size(1) % groups == 0, "groups={} must divide in_channels={}", groups, x.size(1));
    const int64_t cout = w.size(1) * groups;
    check_conv_bias(c, cout);
    const int64_t oh = (x.size(2) - 1) * st[0] - 2 * pad[0] + dil[0] * (w.size(2) - 1) + opad[0] + 1;
    const int64_t ow = (x.size(3) - 1) * st[1] - 2 * pad[1] + dil[1] * (w.size(3) - 1) + opad[1] + 1;
    PACER_CHECK(oh > 0 && ow > 0, "the output would be {}x{}: padding {} is too large", oh, ow, pad);
    const Shape y{x.size(0), cout, oh, ow};
    c.output_meta = {{y, x.dtype(), c.device, layout_of(c, x, y)}};
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const Tensor &x = g.inputs[0], &w = g.inputs[1];
    std::vector<Tensor> r(g.input_meta.size());
    Attrs a = geometry(g.attrs);
    if (g.needs(0)) {
      // With output_padding >= stride (allowed below the dilation) the forward conv of the
      // gradient has floor(opad / stride) surplus rows / columns at the end: x never saw them.
      r[0] = call1(op_conv2d(), {g.grad(), w}, a);
      if (r[0].size(2) != x.size(2)) r[0] = narrow(r[0], 2, 0, x.size(2));
      if (r[0].size(3) != x.size(3)) r[0] = narrow(r[0], 3, 0, x.size(3));
    }
    if (g.needs(1)) {
      a.set("weight_size", w.sizes());
      r[1] = call1(find_op("conv2d_backward_weight"), {x, g.grad()}, a);
    }
    if (r.size() > 2 && g.needs(2)) r[2] = sum(g.grad(), {0, 2, 3});
    return r;
  };
  d.save_inputs = 0b11;
  return d;
}

}  // namespace pacer::ops

namespace pacer {

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Shape& stride,
                        const Shape& padding, const Shape& output_padding, const Shape& dilation, int64_t groups) {
  std::vector<Tensor> in = {x, weight};
  if (bias.defined()) in.push_back(bias);
  return ops::call1(ops::op_conv_transpose2d(), std::move(in),
                    {{"stride", stride}, {"padding", padding}, {"output_padding", output_padding},
                     {"dilation", dilation}, {"groups", groups}});
}
using namespace ops;

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Shape& stride, const Shape& padding,
              const Shape& dilation, int64_t groups) {
  std::vector<Tensor> in = {x, weight};
  if (bias.defined()) in.push_back(bias);
  return call1(op_conv2d(), std::move(in),
               {{"stride", stride}, {"padding", padding}, {"dilation", dilation}, {"groups", groups}});
}

}  // namespace pacer
