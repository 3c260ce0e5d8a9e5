// Matrix products. Primitive: mm, bmm, linear (its own op so that the bias lands in the
// GEMM's C operand, and so that fusion passes see one node). matmul decomposes.
#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

void check_same_dtype(const Tensor& a, const Tensor& b) {
  PACER_CHECK(a.dtype() == b.dtype(), "expected operands of one dtype, got {} and {}", a.dtype(), b.dtype());
}

}  // namespace

PACER_OP(mm) {
  OpDef d;
  d.name = "mm";
  d.tags = kLinalg;
  d.amp = AmpPolicy::Lower;
  d.infer = [](OpCall& c) {
    const Tensor &a = c.in(0), &b = c.in(1);
    PACER_CHECK(a.dim() == 2 && b.dim() == 2, "expected two 2-d tensors, got shapes {} and {}", a.sizes(), b.sizes());
    PACER_CHECK(a.size(1) == b.size(0), "shapes {} and {} cannot be multiplied ({} != {})", a.sizes(), b.sizes(),
                a.size(1), b.size(0));
    check_same_dtype(a, b);
    c.output_meta = {{{a.size(0), b.size(1)}, a.dtype(), c.device}};
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    return {g.needs(0) ? mm(g.grad(), t(g.inputs[1])) : Tensor(), g.needs(1) ? mm(t(g.inputs[0]), g.grad()) : Tensor()};
  };
  d.save_inputs = 0b11;
  return d;
}

PACER_OP(bmm) {
  OpDef d;
  d.name = "bmm";
  d.tags = kLinalg;
  d.amp = AmpPolicy::Lower;
  d.infer = [](OpCall& c) {
    const Tensor &a = c.in(0), &b = c.in(1);
    PACER_CHECK(a.dim() == 3 && b.dim() == 3, "expected two 3-d tensors, got shapes {} and {}", a.sizes(), b.sizes());
    PACER_CHECK(a.size(0) == b.size(0) && a.size(2) == b.size(1), "shapes {} and {} cannot be batch-multiplied",
                a.sizes(), b.sizes());
    check_same_dtype(a, b);
    c.output_meta = {{{a.size(0), a.size(1), b.size(2)}, a.dtype(), c.device}};
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    return {g.needs(0) ? bmm(g.grad(), transpose(g.inputs[1], 1, 2)) : Tensor(),
            g.needs(1) ? bmm(transpose(g.inputs[0], 1, 2), g.grad()) : Tensor()};
  };
  d.save_inputs = 0b11;
  return d;
}

// linear(x [N, in], w [out, in], b [out]) on 2-d x; the API flattens leading dims.
PACER_OP(linear) {
  OpDef d;
  d.name = "linear";
  d.tags = kLinalg;
  d.amp = AmpPolicy::Lower;
  d.infer = [](OpCall& c) {
    const Tensor &x = c.in(0), &w = c.in(1);
    PACER_CHECK(w.dim() == 2, "expected a 2-d weight [out_features, in_features], got shape {}", w.sizes());
    PACER_CHECK(x.dim() == 2 && x.size(1) == w.size(1),
                "input of shape {} does not match weight of shape {} (expected last dim {})", x.sizes(), w.sizes(),
                w.size(1));
    check_same_dtype(x, w);
    if (c.inputs.size() > 2 && c.in(2).defined()) {
      const Tensor& b = c.in(2);
      PACER_CHECK(b.dim() == 1 && b.size(0) == w.size(0), "expected a bias of shape [{}], got {}", w.size(0),
                  b.sizes());
      check_same_dtype(x, b);
    }
    c.output_meta = {{{x.size(0), w.size(0)}, x.dtype(), c.device}};
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const Tensor& gy = g.grad();
    std::vector<Tensor> r(g.input_meta.size());
    if (g.needs(0)) r[0] = mm(gy, g.inputs[1]);
    if (g.needs(1)) r[1] = mm(t(gy), g.inputs[0]);
    if (r.size() > 2 && g.needs(2)) r[2] = sum(gy, {0});
    return r;
  };
  d.save_inputs = 0b11;
  return d;
}

PACER_OP(matmul) {
  OpDef d;
  d.name = "matmul";
  d.tags = kLinalg;
  d.decompose = [](const std::vector<Tensor>& in, const Attrs&) -> std::vector<Tensor> {
    const Tensor &a = in[0], &b = in[1];
    PACER_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: expected tensors of at least 1 dim, got shapes {} and {}",
                a.sizes(), b.sizes());
    if (a.dim() <= 2 && b.dim() <= 2) {
      Tensor a2 = a.dim() == 1 ? unsqueeze(a, 0) : a;
      Tensor b2 = b.dim() == 1 ? unsqueeze(b, 1) : b;
      Tensor r = mm(a2, b2);
      if (b.dim() == 1) r = squeeze(r, 1);
      if (a.dim() == 1) r = squeeze(r, 0);
      return {r};
    }
    if (b.dim() <= 2) {  // [..., m, k] @ [k, n]: one big GEMM
      Tensor b2 = b.dim() == 1 ? unsqueeze(b, 1) : b;
      Shape out = a.sizes();
      out.back() = b2.size(1);
      Tensor r = reshape(mm(reshape(a, {-1, a.size(-1)}), b2), out);
      return {b.dim() == 1 ? squeeze(r, -1) : r};
    }
    // Batched with broadcasting over the leading dims.
    Tensor a3 = a.dim() == 1 ? unsqueeze(a, 0) : a;
    Tensor b3 = b;
    Shape ab(a3.sizes().begin(), a3.sizes().end() - 2), bb(b3.sizes().begin(), b3.sizes().end() - 2);
    Shape batch = broadcast_shapes(ab, bb);
    const int64_t m = a3.size(-2), k = a3.size(-1), n = b3.size(-1);
    Shape ea = batch, eb = batch;
    ea.push_back(m), ea.push_back(k);
    eb.push_back(k), eb.push_back(n);
    Tensor r = bmm(reshape(expand(a3, ea), {-1, m, k}), reshape(expand(b3, eb), {-1, k, n}));
    Shape out = batch;
    out.push_back(m), out.push_back(n);
    r = reshape(r, out);
    return {a.dim() == 1 ? squeeze(r, -2) : r};
  };
  return d;
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

Tensor mm(const Tensor& a, const Tensor& b) { return call1(op_mm(), {a, b}); }
Tensor bmm(const Tensor& a, const Tensor& b) { return call1(op_bmm(), {a, b}); }
Tensor matmul(const Tensor& a, const Tensor& b) { return call1(op_matmul(), {a, b}); }

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  PACER_CHECK(x.dim() >= 1, "linear: expected an input of at least 1 dim, got a scalar");
  std::vector<Tensor> in = {x.dim() == 2 ? x : reshape(x, {-1, x.size(-1)}), weight};
  if (bias.defined()) in.push_back(bias);
  Tensor y = call1(op_linear(), std::move(in));
  if (x.dim() == 2) return y;
  Shape out = x.sizes();
  out.back() = weight.size(0);
  return reshape(y, out);
}

}  // namespace pacer
