// View ops: outputs share the input's storage (DESIGN §2). Their "kernel" only computes
// geometry, so it is the same on every device.
#include <numeric>

#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

// Strides for viewing `x` with `sizes` without copying, or nullopt when impossible
// (the same rule as PyTorch's computeStride: each new dim must lie within one chunk of
// old dims that are laid out contiguously relative to each other).
std::optional<Shape> view_strides(const Tensor& x, const Shape& sizes) {
  Shape out(sizes.size());
  if (x.numel() == 0) return contiguous_strides(sizes);
  const Shape &os = x.sizes(), &ost = x.strides();
  int64_t view_d = int64_t(sizes.size()) - 1;
  int64_t chunk_base_stride = ost.empty() ? 1 : ost.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = int64_t(os.size()) - 1; d >= 0; --d) {
    tensor_numel *= os[size_t(d)];
    if (d == 0 || (os[size_t(d - 1)] != 1 && ost[size_t(d - 1)] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || sizes[size_t(view_d)] == 1)) {
        out[size_t(view_d)] = view_numel * chunk_base_stride;
        view_numel *= sizes[size_t(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = ost[size_t(d - 1)];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) {
    for (; view_d >= 0; --view_d) out[size_t(view_d)] = 1;  // trailing size-1 dims of a scalar
  }
  return out;
}

Shape infer_size(const Shape& sizes, int64_t numel) {
  Shape out = sizes;
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == -1) {
      PACER_CHECK(infer_at < 0, "only one dimension can be -1, got {}", sizes);
      infer_at = int64_t(i);
    } else {
      PACER_CHECK(sizes[i] >= 0, "invalid size {} in {}", sizes[i], sizes);
      known *= sizes[i];
    }
  }
  if (infer_at >= 0) {
    PACER_CHECK(known != 0 && numel % known == 0, "shape {} is invalid for {} elements", sizes, numel);
    out[size_t(infer_at)] = numel / known;
  } else {
    PACER_CHECK(known == numel, "shape {} is invalid for {} elements", sizes, numel);
  }
  return out;
}

OpDef view_op(const char* name, InferFn infer, KernelFn kernel, BackwardFn bw) {
  OpDef d;
  d.name = name;
  d.tags = kView | kShape;
  d.infer = infer;
  d.kernels[int(DeviceType::CPU)] = kernel;
  d.kernels[int(DeviceType::CUDA)] = kernel;
  d.backward = bw;
  return d;
}

void set_view(OpCall& c, Shape sizes, Shape strides, int64_t offset) {
  Tensor v = make_view(c.in(0), std::move(sizes), std::move(strides), offset);
  const TensorImpl* in = c.in(0).impl();
  v.impl()->view_base = in->view_base ? in->view_base : IntrusivePtr<TensorImpl>(c.in(0).impl());
  c.outputs = {std::move(v)};
}

void no_infer(OpCall&) {}

}  // namespace

PACER_OP(view) {
  return view_op(
      "view",
      [](OpCall& c) {
        Shape s = infer_size(c.attrs.shape("size"), c.in(0).numel());
        PACER_CHECK(view_strides(c.in(0), s).has_value(),
                    "cannot view a tensor of shape {} and strides {} as {}; use reshape() (it copies)",
                    c.in(0).sizes(), c.in(0).strides(), s);
        c.attrs.set("size", s);
      },
      [](OpCall& c) {
        const Shape& s = c.attrs.shape("size");
        set_view(c, s, *view_strides(c.in(0), s), c.in(0).storage_offset());
      },
      [](const GradCall& g) -> std::vector<Tensor> { return {reshape(g.grad(), g.input_meta[0].sizes)}; });
}

PACER_OP(permute) {
  return view_op(
      "permute",
      [](OpCall& c) {
        const Shape& dims = c.attrs.shape("dims");
        const int64_t n = c.in(0).dim();
        PACER_CHECK(int64_t(dims.size()) == n, "expected {} dims for a {}-d tensor, got {}", n, n, dims);
        Shape w;
        std::vector<bool> seen(size_t(n), false);
        for (int64_t d : dims) {
          int64_t k = wrap_dim(d, n);
          PACER_CHECK(!seen[size_t(k)], "dims {} repeat dimension {}", dims, k);
          seen[size_t(k)] = true;
          w.push_back(k);
        }
        c.attrs.set("dims", w);
      },
      [](OpCall& c) {
        const Tensor& x = c.in(0);
        Shape s, st;
        for (int64_t d : c.attrs.shape("dims")) {
          s.push_back(x.sizes()[size_t(d)]);
          st.push_back(x.strides()[size_t(d)]);
        }
        set_view(c, s, st, x.storage_offset());
      },
      [](const GradCall& g) -> std::vector<Tensor> {
        const Shape& dims = g.attrs.shape("dims");
        Shape inv(dims.size());
        for (size_t i = 0; i < dims.size(); ++i) inv[size_t(dims[i])] = int64_t(i);
        return {permute(g.grad(), inv)};
      });
}

