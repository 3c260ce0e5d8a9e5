// CPU kernels of cat, index_select, gather, scatter(_add), pad, slice_backward, one_hot.
// Region copies reuse the pointwise engine on strided views of the output.
#include <cstring>

#include "ops/cpu/loops.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

void copy_into(const Tensor& dst, const Tensor& src) {
  dispatch_dtype(dst.dtype(), [&]<class T>() { cpu_kernel<T, T>(dst, {&src}, [](compute_t<T> v) { return v; }); });
}

void fill(const Tensor& dst, const Scalar& value) {
  dispatch_dtype(dst.dtype(), [&]<class T>() {
    const compute_t<T> v = value.to<compute_t<T>>();
    cpu_kernel<T>(dst, {}, [v]() { return v; });
  });
}

// The view of `t` with dim `dim` narrowed to [start, start + len) in steps of `step`.
Tensor region(const Tensor& t, int64_t dim, int64_t start, int64_t len, int64_t step = 1) {
  Shape s = t.sizes(), st = t.strides();
  s[size_t(dim)] = len;
  st[size_t(dim)] *= step;
  return make_view(t, s, st, t.storage_offset() + start * t.stride(dim));
}

int64_t read_index(const Tensor& idx, int64_t off) {
  return idx.dtype() == DType::I64 ? static_cast<const int64_t*>(idx.data())[off]
                                   : static_cast<const int32_t*>(idx.data())[off];
}

void cat_kernel(OpCall& c) {
  const int64_t dim = c.attrs.i("dim");
  int64_t at = 0;
  for (const Tensor& x : c.inputs) {
    if (x.numel() > 0) copy_into(region(c.out(0), dim, at, x.size(dim)), x);
    at += x.size(dim);
  }
}

void index_select_kernel(OpCall& c) {
  const Tensor &x = c.in(0), &idx = c.in(1);
  Tensor& out = c.out(0);
  if (x.dim() == 0) return copy_into(out, x);
  const int64_t dim = c.attrs.i("dim"), n = x.size(dim);
  Tensor index = materialize(idx);
  if (x.is_contiguous() && out.is_contiguous()) {
    // Dense input: each selected slice is `inner` contiguous elements per outer index.
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
    for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
    const size_t bytes = size_t(inner) * x.element_size();
    const char* src = static_cast<const char*>(x.data());
    char* dst = static_cast<char*>(out.data());
    const int64_t m = index.numel();
    for (int64_t i = 0; i < m; ++i) {
      const int64_t k = read_index(index, i);
      PACER_CHECK(k >= 0 && k < n, "index {} is out of range for dimension {} of size {}", k, dim, n);
    }
    parallel_for(0, outer * m, std::max<int64_t>(1, 65536 / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t o = r / m, i = r % m;
        std::memcpy(dst + size_t(r) * bytes, src + size_t(o * n + read_index(index, i)) * bytes, bytes);
      }
    });
    return;
  }
  for (int64_t i = 0; i < index.numel(); ++i) {
    const int64_t k = read_index(index, i);
    PACER_CHECK(k >= 0 && k < n, "index {} is out of range for dimension {} of size {}", k, dim, n);
    copy_into(region(out, dim, i, 1), region(x, dim, k, 1));
  }
}

// Calls fn(index_offset, data_offset_without_dim, position_in_dim) for every element of the
// index tensor; offsets are in elements of `idx` and of `data` (with dim's term omitted).
template <class F>
void walk_index(const Tensor& idx, const Tensor& data, int64_t dim, F fn) {
  const int64_t nd = idx.dim();
  Shape pos(size_t(nd), 0);
  for (int64_t k = 0; k < idx.numel(); ++k) {
    int64_t io = 0, dof = 0;
    for (int64_t d = 0; d < nd; ++d) {
      io += pos[size_t(d)] * idx.stride(d);
      if (d != dim) dof += pos[size_t(d)] * data.stride(d);
    }
    fn(io, dof);
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++pos[size_t(d)] < idx.size(d)) break;
      pos[size_t(d)] = 0;
    }
  }
}

void gather_kernel(OpCall& c) {
  const Tensor &x = c.in(0), &idx = c.in(1);
  Tensor& out = c.out(0);  // contiguous, idx's shape
  const int64_t dim = x.dim() == 0 ? 0 : c.attrs.i("dim");
  const int64_t n = x.dim() == 0 ? 1 : x.size(dim), xs = x.dim() == 0 ? 0 : x.stride(dim);
  dispatch_dtype(x.dtype(), [&]<class T>() {
    const T* px = static_cast<const T*>(x.data());
    T* po = static_cast<T*>(out.data());
    int64_t o = 0;
    walk_index(idx, x, dim, [&](int64_t io, int64_t dof) {
      const int64_t k = read_index(idx, io);
      PACER_CHECK(k >= 0 && k < n, "index {} is out of range for dimension {} of size {}", k, dim, n);
      po[o++] = px[dof + k * xs];
    });
  });
}

