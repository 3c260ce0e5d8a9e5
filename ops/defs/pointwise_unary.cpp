// Pointwise unary ops. Scalar math: ops/common/pointwise_math.h; CPU kernels:
// ops/cpu/pointwise.cpp. Backward rules use public ops, so they are differentiable too.
#include "core/cuda/runtime.h"
#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

// Float ops (exp, log, ...) turn integer inputs into float32, as PyTorch does.
void infer_float_unary(OpCall& c) {
  DType t = is_floating(c.in(0).dtype()) ? c.in(0).dtype() : DType::F32;
  cast_inputs(c, t);
  same_shape_output(c, t);
}

// Sign-preserving ops keep the dtype; bool has no arithmetic.
void infer_numeric_unary(OpCall& c) {
  PACER_CHECK(c.in(0).dtype() != DType::Bool, "expected a numeric tensor, got bool");
  same_shape_output(c, c.in(0).dtype());
}

OpDef unary(const char* name, InferFn infer, BackwardFn bw, uint32_t save_in, uint32_t save_out) {
  OpDef d;
  d.name = name;
  d.tags = kPointwise;
  d.infer = infer;
  d.backward = bw;
  d.save_inputs = save_in;
  d.save_outputs = save_out;
  return d;
}

// The derivative op of a unary pointwise op, (gradient, a saved input or output) -> input
// gradient in one pass; the saved tensor has the gradient's shape.
OpDef unary_backward(const char* name) {
  OpDef d;
  d.name = name;
  d.tags = kPointwise;
  d.infer = [](OpCall& c) {
    check_floating(c.in(0), "gradient");
    PACER_CHECK(c.in(0).sizes() == c.in(1).sizes(), "expected the gradient and the saved tensor to have one shape, got {} and {}",
                c.in(0).sizes(), c.in(1).sizes());
    cast_inputs(c, c.in(0).dtype());
    same_shape_output(c, c.in(0).dtype());
  };
  return d;
}

Tensor mask_like(const Tensor& mask, const Tensor& like) { return cast(mask, like.dtype()); }

}  // namespace

PACER_OP(neg) {
  return unary("neg", infer_numeric_unary, [](const GradCall& g) -> std::vector<Tensor> { return {neg(g.grad())}; },
               0, 0);
}
PACER_OP(exp) {
  return unary("exp", infer_float_unary,
               [](const GradCall& g) -> std::vector<Tensor> { return {mul(g.grad(), g.outputs[0])}; }, 0, 1);
}
PACER_OP(log) {
  return unary("log", infer_float_unary,
               [](const GradCall& g) -> std::vector<Tensor> { return {div(g.grad(), g.inputs[0])}; }, 1, 0);
}
PACER_OP(sqrt) {
  return unary("sqrt", infer_float_unary,
               [](const GradCall& g) -> std::vector<Tensor> { return {div(g.grad(), g.outputs[0] * 2.0)}; }, 0, 1);
}
PACER_OP(rsqrt) {
  return unary("rsqrt", infer_float_unary, [](const GradCall& g) -> std::vector<Tensor> {
    const Tensor& y = g.outputs[0];
    return {g.grad() * (y * y * y) * -0.5};
  }, 0, 1);
}
PACER_OP(abs) {
  return unary("abs", infer_numeric_unary,
               [](const GradCall& g) -> std::vector<Tensor> { return {mul(g.grad(), sign(g.inputs[0]))}; }, 1, 0);
}
PACER_OP(sign) {
  return unary("sign", infer_numeric_unary,
               [](const GradCall& g) -> std::vector<Tensor> { return {zeros_like(g.grad())}; }, 0, 0);
}
// relu's derivative is its own pointwise op (PyTorch's threshold_backward): one pass
// instead of compare, convert and multiply.
PACER_OP(relu) {
  return unary("relu", infer_numeric_unary, [](const GradCall& g) -> std::vector<Tensor> {
    return {call1(find_op("relu_backward"), {g.grad(), g.outputs[0]})};
  }, 0, 1);
}
// relu_backward(g, y) = 0 where y <= 0, else g (PyTorch's threshold_backward: a NaN gradient
// where y <= 0 becomes 0, a NaN y passes g). Linear in g, so its own gradient w.r.t. g is
// itself; y gets none.
PACER_OP(relu_backward) {
  OpDef d = unary_backward("relu_backward");
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    return {call1(find_op("relu_backward"), {g.grad(), g.inputs[1]}), Tensor()};
  };
  d.save_inputs = 2;
  return d;
}
PACER_OP(sigmoid) {
  return unary("sigmoid", infer_float_unary, [](const GradCall& g) -> std::vector<Tensor> {
    const Tensor& y = g.outputs[0];
    return {g.grad() * y * (1.0 - y)};
  }, 0, 1);
}
PACER_OP(tanh) {
  return unary("tanh", infer_float_unary, [](const GradCall& g) -> std::vector<Tensor> {
    const Tensor& y = g.outputs[0];
    return {g.grad() * (1.0 - y * y)};
  }, 0, 1);
}

