// CPU sort and nonzero. sort: each line along `dim` of a dense copy of the input is
// stable-sorted through an index array (NaN compares larger than every number, as torch),
// lines in parallel. nonzero: counts, then writes the coordinates in row-major order into
// an output it allocates itself (a kDynamicShape op).
#include <algorithm>
#include <numeric>

#include "ops/cpu/loops.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

template <class C>
inline bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) return v != v;
  else return false;
}

void sort_kernel(OpCall& c) {
  const Tensor x = materialize(c.in(0));
  const int64_t dim = c.attrs.i("dim");
  const bool descending = c.attrs.b("descending");
  int64_t outer = 1, inner = 1, L = 1;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < dim) outer *= x.size(d);
    else if (d > dim) inner *= x.size(d);
    else L = x.size(d);
  }
  if (x.numel() == 0) return;
  dispatch_dtype(x.dtype(), [&]<class T>() {
    using C = compute_t<T>;
    const T* src = static_cast<const T*>(x.data());
    T* vals = static_cast<T*>(c.out(0).data());
    int64_t* ids = static_cast<int64_t*>(c.out(1).data());
    // a < b, with NaN after every number (and equal to other NaNs).
    const auto less = [](C a, C b) { return is_nan(b) ? !is_nan(a) : a < b; };
    parallel_for(0, outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(L, 1)), [&](int64_t b, int64_t e) {
      std::vector<int64_t> order(static_cast<size_t>(L));
      std::vector<C> key(static_cast<size_t>(L));
      for (int64_t line = b; line < e; ++line) {
        const int64_t base = (line / inner) * L * inner + line % inner;
        for (int64_t r = 0; r < L; ++r) key[size_t(r)] = C(src[base + r * inner]);
        std::iota(order.begin(), order.end(), int64_t(0));
        if (descending)
          std::stable_sort(order.begin(), order.end(),
                           [&](int64_t i, int64_t j) { return less(key[size_t(j)], key[size_t(i)]); });
        else
          std::stable_sort(order.begin(), order.end(),
                           [&](int64_t i, int64_t j) { return less(key[size_t(i)], key[size_t(j)]); });
        for (int64_t r = 0; r < L; ++r) {
          vals[base + r * inner] = src[base + order[size_t(r)] * inner];
          ids[base + r * inner] = order[size_t(r)];
        }
      }
    });
  });
}

void nonzero_kernel(OpCall& c) {
  const Tensor x = materialize(c.in(0));
  const int64_t nd = x.dim(), n = x.numel();
  std::vector<int64_t> flat;
  dispatch_dtype(x.dtype(), [&]<class T>() {
    const T* p = static_cast<const T*>(x.data());
    for (int64_t k = 0; k < n; ++k)
      if (compute_t<T>(p[k]) != compute_t<T>(0)) flat.push_back(k);
  });
  const int64_t count = int64_t(flat.size());
  Tensor out = empty({count, nd}, {.dtype = DType::I64, .device = c.device});
  int64_t* o = static_cast<int64_t*>(out.data());
  for (int64_t r = 0; r < count; ++r) {
    int64_t k = flat[size_t(r)];
    for (int64_t d = nd - 1; d >= 0; --d) {
      o[r * nd + d] = k % x.size(d);
      k /= x.size(d);
    }
  }
  c.outputs = {out};
}

}  // namespace

PACER_KERNEL(sort, CPU, sort_kernel);
PACER_KERNEL(nonzero, CPU, nonzero_kernel);

}  // namespace pacer::ops::cpu