// The common case of a scatter along the last dim of contiguous tensors whose other dims
// agree (max-pool's backward: [N, C, OH*OW] gradients into [N, C, H*W]): rows are
// independent, so they run in parallel with plain pointer walks. False when it does not apply.
template <bool Add>
bool scatter_rows(Tensor& out, const Tensor& idx, const Tensor& src, int64_t dim) {
  const int64_t nd = idx.dim();
  if (nd == 0 || dim != nd - 1 || idx.dtype() != DType::I64 || !idx.is_contiguous() || !src.is_contiguous() ||
      !out.is_contiguous() || src.sizes() != idx.sizes() || out.dim() != nd)
    return false;
  for (int64_t d = 0; d + 1 < nd; ++d)
    if (out.size(d) != idx.size(d)) return false;
  const int64_t m = idx.size(nd - 1), n = out.size(nd - 1), rows = idx.numel() / std::max<int64_t>(m, 1);
  const int64_t* pi = static_cast<const int64_t*>(idx.data());
  dispatch_dtype(out.dtype(), [&]<class T>() {
    T* po = static_cast<T*>(out.data());
    const T* ps = static_cast<const T*>(src.data());
    parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(m, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        T* orow = po + r * n;
        for (int64_t e = r * m; e < (r + 1) * m; ++e) {
          const int64_t k = pi[e];
          PACER_CHECK(k >= 0 && k < n, "index {} is out of range for dimension {} of size {}", k, dim, n);
          if constexpr (Add) orow[k] = store_cast<T>(compute_t<T>(orow[k]) + compute_t<T>(ps[e]));
          else orow[k] = ps[e];
        }
      }
    });
  });
  return true;
}

template <bool Add>
void scatter_kernel(OpCall& c) {
  const Tensor &x = c.in(0), &idx = c.in(1), &src = c.in(2);
  Tensor& out = c.out(0);
  copy_into(out, x);
  const int64_t dim = x.dim() == 0 ? 0 : c.attrs.i("dim");
  const int64_t n = x.dim() == 0 ? 1 : x.size(dim), os = x.dim() == 0 ? 0 : out.stride(dim);
  if (scatter_rows<Add>(out, idx, src, dim)) return;
  dispatch_dtype(x.dtype(), [&]<class T>() {
    T* po = static_cast<T*>(out.data());
    const T* ps = static_cast<const T*>(src.data());
    // The source is walked at the index's positions (it may be larger than the index).
    const int64_t nd = idx.dim();
    Shape pos(size_t(nd), 0);
    for (int64_t e = 0; e < idx.numel(); ++e) {
      int64_t io = 0, so = 0, oo = 0;
      for (int64_t d = 0; d < nd; ++d) {
        io += pos[size_t(d)] * idx.stride(d);
        so += pos[size_t(d)] * src.stride(d);
        if (d != dim) oo += pos[size_t(d)] * out.stride(d);
      }
      const int64_t k = read_index(idx, io);
      PACER_CHECK(k >= 0 && k < n, "index {} is out of range for dimension {} of size {}", k, dim, n);
      T& cell = po[oo + k * os];
      if constexpr (Add) cell = store_cast<T>(compute_t<T>(cell) + compute_t<T>(ps[so]));
      else cell = ps[so];
      for (int64_t d = nd - 1; d >= 0; --d) {
        if (++pos[size_t(d)] < idx.size(d)) break;
        pos[size_t(d)] = 0;
      }
    }
  });
}

void pad_kernel(OpCall& c) {
  Tensor& out = c.out(0);
  const Shape& p = c.attrs.shape("pad");
  fill(out, c.attrs.scalar("value"));
  Tensor inner = out;
  for (size_t i = 0; i < p.size() / 2; ++i) {
    const int64_t dim = out.dim() - 1 - int64_t(i);
    inner = region(inner, dim, p[2 * i], c.in(0).size(dim));
  }
  if (c.in(0).numel() > 0) copy_into(inner, c.in(0));
}

void slice_backward_kernel(OpCall& c) {
  Tensor& out = c.out(0);
  fill(out, 0);
  const Tensor& g = c.in(0);
  if (g.numel() > 0)
    copy_into(region(out, c.attrs.i("dim"), c.attrs.i("start"), g.size(c.attrs.i("dim")), c.attrs.i("step")), g);
}

void one_hot_kernel(OpCall& c) {
  Tensor idx = materialize(c.in(0));
  Tensor& out = c.out(0);
  fill(out, 0);
  const int64_t n = c.attrs.i("num_classes");
  int64_t* po = static_cast<int64_t*>(out.data());
  for (int64_t i = 0; i < idx.numel(); ++i) {
    const int64_t k = read_index(idx, i);
    PACER_CHECK(k >= 0 && k < n, "class index {} is out of range for num_classes {}", k, n);
    po[i * n + k] = 1;
  }
}

}  // namespace

PACER_KERNEL(cat, CPU, cat_kernel);
PACER_KERNEL(index_select, CPU, index_select_kernel);
PACER_KERNEL(gather, CPU, gather_kernel);
PACER_KERNEL(scatter, CPU, scatter_kernel<false>);
PACER_KERNEL(scatter_add, CPU, scatter_kernel<true>);
PACER_KERNEL(pad, CPU, pad_kernel);
PACER_KERNEL(slice_backward, CPU, slice_backward_kernel);
PACER_KERNEL(one_hot, CPU, one_hot_kernel);

}  // namespace pacer::ops::cpu
