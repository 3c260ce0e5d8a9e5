// Joining, splitting, indexing and padding. Primitive: cat, index_select, gather,
// scatter, scatter_add, pad, one_hot; the rest decompose.
#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

void check_index(const Tensor& idx, const char* what) {
  PACER_CHECK(idx.dtype() == DType::I64 || idx.dtype() == DType::I32, "expected an int64 or int32 {}, got {}", what,
              idx.dtype());
}

// gather/scatter: index has the input's rank and, outside `dim`, no larger sizes.
void check_gather_shapes(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor* src) {
  check_index(idx, "index");
  PACER_CHECK(idx.dim() == x.dim(), "index must have as many dims as the input ({}), got shape {}", x.dim(),
              idx.sizes());
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (src) PACER_CHECK(idx.size(d) <= src->size(d), "index shape {} exceeds source shape {} in dim {}",
                         idx.sizes(), src->sizes(), d);
    if (d != dim)
      PACER_CHECK(idx.size(d) <= x.size(d), "index shape {} exceeds input shape {} in dim {}", idx.sizes(),
                  x.sizes(), d);
  }
}

// Pads `t` with zeros at the end of each dim up to `sizes` (the source of a scatter may be
// larger than its index; the elements never read get no gradient).
Tensor grow_to(const Tensor& t, const Shape& sizes) {
  if (t.sizes() == sizes) return t;
  Shape p;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    p.push_back(0);
    p.push_back(sizes[size_t(d)] - t.size(d));
  }
  return pad(t, p);
}

}  // namespace

PACER_OP(cat) {
  OpDef d;
  d.name = "cat";
  d.tags = kShape;
  d.infer = [](OpCall& c) {
    PACER_CHECK(!c.inputs.empty(), "expected at least one tensor");
    const Tensor& first = c.in(0);
    PACER_CHECK(first.dim() > 0, "zero-dimensional tensors cannot be concatenated");
    const int64_t dim = wrap_dim(c.attrs.i("dim"), first.dim());
    c.attrs.set("dim", dim);
    DType t = result_type(c.inputs);
    Shape out = first.sizes();
    out[size_t(dim)] = 0;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      const Tensor& x = c.in(i);
      PACER_CHECK(x.dim() == first.dim(), "tensor {} has {} dims, expected {} like tensor 0", i, x.dim(), first.dim());
      for (int64_t k = 0; k < x.dim(); ++k)
        PACER_CHECK(k == dim || x.size(k) == first.size(k),
                    "sizes must match except in dimension {}: tensor {} has shape {}, tensor 0 has {}", dim, i,
                    x.sizes(), first.sizes());
      out[size_t(dim)] += x.size(dim);
    }
    cast_inputs(c, t);
    c.output_meta = {{out, t, c.device}};
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const int64_t dim = g.attrs.i("dim");
    Shape sizes;
    for (const TensorMeta& m : g.input_meta) sizes.push_back(m.sizes[size_t(dim)]);
    return split_with_sizes(g.grad(), sizes, dim);
  };
  return d;
}

PACER_OP(index_select) {
  OpDef d;
  d.name = "index_select";
  d.tags = kShape;
  d.infer = [](OpCall& c) {
    const Tensor &x = c.in(0), &idx = c.in(1);
    check_index(idx, "index");
    PACER_CHECK(idx.dim() <= 1, "expected a 1-d index, got shape {}", idx.sizes());
    const int64_t dim = wrap_dim(c.attrs.i("dim"), x.dim());
    c.attrs.set("dim", dim);
    Shape out = x.sizes();
    if (x.dim() > 0) out[size_t(dim)] = idx.numel();
    c.output_meta = {{out, x.dtype(), c.device}};
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const int64_t dim = g.attrs.i("dim");
    const Shape& in = g.input_meta[0].sizes;
    if (in.empty()) return {g.grad(), Tensor()};
    Shape view_shape(in.size(), 1);
    view_shape[size_t(dim)] = g.inputs[1].numel();
    Tensor idx = expand(reshape(g.inputs[1], view_shape), g.grad().sizes());
    return {scatter_add(zeros(in, {.dtype = g.grad().dtype(), .device = g.grad().device()}), dim, idx, g.grad()),
            Tensor()};
  };
  d.save_inputs = 0b10;
  return d;
}

PACER_OP(gather) {
  OpDef d;
  d.name = "gather";
  d.tags = kShape;
  d.infer = [](OpCall& c) {
    const Tensor &x = c.in(0), &idx = c.in(1);
    const int64_t dim = wrap_dim(c.attrs.i("dim"), x.dim());
    c.attrs.set("dim", dim);
    check_gather_shapes(x, dim, idx, nullptr);
    c.output_meta = {{idx.sizes(), x.dtype(), c.device}};
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const Tensor& gy = g.grad();
    Tensor z = zeros(g.input_meta[0].sizes, {.dtype = gy.dtype(), .device = gy.device()});
    return {scatter_add(z, g.attrs.i("dim"), g.inputs[1], gy), Tensor()};
  };
  d.save_inputs = 0b10;
  return d;
}

static void infer_scatter(OpCall& c) {
  const Tensor &x = c.in(0), &idx = c.in(1), &src = c.in(2);
  const int64_t dim = wrap_dim(c.attrs.i("dim"), x.dim());
  c.attrs.set("dim", dim);
  PACER_CHECK(src.dim() == x.dim(), "source must have as many dims as the input ({}), got shape {}", x.dim(),
              src.sizes());
  check_gather_shapes(x, dim, idx, &src);
  cast_inputs(c, x.dtype(), 2, 1);
  c.output_meta = {{x.sizes(), x.dtype(), c.device}};
}

