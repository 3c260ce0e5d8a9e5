// Resampling. upsample_nearest2d decomposes into two index_select calls with torch's
// nearest index rule src = floor(dst * in / out), so its backward (a sum of each output
// pixel's gradient into its source pixel) is index_select's scatter_add.
#include <algorithm>
#include <cmath>

#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

// Source index of each of `out` positions along an axis of `in` positions.
Tensor nearest_index(int64_t in, int64_t out, Device device) {
  std::vector<int64_t> v(static_cast<size_t>(out));
  for (int64_t i = 0; i < out; ++i) v[size_t(i)] = std::min(i * in / out, in - 1);
  return from_vector(v, {out}, {.dtype = DType::I64}).to(device);  // built on the host, then moved
}

}  // namespace

PACER_OP(upsample_nearest2d) {
  OpDef d;
  d.name = "upsample_nearest2d";
  d.decompose = [](const std::vector<Tensor>& in, const Attrs& a) -> std::vector<Tensor> {
    const Tensor& x = in[0];
    PACER_CHECK(x.dim() == 4, "upsample_nearest2d: expected a 4-d input [N, C, H, W], got shape {}", x.sizes());
    PACER_CHECK(is_floating(x.dtype()), "upsample_nearest2d: expected a floating input, got {}", x.dtype());
    const Shape& size = a.shape("size");
    PACER_CHECK(size.size() == 2 && size[0] > 0 && size[1] > 0,
                "upsample_nearest2d: expected a positive output size [oh, ow], got {}", size);
    PACER_CHECK(x.size(2) > 0 && x.size(3) > 0, "upsample_nearest2d: expected a non-empty input plane, got shape {}",
                x.sizes());
    Tensor r = index_select(x, 2, nearest_index(x.size(2), size[0], x.device()));
    return {index_select(r, 3, nearest_index(x.size(3), size[1], x.device()))};
  };
  return d;
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

Tensor upsample_nearest2d(const Tensor& x, const Shape& output_size) {
  return call1(op_upsample_nearest2d(), {x}, {{"size", output_size}});
}

Tensor upsample_nearest2d(const Tensor& x, double scale_factor) {
  PACER_CHECK(scale_factor > 0, "upsample_nearest2d: expected a positive scale factor, got {}", scale_factor);
  PACER_CHECK(x.dim() == 4, "upsample_nearest2d: expected a 4-d input [N, C, H, W], got shape {}", x.sizes());
  const auto scaled = [&](int64_t n) { return int64_t(std::floor(double(n) * scale_factor)); };
  return upsample_nearest2d(x, Shape{scaled(x.size(2)), scaled(x.size(3))});
}

}  // namespace pacer
