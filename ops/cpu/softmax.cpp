// CPU softmax / log_softmax: rows along `dim` (made innermost and dense when needed),
// max-shifted, accumulated in f32 (f64 for f64).
#include <cmath>

#include "ops/cpu/loops.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

template <bool Log>
void softmax_kernel(OpCall& c) {
  const Tensor& x = c.in(0);
  Tensor& out = c.out(0);
  if (x.numel() == 0) return;
  const int64_t dim = x.dim() == 0 ? 0 : c.attrs.i("dim");
  const int64_t nd = x.dim();
  const bool last = nd == 0 || dim == nd - 1;
  Shape order;
  for (int64_t d = 0; d < nd; ++d)
    if (d != dim) order.push_back(d);
  if (nd > 0) order.push_back(dim);
  Tensor in = last ? materialize(x) : materialize(permuted(x, order));
  Tensor dst = last ? out : empty(in.sizes(), {.dtype = out.dtype()});
  const int64_t R = nd == 0 ? 1 : x.size(dim), M = x.numel() / R;
  dispatch_floating(x.dtype(), c.op.name, [&]<class T>() {
    using C = compute_t<T>;
    const T* p = static_cast<const T*>(in.data());
    T* o = static_cast<T*>(dst.data());
    parallel_for(0, M, std::max<int64_t>(1, 8192 / R), [&](int64_t b, int64_t e) {
      std::vector<C> buf(static_cast<size_t>(R));
      for (int64_t m = b; m < e; ++m) {
        const T* row = p + m * R;
        C mx = -INFINITY;
        for (int64_t r = 0; r < R; ++r) mx = std::max(mx, C(row[r]));
        if (std::isinf(mx) && mx < 0) mx = 0;  // an all -inf row gives nan (softmax) / -inf (log)
        C s = 0;
        for (int64_t r = 0; r < R; ++r) {
          buf[size_t(r)] = C(row[r]) - mx;
          s += std::exp(buf[size_t(r)]);
        }
        T* orow = o + m * R;
        if constexpr (Log) {
          const C ls = std::log(s);
          for (int64_t r = 0; r < R; ++r) orow[r] = store_cast<T>(buf[size_t(r)] - ls);
        } else {
          const C inv = C(1) / s;
          for (int64_t r = 0; r < R; ++r) orow[r] = store_cast<T>(std::exp(buf[size_t(r)]) * inv);
        }
      }
    });
  });
  if (!last) {
    // Scatter the rows back: dst is out permuted; copy through the inverse view.
    Shape inv(static_cast<size_t>(nd));
    for (size_t i = 0; i < order.size(); ++i) inv[size_t(order[i])] = int64_t(i);
    Tensor back = permuted(dst, inv);
    dispatch_dtype(out.dtype(), [&]<class T>() { cpu_kernel<T, T>(out, {&back}, [](compute_t<T> v) { return v; }); });
  }
}

}  // namespace

PACER_KERNEL(softmax, CPU, softmax_kernel<false>);
PACER_KERNEL(log_softmax, CPU, softmax_kernel<true>);

}  // namespace pacer::ops::cpu
