// Copies and in-place updates: clone, contiguous, copy_, fill_, zero_, add_, mul_.
#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

// In-place ops keep self's shape and dtype; `other` must broadcast to self and its dtype
// must be castable (no float into an integer tensor), as PyTorch's in-place rule says.
void infer_inplace_binary(OpCall& c) {
  const Tensor& self = c.in(0);
  Shape s = broadcast_shapes(self.sizes(), c.in(1).sizes());
  PACER_CHECK(s == self.sizes(), "the other operand of shape {} does not broadcast to self's shape {}",
              c.in(1).sizes(), self.sizes());
  DType r = result_type(c.inputs);
  PACER_CHECK(!(is_floating(r) && !is_floating(self.dtype())),
              "result type {} cannot be written into a {} tensor in place", r, self.dtype());
  cast_inputs(c, self.dtype(), 1, 1);
  c.output_meta = {{self.sizes(), self.dtype(), self.device()}};
}

}  // namespace

PACER_OP(clone) {
  OpDef d;
  d.name = "clone";
  d.tags = kPointwise;
  // Always contiguous: contiguous() is clone() of a non-contiguous tensor.
  d.infer = [](OpCall& c) { same_shape_output(c, c.in(0).dtype(), false); };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> { return {g.grad()}; };
  return d;
}

PACER_OP(copy_) {
  OpDef d;
  d.name = "copy_";
  d.tags = kInplace | kPointwise | kCrossDevice;
  d.infer = [](OpCall& c) {
    Shape s = broadcast_shapes(c.in(0).sizes(), c.in(1).sizes());
    PACER_CHECK(s == c.in(0).sizes(), "source of shape {} does not broadcast to destination shape {}",
                c.in(1).sizes(), c.in(0).sizes());
    // The copy runs where the destination lives (the dispatcher would pick the source's
    // device for a 0-dim CPU destination); the source moves there.
    c.device = c.in(0).device();
    cast_inputs(c, c.in(0).dtype(), 1, 1);
    c.output_meta = {{c.in(0).sizes(), c.in(0).dtype(), c.in(0).device()}};
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    return {Tensor(), g.needs(1) ? sum_to(g.grad(), g.input_meta[1].sizes) : Tensor()};
  };
  return d;
}

PACER_OP(fill_) {
  OpDef d;
  d.name = "fill_";
  d.tags = kInplace | kPointwise;
  d.infer = [](OpCall& c) { c.output_meta = {{c.in(0).sizes(), c.in(0).dtype(), c.in(0).device()}}; };
  d.backward = [](const GradCall&) -> std::vector<Tensor> { return {Tensor()}; };
  return d;
}

PACER_OP(add_) {
  OpDef d;
  d.name = "add_";
  d.tags = kInplace | kPointwise;
  d.infer = infer_inplace_binary;
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const double alpha = g.attrs.scalar("alpha").to_double();
    return {g.grad(), g.needs(1) ? sum_to(alpha == 1.0 ? g.grad() : g.grad() * alpha, g.input_meta[1].sizes) : Tensor()};
  };
  return d;
}

// A copy of x on another device (Tensor::to(Device)). The kernel runs on the CUDA side of
// the copy (both are CUDA for a copy between GPUs), so a CPU-only build has no kernel and
// Tensor::to refuses first with a clear message.
PACER_OP(to_device) {
  OpDef d;
  d.name = "to_device";
  d.tags = kCrossDevice;
  d.infer = [](OpCall& c) {
    const Tensor& x = c.in(0);
    const Device target(c.attrs.str("device"));
    c.output_meta = {{x.sizes(), x.dtype(), target}};
    c.device = x.device().is_cuda() ? x.device() : target;
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> { return {g.grad().to(g.input_meta[0].device)}; };
  return d;
}

PACER_OP(mul_) {
  OpDef d;
  d.name = "mul_";
  d.tags = kInplace | kPointwise;
  d.infer = infer_inplace_binary;
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    PACER_CHECK(!g.needs(1),
                "mul_: the gradient for `other` needs self before the in-place update; use mul() instead");
    return {g.grad() * g.inputs[1], Tensor()};
  };
  d.save_inputs = 0b10;
  return d;
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

Tensor clone(const Tensor& x) { return call1(op_clone(), {x}); }
Tensor contiguous(const Tensor& x) { return x.is_contiguous() ? x : clone(x); }
Tensor detach(const Tensor& x) { return make_view(x, x.sizes(), x.strides(), x.storage_offset()); }

Tensor& copy_(Tensor& x, const Tensor& src) {
  call(op_copy_(), {x, src});
  return x;
}
Tensor& fill_(Tensor& x, Scalar value) {
  call(op_fill_(), {x}, {{"value", value}});
  return x;
}
Tensor& zero_(Tensor& x) { return fill_(x, 0); }
Tensor& add_(Tensor& x, const Tensor& other, Scalar alpha) {
  call(op_add_(), {x, other}, {{"alpha", alpha}});
  return x;
}
Tensor& mul_(Tensor& x, const Tensor& other) {
  call(op_mul_(), {x, other});
  return x;
}

}  // namespace pacer