PACER_OP(scatter) {
  OpDef d;
  d.name = "scatter";
  d.tags = kShape;
  d.infer = infer_scatter;
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const int64_t dim = g.attrs.i("dim");
    const Tensor& idx = g.inputs[1];
    Tensor gx, gs;
    if (g.needs(0)) gx = scatter(g.grad(), dim, idx, zeros(idx.sizes(), {.dtype = g.grad().dtype(), .device = g.grad().device()}));
    if (g.needs(2)) gs = gather(g.grad(), dim, idx);
    if (gs.defined()) gs = grow_to(gs, g.input_meta[2].sizes);
    return {gx, Tensor(), gs};
  };
  d.save_inputs = 0b10;
  return d;
}

PACER_OP(scatter_add) {
  OpDef d;
  d.name = "scatter_add";
  d.tags = kShape;
  d.infer = infer_scatter;
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    Tensor gs;
    if (g.needs(2)) {
      gs = grow_to(gather(g.grad(), g.attrs.i("dim"), g.inputs[1]), g.input_meta[2].sizes);
    }
    return {g.grad(), Tensor(), gs};
  };
  d.save_inputs = 0b10;
  return d;
}

PACER_OP(pad) {
  OpDef d;
  d.name = "pad";
  d.tags = kShape;
  d.infer = [](OpCall& c) {
    const Tensor& x = c.in(0);
    const Shape& p = c.attrs.shape("pad");
    PACER_CHECK(p.size() % 2 == 0 && int64_t(p.size()) / 2 <= x.dim(),
                "expected (before, after) pairs for at most {} dims, got {}", x.dim(), p);
    Shape out = x.sizes();
    for (size_t i = 0; i < p.size() / 2; ++i) {
      PACER_CHECK(p[2 * i] >= 0 && p[2 * i + 1] >= 0, "expected non-negative padding, got {}", p);
      out[out.size() - 1 - i] += p[2 * i] + p[2 * i + 1];
    }
    c.output_meta = {{out, x.dtype(), c.device}};
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    const Shape& p = g.attrs.shape("pad");
    Tensor r = g.grad();
    for (size_t i = 0; i < p.size() / 2; ++i) {
      const int64_t dim = r.dim() - 1 - int64_t(i);
      r = narrow(r, dim, p[2 * i], g.input_meta[0].sizes[size_t(dim)]);
    }
    return {r};
  };
  return d;
}

PACER_OP(one_hot) {
  OpDef d;
  d.name = "one_hot";
  d.tags = kShape;
  d.infer = [](OpCall& c) {
    check_index(c.in(0), "class index");
    const int64_t n = c.attrs.i("num_classes");
    PACER_CHECK(n > 0, "expected num_classes > 0, got {}", n);
    Shape out = c.in(0).sizes();
    out.push_back(n);
    c.output_meta = {{out, DType::I64, c.device}};
  };
  d.not_differentiable = true;
  return d;
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) { return call1(op_cat(), xs, {{"dim", dim}}); }

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  PACER_CHECK(!xs.empty(), "stack: expected at least one tensor");
  for (size_t i = 1; i < xs.size(); ++i)
    PACER_CHECK(xs[i].sizes() == xs[0].sizes(), "stack: tensor {} has shape {}, expected {} like tensor 0", i,
                xs[i].sizes(), xs[0].sizes());
  std::vector<Tensor> u;
  u.reserve(xs.size());
  for (const Tensor& x : xs) u.push_back(unsqueeze(x, dim));
  return cat(u, dim);
}

std::vector<Tensor> split_with_sizes(const Tensor& x, const Shape& sizes, int64_t dim) {
  PACER_CHECK(x.dim() > 0, "split: cannot split a 0-d tensor");
  int64_t total = 0;
  for (int64_t s : sizes) {
    PACER_CHECK(s >= 0, "split: expected non-negative sizes, got {}", sizes);
    total += s;
  }
  PACER_CHECK(total == x.size(dim), "split: sizes {} add up to {}, but dimension {} has size {}", sizes, total, dim,
              x.size(dim));
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(slice(x, dim, at, at + s));
    at += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  PACER_CHECK(split_size > 0, "split: expected split_size > 0, got {}", split_size);
  PACER_CHECK(x.dim() > 0, "split: cannot split a 0-d tensor");
  Shape sizes;
  for (int64_t at = 0, n = x.size(dim); at < n; at += split_size) sizes.push_back(std::min(split_size, n - at));
  return split_with_sizes(x, sizes, dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  PACER_CHECK(chunks > 0, "chunk: expected chunks > 0, got {}", chunks);
  PACER_CHECK(x.dim() > 0, "chunk: cannot chunk a 0-d tensor");
  const int64_t n = x.size(dim);
  return split(x, std::max<int64_t>(1, (n + chunks - 1) / chunks), dim);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  return call1(op_index_select(), {x, index}, {{"dim", dim}});
}
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  return call1(op_gather(), {x, index}, {{"dim", dim}});
}
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  return call1(op_scatter(), {x, index, src}, {{"dim", dim}});
}
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  return call1(op_scatter_add(), {x, index, src}, {{"dim", dim}});
}
Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value) {
  PACER_CHECK(mask.dtype() == DType::Bool, "masked_fill: expected a bool mask, got {}", mask.dtype());
  return where(mask, scalar_tensor(value, x.dtype()), x);
}
Tensor pad(const Tensor& x, const Shape& p, Scalar value) {
  return call1(op_pad(), {x}, {{"pad", p}, {"value", value}});
}
Tensor one_hot(const Tensor& index, int64_t num_classes) {
  return call1(op_one_hot(), {index}, {{"num_classes", num_classes}});
}

}  // namespace pacer