PACER_OP(slice) {
  return view_op(
      "slice",
      [](OpCall& c) {
        const Tensor& x = c.in(0);
        PACER_CHECK(x.dim() > 0, "cannot slice a 0-d tensor");
        const int64_t dim = wrap_dim(c.attrs.i("dim"), x.dim());
        const int64_t n = x.size(dim), step = c.attrs.i("step");
        PACER_CHECK(step > 0, "expected a positive step, got {}", step);
        int64_t start = c.attrs.i("start"), end = c.attrs.i("end");
        if (start < 0) start += n;
        if (end < 0) end += n;
        start = std::clamp<int64_t>(start, 0, n);
        end = std::clamp<int64_t>(end, start, n);
        c.attrs.set("dim", dim).set("start", start).set("end", end);
      },
      [](OpCall& c) {
        const Tensor& x = c.in(0);
        const int64_t dim = c.attrs.i("dim"), start = c.attrs.i("start"), end = c.attrs.i("end"),
                      step = c.attrs.i("step");
        Shape s = x.sizes(), st = x.strides();
        s[size_t(dim)] = (end - start + step - 1) / step;
        st[size_t(dim)] *= step;
        set_view(c, s, st, x.storage_offset() + start * x.stride(dim));
      },
      [](const GradCall& g) -> std::vector<Tensor> {
        Attrs a = g.attrs;
        a.set("input_size", g.input_meta[0].sizes);
        return {call1(find_op("slice_backward"), {g.grad()}, a)};
      });
}

// The gradient of slice: zeros with the slice filled from the gradient.
PACER_OP(slice_backward) {
  OpDef d;
  d.name = "slice_backward";
  d.tags = kShape;
  d.infer = [](OpCall& c) { c.output_meta = {{c.attrs.shape("input_size"), c.in(0).dtype(), c.device}}; };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    return {slice(g.grad(), g.attrs.i("dim"), g.attrs.i("start"), g.attrs.i("end"), g.attrs.i("step"))};
  };
  return d;
}

PACER_OP(expand) {
  return view_op(
      "expand",
      [](OpCall& c) {
        const Tensor& x = c.in(0);
        Shape want = c.attrs.shape("size");
        PACER_CHECK(want.size() >= size_t(x.dim()), "cannot expand shape {} to fewer dims {}", x.sizes(), want);
        const size_t shift = want.size() - size_t(x.dim());
        for (size_t i = 0; i < want.size(); ++i) {
          const int64_t have = i < shift ? 1 : x.sizes()[i - shift];
          if (want[i] == -1) {
            PACER_CHECK(i >= shift, "-1 is not allowed for a new leading dimension in {}", want);
            want[i] = have;
          }
          PACER_CHECK(have == want[i] || have == 1, "cannot expand shape {} to {}: dimension {} has size {}",
                      x.sizes(), want, i, have);
        }
        c.attrs.set("size", want);
      },
      [](OpCall& c) {
        const Tensor& x = c.in(0);
        const Shape& want = c.attrs.shape("size");
        const size_t shift = want.size() - size_t(x.dim());
        Shape st(want.size(), 0);
        for (size_t i = shift; i < want.size(); ++i)
          st[i] = x.sizes()[i - shift] == want[i] ? x.strides()[i - shift] : 0;
        set_view(c, want, st, x.storage_offset());
      },
      [](const GradCall& g) -> std::vector<Tensor> { return {sum_to(g.grad(), g.input_meta[0].sizes)}; });
}

PACER_OP(squeeze) {
  return view_op(
      "squeeze", no_infer,
      [](OpCall& c) {
        const Tensor& x = c.in(0);
        Shape s, st;
        const bool all = !c.attrs.has("dim");
        const int64_t dim = all ? -1 : wrap_dim(c.attrs.i("dim"), x.dim());
        for (int64_t d = 0; d < x.dim(); ++d) {
          if (x.size(d) == 1 && (all || d == dim)) continue;
          s.push_back(x.size(d));
          st.push_back(x.stride(d));
        }
        set_view(c, s, st, x.storage_offset());
      },
      [](const GradCall& g) -> std::vector<Tensor> { return {reshape(g.grad(), g.input_meta[0].sizes)}; });
}

