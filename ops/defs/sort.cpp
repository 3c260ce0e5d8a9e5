// Sorting and selection. Primitive: sort (values and int64 indices, stable; NaN sorts as
// larger than every number, as torch) and nonzero (a kDynamicShape op: its kernel
// allocates the [n, ndim] output, whose size only the data decides). topk and
// masked_select decompose into them (narrow, index_select), so they need no kernel or
// backward of their own.
#include "ops/defs/common.h"

namespace pacer::ops {

PACER_OP(sort) {
  OpDef d;
  d.name = "sort";
  d.infer = [](OpCall& c) {
    const Tensor& x = c.in(0);
    c.attrs.set("dim", wrap_dim(c.attrs.i("dim"), x.dim()));
    c.output_meta = {{x.sizes(), x.dtype(), c.device}, {x.sizes(), DType::I64, c.device}};
  };
  // Each value's gradient goes back to the position it came from.
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const Shape& in = g.input_meta[0].sizes;
    if (in.empty()) return {g.grad()};
    return {scatter(zeros(in, {.dtype = g.grad().dtype(), .device = g.grad().device()}), g.attrs.i("dim"),
                    g.outputs[1], g.grad())};
  };
  d.save_outputs = 0b10;
  return d;
}

PACER_OP(topk) {
  OpDef d;
  d.name = "topk";
  d.decompose = [](const std::vector<Tensor>& in, const Attrs& a) -> std::vector<Tensor> {
    const Tensor& x = in[0];
    int64_t dim = 0;
    try {
      dim = wrap_dim(a.i("dim"), x.dim());
    } catch (const Error& e) {
      throw Error(fmt::format("topk: {}", e.what()));
    }
    const int64_t n = x.dim() == 0 ? 1 : x.size(dim), k = a.i("k");
    PACER_CHECK(k >= 0 && k <= n, "topk: k={} out of range: expected 0 <= k <= {} (the size of dimension {})", k, n,
                dim);
    auto [v, i] = sort(x, dim, a.b("largest"));
    if (x.dim() == 0) return {v, i};
    return {narrow(v, dim, 0, k), narrow(i, dim, 0, k)};  // sorted either way
  };
  return d;
}

PACER_OP(nonzero) {
  OpDef d;
  d.name = "nonzero";
  d.tags = kDynamicShape;
  d.not_differentiable = true;
  // The number of rows is known only to the kernel, which allocates the output.
  d.infer = [](OpCall& c) { c.output_meta = {{Shape{-1, c.in(0).dim()}, DType::I64, c.device}}; };
  return d;
}

PACER_OP(masked_select) {
  OpDef d;
  d.name = "masked_select";
  d.decompose = [](const std::vector<Tensor>& in, const Attrs&) -> std::vector<Tensor> {
    const Tensor &x = in[0], &mask = in[1];
    PACER_CHECK(x.defined() && mask.defined(), "masked_select: expected an input and a mask");
    PACER_CHECK(mask.dtype() == DType::Bool, "masked_select: expected a bool mask, got {}", mask.dtype());
    Shape s;
    try {
      s = broadcast_shapes(mask.sizes(), x.sizes());
    } catch (const Error& e) {
      throw Error(fmt::format("masked_select: {}", e.what()));
    }
    PACER_CHECK(s == x.sizes(), "masked_select: mask of shape {} cannot be broadcast to the input's shape {}",
                mask.sizes(), x.sizes());
    Tensor pos = reshape(nonzero(reshape(expand(mask, x.sizes()), {-1})), {-1});
    return {index_select(reshape(x, {-1}), 0, pos)};
  };
  return d;
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim, bool descending) {
  auto r = call(op_sort(), {x}, {{"dim", dim}, {"descending", descending}});
  return {r[0], r[1]};
}
Tensor argsort(const Tensor& x, int64_t dim, bool descending) { return sort(detach(x), dim, descending).second; }
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim, bool largest, bool sorted) {
  auto r = call(op_topk(), {x}, {{"k", k}, {"dim", dim}, {"largest", largest}, {"sorted", sorted}});
  return {r[0], r[1]};
}
Tensor nonzero(const Tensor& x) { return call1(op_nonzero(), {x}); }
Tensor masked_select(const Tensor& x, const Tensor& mask) { return call1(op_masked_select(), {x, mask}); }

}  // namespace pacer
