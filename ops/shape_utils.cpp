#include "ops/shape_utils.h"

#include <algorithm>

namespace pacer::ops {

int64_t wrap_dim(int64_t d, int64_t ndim) {
  const int64_t n = std::max<int64_t>(ndim, 1);  // a 0-dim tensor accepts dim 0 / -1
  PACER_CHECK(d >= -n && d < n, "dimension {} out of range: expected a value in [{}, {}] for a {}-d tensor", d,
              -n, n - 1, ndim);
  return d < 0 ? d + n : d;
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t sa = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t sb = i < n - b.size() ? 1 : b[i - (n - b.size())];
    PACER_CHECK(sa == sb || sa == 1 || sb == 1,
                "shapes {} and {} cannot be broadcast: dimension {} has sizes {} and {}", a, b,
                int64_t(i) - int64_t(n), sa, sb);
    out[i] = sa == 1 ? sb : sa;
  }
  return out;
}

namespace {
int category(DType t) { return is_floating(t) ? 2 : (t == DType::Bool ? 0 : 1); }
}  // namespace

DType result_type(const std::vector<Tensor>& ts) {
  // Three tiers, each with its own promoted dtype (or none).
  bool have[3] = {false, false, false};
  DType tier[3] = {DType::Bool, DType::Bool, DType::Bool};
  for (const Tensor& t : ts) {
    if (!t.defined()) continue;
    int k = t.impl()->is_wrapped_number ? 2 : (t.dim() == 0 ? 1 : 0);
    DType d = t.dtype();
    if (k == 2) d = is_floating(d) ? DType::F32 : (d == DType::Bool ? DType::Bool : DType::I64);
    tier[k] = have[k] ? promote_types(tier[k], d) : d;
    have[k] = true;
  }
  bool set = false;
  DType r = DType::Bool;
  for (int k = 0; k < 3; ++k) {
    if (!have[k]) continue;
    if (!set) {
      r = tier[k];
      set = true;
    } else if (category(tier[k]) > category(r)) {
      r = promote_types(r, tier[k]);
      // A wrapped float with an integer tensor gives the default float type, not f64.
      if (k == 2 && is_floating(tier[k]) && !is_floating(r)) r = DType::F32;
    }
  }
  return r;
}

Shape reduction_dims(const Shape& dims, int64_t ndim) {
  Shape out;
  if (dims.empty()) {
    for (int64_t d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, ndim);
    if (ndim == 0) continue;
    PACER_CHECK(std::find(out.begin(), out.end(), w) == out.end(), "dimension {} appears twice in {}", d, dims);
    out.push_back(w);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Shape reduced_shape(const Shape& sizes, const Shape& dims, bool keepdim) {
  Shape out;
  size_t j = 0;
  for (size_t d = 0; d < sizes.size(); ++d) {
    bool reduced = j < dims.size() && dims[j] == int64_t(d);
    if (reduced) ++j;
    if (!reduced) out.push_back(sizes[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

Shape channels_last_strides(const Shape& sizes) {
  PACER_CHECK(sizes.size() == 4, "channels-last needs a 4-d shape [N, C, H, W], got {}", sizes);
  const int64_t C = sizes[1], H = sizes[2], W = sizes[3];
  return {H * W * C, 1, W * C, C};
}

bool is_dense_channels_last(const Shape& sizes, const Shape& strides) {
  return sizes.size() == 4 && strides == channels_last_strides(sizes);
}

bool is_channels_last(const Tensor& t) {
  if (t.dim() != 4 || t.is_contiguous()) return false;
  const Shape want = channels_last_strides(t.sizes());
  for (int64_t d = 0; d < 4; ++d)
    if (t.size(d) != 1 && t.strides()[size_t(d)] != want[size_t(d)]) return false;
  return true;
}

}  // namespace pacer::ops
