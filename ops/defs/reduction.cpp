// Reductions. Primitive: sum, amax, amin, max_dim, min_dim. The rest (mean, var, std,
// logsumexp, norm, argmax, ...) are written with them and need no kernel or backward.
#include <cmath>

#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

// Normalizes "dims" in place and sets the output meta of a reduction.
void infer_reduce(OpCall& c, DType out_dtype) {
  Shape dims = reduction_dims(c.attrs.shape("dims"), c.in(0).dim());
  c.attrs.set("dims", dims);
  c.output_meta = {{reduced_shape(c.in(0).sizes(), dims, c.attrs.b("keepdim")), out_dtype, c.device}};
}

// Gradient of a reduction over `dims` broadcast back to the input's shape.
Tensor expand_back(const Tensor& g, const GradCall& gc) {
  const Shape& in = gc.input_meta[0].sizes;
  const Shape& dims = gc.attrs.shape("dims");
  Tensor r = g;
  if (!gc.attrs.b("keepdim"))
    for (int64_t d : dims) r = unsqueeze(r, d);
  return expand(r, in);
}

// amax/amin backward: the gradient is shared equally by all elements equal to the result.
std::vector<Tensor> extremum_backward(const GradCall& g) {
  const Tensor& x = g.inputs[0];
  Tensor hit = cast(eq(x, expand_back(g.outputs[0], g)), g.grad().dtype());
  Tensor count = sum(hit, g.attrs.shape("dims"), true);
  return {div(mul(hit, expand_back(g.grad(), g)), count)};
}

OpDef reduce_extremum(const char* name) {
  OpDef d;
  d.name = name;
  d.tags = kReduction;
  d.infer = [](OpCall& c) {
    PACER_CHECK(c.in(0).numel() > 0, "expected a non-empty tensor (max/min of nothing is undefined)");
    infer_reduce(c, c.in(0).dtype());
  };
  d.backward = extremum_backward;
  d.save_inputs = 1;
  d.save_outputs = 1;
  d.amp = AmpPolicy::None;  // a max is exact in any dtype
  return d;
}

OpDef reduce_dim_with_index(const char* name) {
  OpDef d;
  d.name = name;
  d.tags = kReduction;
  d.infer = [](OpCall& c) {
    const Tensor& x = c.in(0);
    int64_t dim = wrap_dim(c.attrs.i("dim"), x.dim());
    PACER_CHECK(x.dim() == 0 || x.size(dim) > 0, "expected a non-empty dimension {}, got shape {}", dim, x.sizes());
    c.attrs.set("dim", x.dim() == 0 ? int64_t(0) : dim);
    Shape s = x.dim() == 0 ? Shape{} : reduced_shape(x.sizes(), {dim}, c.attrs.b("keepdim"));
    c.output_meta = {{s, x.dtype(), c.device}, {s, DType::I64, c.device}};
  };
  // The gradient goes to the chosen position only.
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const int64_t dim = g.attrs.i("dim");
    const Shape& in = g.input_meta[0].sizes;
    if (in.empty()) return {g.grad()};
    Tensor gv = g.grad(), idx = g.outputs[1];
    if (!g.attrs.b("keepdim")) {
      gv = unsqueeze(gv, dim);
      idx = unsqueeze(idx, dim);
    }
    return {scatter(zeros(in, {.dtype = gv.dtype(), .device = gv.device()}), dim, idx, gv)};
  };
  d.save_outputs = 0b10;
  return d;
}

}  // namespace

