// Pointwise binary and ternary ops with broadcasting and PyTorch type promotion.
// Backward rules reduce the gradient back to each input's shape with sum_to.
#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

// Arithmetic: compute and return the promoted dtype.
void infer_arith(OpCall& c) {
  DType t = result_type(c.inputs);
  PACER_CHECK(t != DType::Bool || c.op.name == "add" || c.op.name == "mul",
              "boolean tensors do not support this arithmetic (got {} and {}); cast them first", c.in(0).dtype(),
              c.in(1).dtype());
  Shape s = broadcast_all(c);
  cast_inputs(c, t);
  c.output_meta = {{s, t, c.device, suggested_strides(c, s)}};
}

// True division and pow with float results: integers promote to float32.
void infer_float_arith(OpCall& c) {
  DType t = result_type(c.inputs);
  if (!is_floating(t)) t = DType::F32;
  Shape s = broadcast_all(c);
  cast_inputs(c, t);
  c.output_meta = {{s, t, c.device, suggested_strides(c, s)}};
}

// Comparisons compute in the promoted dtype and return bool.
void infer_compare(OpCall& c) {
  DType t = result_type(c.inputs);
  Shape s = broadcast_all(c);
  cast_inputs(c, t);
  c.output_meta = {{s, DType::Bool, c.device, suggested_strides(c, s)}};
}

// Logical ops take any dtypes (non-zero = true) and return bool.
void infer_logical(OpCall& c) {
  Shape s = broadcast_all(c);
  cast_inputs(c, DType::Bool);
  c.output_meta = {{s, DType::Bool, c.device, suggested_strides(c, s)}};
}

OpDef binary(const char* name, InferFn infer, BackwardFn bw, uint32_t save_in, uint32_t save_out = 0) {
  OpDef d;
  d.name = name;
  d.tags = kPointwise;
  d.infer = infer;
  d.backward = bw;
  d.save_inputs = save_in;
  d.save_outputs = save_out;
  d.amp = AmpPolicy::Promote;
  return d;
}

OpDef predicate(const char* name, InferFn infer) {
  OpDef d;
  d.name = name;
  d.tags = kPointwise;
  d.infer = infer;
  d.not_differentiable = true;
  d.amp = AmpPolicy::Promote;
  return d;
}

Tensor to_shape(const GradCall& g, const Tensor& grad, size_t i) {
  return g.needs(i) ? sum_to(grad, g.input_meta[i].sizes) : Tensor();
}

}  // namespace

PACER_OP(add) {
  return binary("add", infer_arith, [](const GradCall& g) -> std::vector<Tensor> {
    return {to_shape(g, g.grad(), 0), to_shape(g, g.grad(), 1)};
  }, 0);
}
PACER_OP(sub) {
  return binary("sub", infer_arith, [](const GradCall& g) -> std::vector<Tensor> {
    return {to_shape(g, g.grad(), 0), g.needs(1) ? to_shape(g, neg(g.grad()), 1) : Tensor()};
  }, 0);
}
PACER_OP(mul) {
  return binary("mul", infer_arith, [](const GradCall& g) -> std::vector<Tensor> {
    return {g.needs(0) ? to_shape(g, g.grad() * g.inputs[1], 0) : Tensor(),
            g.needs(1) ? to_shape(g, g.grad() * g.inputs[0], 1) : Tensor()};
  }, 0b11);
}
PACER_OP(div) {
  return binary("div", infer_float_arith, [](const GradCall& g) -> std::vector<Tensor> {
    const Tensor& b = g.inputs[1];
    Tensor ga = g.needs(0) || g.needs(1) ? g.grad() / b : Tensor();
    return {to_shape(g, ga, 0), g.needs(1) ? to_shape(g, -ga * g.outputs[0], 1) : Tensor()};
  }, 0b10, 0b1);
}
PACER_OP(pow) {
  return binary("pow", infer_arith, [](const GradCall& g) -> std::vector<Tensor> {
    const Tensor &a = g.inputs[0], &b = g.inputs[1];
    Tensor ga, gb;
    if (g.needs(0)) ga = to_shape(g, g.grad() * b * pow(a, b - 1.0), 0);
    if (g.needs(1)) {
      // d(a^b)/db = a^b log a; taken as 0 where a == 0 (the limit for b > 0), as PyTorch does.
      Tensor safe_log = where(a == zeros_like(a), zeros_like(a), log(a));
      gb = to_shape(g, g.grad() * g.outputs[0] * safe_log, 1);
    }
    return {ga, gb};
  }, 0b11, 0b1);
}
PACER_OP(pow_scalar) {
  OpDef d;
  d.name = "pow_scalar";
  d.tags = kPointwise;
  d.infer = [](OpCall& c) {
    const Scalar& p = c.attrs.scalar("exponent");
    DType t = c.in(0).dtype();
    PACER_CHECK(t != DType::Bool, "expected a numeric tensor, got bool");
    if (p.is_floating() && !is_floating(t)) t = DType::F32;
    cast_inputs(c, t);
    same_shape_output(c, t);
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    double p = g.attrs.scalar("exponent").to_double();
    if (p == 0.0) return {zeros_like(g.grad())};
    return {g.grad() * pow(g.inputs[0], Scalar(p - 1.0)) * p};
  };
  d.save_inputs = 1;
  return d;
}