// gelu's derivative is its own pointwise op so that it is one loop, not five.
PACER_OP(gelu) {
  OpDef d = unary("gelu", infer_float_unary, [](const GradCall& g) -> std::vector<Tensor> {
    return {call1(find_op("gelu_backward"), {g.grad(), g.inputs[0]}, g.attrs)};
  }, 1, 0);
  d.amp = AmpPolicy::None;
  return d;
}
PACER_OP(gelu_backward) {
  OpDef d = unary_backward("gelu_backward");
  d.not_differentiable = true;  // second derivative of gelu: not offered yet
  return d;
}

PACER_OP(clamp) {
  return unary("clamp", infer_numeric_unary, [](const GradCall& g) -> std::vector<Tensor> {
    const Tensor& x = g.inputs[0];
    Tensor keep = ones_like(x).to(DType::Bool);
    if (g.attrs.has("min")) keep = logical_and(keep, x >= wrap(g.attrs.scalar("min")));
    if (g.attrs.has("max")) keep = logical_and(keep, x <= wrap(g.attrs.scalar("max")));
    return {mul(g.grad(), mask_like(keep, g.grad()))};
  }, 1, 0);
}

PACER_OP(logical_not) {
  OpDef d;
  d.name = "logical_not";
  d.tags = kPointwise;
  d.infer = [](OpCall& c) { same_shape_output(c, DType::Bool); };
  d.not_differentiable = true;
  return d;
}

PACER_OP(cast) {
  OpDef d;
  d.name = "cast";
  d.tags = kPointwise;
  d.infer = [](OpCall& c) { same_shape_output(c, c.attrs.dtype("dtype")); };
  // The dispatcher converts the returned gradient to the input's dtype.
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    if (!is_floating(g.input_meta[0].dtype)) return {Tensor()};
    return {g.grad()};
  };
  return d;
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

Tensor neg(const Tensor& x) { return call1(op_neg(), {x}); }
Tensor exp(const Tensor& x) { return call1(op_exp(), {x}); }
Tensor log(const Tensor& x) { return call1(op_log(), {x}); }
Tensor sqrt(const Tensor& x) { return call1(op_sqrt(), {x}); }
Tensor rsqrt(const Tensor& x) { return call1(op_rsqrt(), {x}); }
Tensor abs(const Tensor& x) { return call1(op_abs(), {x}); }
Tensor sign(const Tensor& x) { return call1(op_sign(), {x}); }
Tensor relu(const Tensor& x) { return call1(op_relu(), {x}); }
Tensor sigmoid(const Tensor& x) { return call1(op_sigmoid(), {x}); }
Tensor tanh(const Tensor& x) { return call1(op_tanh(), {x}); }
Tensor logical_not(const Tensor& x) { return call1(op_logical_not(), {x}); }

Tensor gelu(const Tensor& x, const std::string& approximate) {
  PACER_CHECK(approximate == "none" || approximate == "tanh",
              "gelu: approximate must be 'none' or 'tanh', got '{}'", approximate);
  return call1(op_gelu(), {x}, {{"approximate", approximate}});
}

Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max) {
  Attrs a;
  if (min) a.set("min", *min);
  if (max) a.set("max", *max);
  PACER_CHECK(min || max, "clamp: expected at least one of min and max");
  return call1(op_clamp(), {x}, a);
}

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  return call1(op_cast(), {x}, {{"dtype", dtype}});
}

Tensor Tensor::to(DType dtype) const { return cast(*this, dtype); }

Tensor Tensor::to(Device device) const {
  if (this->device() == device) return *this;
  // A clear refusal (no backend / no GPU / bad index) before anything is dispatched.
  for (Device d : {this->device(), device})
    if (d.is_cuda()) cuda::check_device(d.index);
  return ops::call1(ops::find_op("to_device"), {*this}, {{"device", device.str()}});
}

}  // namespace pacer