PACER_OP(sum) {
  OpDef d;
  d.name = "sum";
  d.tags = kReduction;
  d.amp = AmpPolicy::Fp32;
  d.infer = [](OpCall& c) {
    DType in = c.in(0).dtype();
    DType out = c.attrs.has("dtype") ? c.attrs.dtype("dtype") : (is_floating(in) ? in : DType::I64);
    infer_reduce(c, out);
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> { return {expand_back(g.grad(), g)}; };
  return d;
}
PACER_OP(amax) { return reduce_extremum("amax"); }
PACER_OP(amin) { return reduce_extremum("amin"); }
PACER_OP(max_dim) { return reduce_dim_with_index("max_dim"); }
PACER_OP(min_dim) { return reduce_dim_with_index("min_dim"); }

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

namespace {
Attrs reduce_attrs(const DimList& dims, bool keepdim) { return {{"dims", dims}, {"keepdim", keepdim}}; }

int64_t count_over(const Tensor& x, const DimList& dims) {
  int64_t n = 1;
  for (int64_t d : reduction_dims(dims, x.dim())) n *= x.dim() == 0 ? 1 : x.size(d);
  return n;
}
}  // namespace

Tensor sum(const Tensor& x, const DimList& dims, bool keepdim, std::optional<DType> dtype) {
  Attrs a = reduce_attrs(dims, keepdim);
  if (dtype) a.set("dtype", *dtype);
  return call1(op_sum(), {x}, a);
}

Tensor mean(const Tensor& x, const DimList& dims, bool keepdim) {
  PACER_CHECK(is_floating(x.dtype()), "mean: expected a floating tensor, got {}; cast it first", x.dtype());
  return div(sum(x, dims, keepdim), wrap(double(count_over(x, dims))));
}

Tensor max(const Tensor& x) { return call1(op_amax(), {x}, reduce_attrs({}, false)); }
Tensor min(const Tensor& x) { return call1(op_amin(), {x}, reduce_attrs({}, false)); }

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  auto r = call(op_max_dim(), {x}, {{"dim", dim}, {"keepdim", keepdim}});
  return {r[0], r[1]};
}
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  auto r = call(op_min_dim(), {x}, {{"dim", dim}, {"keepdim", keepdim}});
  return {r[0], r[1]};
}
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) { return max(detach(x), dim, keepdim).second; }
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) { return min(detach(x), dim, keepdim).second; }

Tensor var(const Tensor& x, const DimList& dims, int64_t correction, bool keepdim) {
  PACER_CHECK(is_floating(x.dtype()), "var: expected a floating tensor, got {}", x.dtype());
  const int64_t n = count_over(x, dims);
  Tensor centered = x - mean(x, dims, true);
  const double denom = double(std::max<int64_t>(n - correction, 0));
  return div(sum(centered * centered, dims, keepdim), wrap(denom));
}

Tensor std(const Tensor& x, const DimList& dims, int64_t correction, bool keepdim) {
  return sqrt(var(x, dims, correction, keepdim));
}

// Shifted by the (detached) maximum so that exp() cannot overflow; the shift cancels in
// the gradient, so detaching it is exact.
Tensor logsumexp(const Tensor& x, const DimList& dims, bool keepdim) {
  PACER_CHECK(is_floating(x.dtype()), "logsumexp: expected a floating tensor, got {}", x.dtype());
  Tensor m = call1(op_amax(), {detach(x)}, reduce_attrs(dims, true));
  m = where(eq(abs(m), full_like(m, INFINITY)), zeros_like(m), m);  // all -inf rows
  Tensor out = log(sum(exp(x - m), dims, true)) + m;
  if (!keepdim) out = sum(out, dims, false);  // drops the kept size-1 dims
  return out;
}

Tensor norm(const Tensor& x, double p, const DimList& dims, bool keepdim) {
  PACER_CHECK(is_floating(x.dtype()), "norm: expected a floating tensor, got {}", x.dtype());
  if (p == 2.0) return sqrt(sum(x * x, dims, keepdim));
  if (p == 1.0) return sum(abs(x), dims, keepdim);
  if (std::isinf(p) && p > 0) return call1(op_amax(), {abs(x)}, reduce_attrs(dims, keepdim));
  PACER_CHECK(p > 0, "norm: expected p > 0, got {}", p);
  return pow(sum(pow(abs(x), Scalar(p)), dims, keepdim), Scalar(1.0 / p));
}

}  // namespace pacer
