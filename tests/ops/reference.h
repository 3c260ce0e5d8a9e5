#pragma once
// Naive f64 references for the op test table: plain loops over a flat row-major copy,
// written independently of the kernels they check.

#include <cmath>
#include <functional>
#include <vector>

#include <pacer/pacer.h>

namespace pacer::ref {

struct Arr {
  Shape sizes;
  std::vector<double> v;
  int64_t numel() const { return int64_t(v.size()); }
};

inline Arr of(const Tensor& t) { return {t.sizes(), t.to_vector<double>()}; }
inline Tensor tensor(const Arr& a, DType dtype = DType::F64) { return from_vector(a.v, a.sizes, {.dtype = dtype}); }

inline Shape strides_of(const Shape& s) { return contiguous_strides(s); }

inline std::vector<int64_t> unravel(int64_t flat, const Shape& sizes) {
  std::vector<int64_t> idx(sizes.size());
  for (size_t d = sizes.size(); d-- > 0;) {
    idx[d] = sizes[d] ? flat % sizes[d] : 0;
    flat = sizes[d] ? flat / sizes[d] : 0;
  }
  return idx;
}

inline int64_t ravel(const std::vector<int64_t>& idx, const Shape& sizes) {
  int64_t flat = 0;
  for (size_t d = 0; d < sizes.size(); ++d) flat = flat * sizes[d] + idx[d];
  return flat;
}

inline Arr map(const Arr& a, const std::function<double(double)>& f) {
  Arr r = a;
  for (double& x : r.v) x = f(x);
  return r;
}

// Elementwise over broadcast operands (NumPy rules, written out by index).
inline Arr zip(const std::vector<Arr>& in, const std::function<double(const std::vector<double>&)>& f) {
  size_t nd = 0;
  for (const Arr& a : in) nd = std::max(nd, a.sizes.size());
  Shape out(nd, 1);
  for (const Arr& a : in)
    for (size_t i = 0; i < a.sizes.size(); ++i) {
      int64_t& o = out[nd - a.sizes.size() + i];
      if (a.sizes[i] != 1) o = a.sizes[i];
    }
  Arr r{out, std::vector<double>(size_t(shape_numel(out)))};
  std::vector<double> args(in.size());
  for (int64_t k = 0; k < r.numel(); ++k) {
    auto idx = unravel(k, out);
    for (size_t j = 0; j < in.size(); ++j) {
      const Arr& a = in[j];
      std::vector<int64_t> ai(a.sizes.size());
      for (size_t i = 0; i < a.sizes.size(); ++i) ai[i] = a.sizes[i] == 1 ? 0 : idx[nd - a.sizes.size() + i];
      args[j] = a.v[size_t(ravel(ai, a.sizes))];
    }
    r.v[size_t(k)] = f(args);
  }
  return r;
}

// Reduces the listed dims (empty = all) with f over each group of values.
inline Arr reduce(const Arr& a, std::vector<int64_t> dims, bool keepdim,
                  const std::function<double(const std::vector<double>&)>& f) {
  const int64_t nd = int64_t(a.sizes.size());
  if (dims.empty())
    for (int64_t d = 0; d < nd; ++d) dims.push_back(d);
  for (auto& d : dims) d = d < 0 ? d + nd : d;
  std::vector<bool> red(size_t(nd), false);
  for (auto d : dims) red[size_t(d)] = true;
  Shape kept_full(static_cast<size_t>(nd)), out;
  for (int64_t d = 0; d < nd; ++d) {
    kept_full[size_t(d)] = red[size_t(d)] ? 1 : a.sizes[size_t(d)];
    if (!red[size_t(d)]) out.push_back(a.sizes[size_t(d)]);
    else if (keepdim) out.push_back(1);
  }
  std::vector<std::vector<double>> groups(size_t(shape_numel(kept_full)));
  for (int64_t k = 0; k < a.numel(); ++k) {
    auto idx = unravel(k, a.sizes);
    for (int64_t d = 0; d < nd; ++d)
      if (red[size_t(d)]) idx[size_t(d)] = 0;
    groups[size_t(ravel(idx, kept_full))].push_back(a.v[size_t(k)]);
  }
  Arr r{out, {}};
  for (auto& g : groups) r.v.push_back(f(g));
  return r;
}

inline double gsum(const std::vector<double>& g) {
  double s = 0;
  for (double x : g) s += x;
  return s;
}

// Naive matrix product of [m, k] and [k, n] slices.
inline Arr matmul2d(const Arr& a, const Arr& b) {
  const int64_t m = a.sizes[0], k = a.sizes[1], n = b.sizes[1];
  Arr r{{m, n}, std::vector<double>(size_t(m * n), 0.0)};
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t p = 0; p < k; ++p) r.v[size_t(i * n + j)] += a.v[size_t(i * k + p)] * b.v[size_t(p * n + j)];
  return r;
}

// Element [idx] where out shape indexes map to input positions through `src_index`.
inline Arr gather_by(const Shape& out, const Arr& a, const std::function<std::vector<int64_t>(const std::vector<int64_t>&)>& src_index) {
  Arr r{out, std::vector<double>(size_t(shape_numel(out)))};
  for (int64_t k = 0; k < r.numel(); ++k) r.v[size_t(k)] = a.v[size_t(ravel(src_index(unravel(k, out)), a.sizes))];
  return r;
}

}  // namespace pacer::ref
