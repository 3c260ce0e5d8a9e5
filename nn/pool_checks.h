#pragma once
// Argument and input checks shared by the pooling layers (not installed API).

#include "core/error.h"
#include "core/tensor.h"

namespace pacer::nn::detail {

/// kernel and stride: two positive values; padding: two values in [0, kernel / 2] (torch's rule).
inline void check_pool_args(const char* layer, const Shape& kernel, const Shape& stride, const Shape& padding) {
  PACER_CHECK(kernel.size() == 2 && kernel[0] > 0 && kernel[1] > 0, "{}: expected a positive [kh, kw] kernel, got {}",
              layer, kernel);
  PACER_CHECK(stride.size() == 2 && stride[0] > 0 && stride[1] > 0, "{}: expected a positive [sh, sw] stride, got {}",
              layer, stride);
  PACER_CHECK(padding.size() == 2 && padding[0] >= 0 && padding[1] >= 0 && 2 * padding[0] <= kernel[0] &&
                  2 * padding[1] <= kernel[1],
              "{}: padding must be [ph, pw] with each at most half the kernel {}, got {}", layer, kernel, padding);
}

inline void check_pool_input(const char* layer, const Tensor& x) {
  PACER_CHECK(x.dim() == 4, "{}: expected input [N, C, H, W], got shape {}", layer, x.sizes());
}

}  // namespace pacer::nn::detail
