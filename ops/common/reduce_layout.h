#pragma once
/// How a reduction walks its input, shared by the CPU and CUDA reduction kernels: as
/// [kept..., reduced...] "rows" or, when the reduced dims lead, [reduced..., kept...]
/// "columns", without a copy when the input is contiguous, else through a dense permuted
/// copy made by the device's `materialize`.

#include <vector>

#include "core/tensor.h"
#include "ops/cpu/loops.h"

namespace pacer::ops {

struct ReduceLayout {
  Tensor dense;  // contiguous: [kept..., reduced...] or (reduced_outer) [reduced..., kept...]
  int64_t M = 1, R = 1;  // kept and reduced element counts
  bool reduced_outer = false;
};

/// `dims`: the reduced dims (wrapped; a 0-dim input has none to mark). `materialize(t)`
/// returns a contiguous copy of t on its device.
template <class Materialize>
ReduceLayout arrange_reduction(const Tensor& x, const Shape& dims, Materialize&& materialize) {
  ReduceLayout l;
  Shape kept, red;
  std::vector<bool> is_red(size_t(x.dim()), false);
  for (int64_t d : dims)
    if (d >= 0 && d < x.dim()) is_red[size_t(d)] = true;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (is_red[size_t(d)]) {
      red.push_back(d);
      l.R *= x.size(d);
    } else {
      kept.push_back(d);
      l.M *= x.size(d);
    }
  }
  bool leading = true, trailing = true;
  for (size_t i = 0; i < red.size(); ++i) {
    leading = leading && red[i] == int64_t(i);
    trailing = trailing && red[i] == int64_t(kept.size() + i);
  }
  if (x.is_contiguous() && trailing) {
    l.dense = x;
  } else if (x.is_contiguous() && leading) {
    l.dense = x;
    l.reduced_outer = true;
  } else {
    Shape order = kept;
    for (int64_t d : red) order.push_back(d);
    l.dense = materialize(cpu::permuted(x, order));
  }
  return l;
}

}  // namespace pacer::ops