// At ties both inputs get half of the gradient (PyTorch's rule for maximum/minimum).
static std::vector<Tensor> extremum_backward(const GradCall& g, bool is_max) {
  const Tensor &a = g.inputs[0], &b = g.inputs[1];
  Tensor wins = is_max ? gt(a, b) : lt(a, b);
  Tensor tie = eq(a, b);
  Tensor wa = cast(wins, g.grad().dtype()) + cast(tie, g.grad().dtype()) * 0.5;
  Tensor ga = g.grad() * wa;
  return {to_shape(g, ga, 0), to_shape(g, g.grad() - ga, 1)};
}
PACER_OP(maximum) {
  return binary("maximum", infer_arith, [](const GradCall& g) { return extremum_backward(g, true); }, 0b11);
}
PACER_OP(minimum) {
  return binary("minimum", infer_arith, [](const GradCall& g) { return extremum_backward(g, false); }, 0b11);
}

PACER_OP(eq) { return predicate("eq", infer_compare); }
PACER_OP(ne) { return predicate("ne", infer_compare); }
PACER_OP(lt) { return predicate("lt", infer_compare); }
PACER_OP(le) { return predicate("le", infer_compare); }
PACER_OP(gt) { return predicate("gt", infer_compare); }
PACER_OP(ge) { return predicate("ge", infer_compare); }
PACER_OP(logical_and) { return predicate("logical_and", infer_logical); }
PACER_OP(logical_or) { return predicate("logical_or", infer_logical); }
PACER_OP(logical_xor) { return predicate("logical_xor", infer_logical); }

PACER_OP(where) {
  OpDef d;
  d.name = "where";
  d.tags = kPointwise;
  d.infer = [](OpCall& c) {
    PACER_CHECK(c.in(0).dtype() == DType::Bool, "expected a bool condition, got {}", c.in(0).dtype());
    DType t = result_type({c.in(1), c.in(2)});
    Shape s = broadcast_all(c);
    cast_inputs(c, t, 1, 2);
    if (c.in(0).device() != c.device) c.inputs[0] = c.in(0).to(c.device);
    c.output_meta = {{s, t, c.device, suggested_strides(c, s)}};
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const Tensor& cond = g.inputs[0];
    Tensor z = zeros_like(g.grad());
    return {Tensor(), g.needs(1) ? to_shape(g, where(cond, g.grad(), z), 1) : Tensor(),
            g.needs(2) ? to_shape(g, where(cond, z, g.grad()), 2) : Tensor()};
  };
  d.save_inputs = 0b1;
  return d;
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

// Wrapped numbers are stored in 64 bits (a double or an int64) so they lose nothing; type
// promotion treats them by category only (result_type), as PyTorch does.
Tensor wrap(Scalar s) {
  const DType storage = s.is_floating() ? DType::F64 : (s.kind() == Scalar::Kind::Bool ? DType::Bool : DType::I64);
  return scalar_tensor(s, storage, true);
}

Tensor add(const Tensor& a, const Tensor& b) { return call1(op_add(), {a, b}); }
Tensor sub(const Tensor& a, const Tensor& b) { return call1(op_sub(), {a, b}); }
Tensor mul(const Tensor& a, const Tensor& b) { return call1(op_mul(), {a, b}); }
Tensor div(const Tensor& a, const Tensor& b) { return call1(op_div(), {a, b}); }
Tensor pow(const Tensor& a, const Tensor& b) { return call1(op_pow(), {a, b}); }
Tensor pow(const Tensor& a, Scalar exponent) { return call1(op_pow_scalar(), {a}, {{"exponent", exponent}}); }
Tensor maximum(const Tensor& a, const Tensor& b) { return call1(op_maximum(), {a, b}); }
Tensor minimum(const Tensor& a, const Tensor& b) { return call1(op_minimum(), {a, b}); }
Tensor eq(const Tensor& a, const Tensor& b) { return call1(op_eq(), {a, b}); }
Tensor ne(const Tensor& a, const Tensor& b) { return call1(op_ne(), {a, b}); }
Tensor lt(const Tensor& a, const Tensor& b) { return call1(op_lt(), {a, b}); }
Tensor le(const Tensor& a, const Tensor& b) { return call1(op_le(), {a, b}); }
Tensor gt(const Tensor& a, const Tensor& b) { return call1(op_gt(), {a, b}); }
Tensor ge(const Tensor& a, const Tensor& b) { return call1(op_ge(), {a, b}); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return call1(op_logical_and(), {a, b}); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return call1(op_logical_or(), {a, b}); }
Tensor logical_xor(const Tensor& a, const Tensor& b) { return call1(op_logical_xor(), {a, b}); }
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) { return call1(op_where(), {cond, a, b}); }

}  // namespace pacer