PACER_OP(unsqueeze) {
  return view_op(
      "unsqueeze", [](OpCall& c) { c.attrs.set("dim", wrap_dim(c.attrs.i("dim"), c.in(0).dim() + 1)); },
      [](OpCall& c) {
        const Tensor& x = c.in(0);
        const int64_t dim = c.attrs.i("dim");
        Shape s = x.sizes(), st = x.strides();
        const int64_t stride = dim < x.dim() ? x.stride(dim) * x.size(dim) : 1;
        s.insert(size_t(dim), 1);
        st.insert(size_t(dim), stride);
        set_view(c, s, st, x.storage_offset());
      },
      [](const GradCall& g) -> std::vector<Tensor> { return {reshape(g.grad(), g.input_meta[0].sizes)}; });
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

Tensor view(const Tensor& x, const Shape& sizes) { return call1(op_view(), {x}, {{"size", sizes}}); }

Tensor reshape(const Tensor& x, const Shape& sizes) {
  Shape s = infer_size(sizes, x.numel());
  if (view_strides(x, s)) return view(x, s);
  return view(clone(x), s);
}

Tensor permute(const Tensor& x, const DimList& dims) { return call1(op_permute(), {x}, {{"dims", dims}}); }

Tensor transpose(const Tensor& x, int64_t d0, int64_t d1) {
  const int64_t n = x.dim();
  if (n == 0) return x;
  Shape dims(static_cast<size_t>(n));
  std::iota(dims.begin(), dims.end(), int64_t(0));
  std::swap(dims[size_t(wrap_dim(d0, n))], dims[size_t(wrap_dim(d1, n))]);
  return permute(x, dims);
}

Tensor t(const Tensor& x) {
  PACER_CHECK(x.dim() <= 2, "t: expected a tensor of at most 2 dims, got shape {}", x.sizes());
  return x.dim() < 2 ? x : transpose(x, 0, 1);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  return call1(op_slice(), {x}, {{"dim", dim}, {"start", start}, {"end", end}, {"step", step}});
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  PACER_CHECK(x.dim() > 0, "narrow: cannot narrow a 0-d tensor");
  const int64_t n = x.size(dim);
  if (start < 0) start += n;
  PACER_CHECK(start >= 0 && length >= 0 && start + length <= n,
              "narrow: start {} with length {} exceeds dimension {} of size {}", start, length, dim, n);
  return slice(x, dim, start, start + length);
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  PACER_CHECK(x.dim() > 0, "select: cannot select from a 0-d tensor");
  const int64_t n = x.size(dim);
  PACER_CHECK(index >= -n && index < n, "select: index {} out of range for dimension {} of size {}", index, dim, n);
  if (index < 0) index += n;
  return squeeze(slice(x, dim, index, index + 1), dim);
}

Tensor expand(const Tensor& x, const Shape& sizes) {
  if (x.sizes() == sizes) return x;
  return call1(op_expand(), {x}, {{"size", sizes}});
}

Tensor squeeze(const Tensor& x, std::optional<int64_t> dim) {
  Attrs a;
  if (dim) {
    wrap_dim(*dim, x.dim());
    a.set("dim", *dim);
  }
  return call1(op_squeeze(), {x}, a);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) { return call1(op_unsqueeze(), {x}, {{"dim", dim}}); }

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  const int64_t s = wrap_dim(start_dim, x.dim()), e = wrap_dim(end_dim, x.dim());
  PACER_CHECK(s <= e, "flatten: start_dim {} must not come after end_dim {}", start_dim, end_dim);
  Shape out;
  for (int64_t d = 0; d < s; ++d) out.push_back(x.size(d));
  int64_t n = 1;
  for (int64_t d = s; d <= e; ++d) n *= x.size(d);
  out.push_back(n);
  for (int64_t d = e + 1; d < x.dim(); ++d) out.push_back(x.size(d));
  return reshape(x, out);
}

Tensor sum_to(const Tensor& x, const Shape& sizes) {
  if (x.sizes() == sizes) return x;
  const int64_t lead = x.dim() - int64_t(sizes.size());
  PACER_CHECK(lead >= 0, "sum_to: cannot reduce shape {} to the larger shape {}", x.sizes(), sizes);
  Shape dims;
  for (int64_t d = 0; d < lead; ++d) dims.push_back(d);
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t have = x.size(lead + int64_t(i));
    if (sizes[i] == 1 && have != 1) dims.push_back(lead + int64_t(i));
    else PACER_CHECK(sizes[i] == have, "sum_to: shape {} does not broadcast from {}", sizes, x.sizes());
  }
  Tensor r = dims.empty() ? x : sum(x, dims, true);
  return reshape(r, sizes);
}

}  // namespace pacer
