#include "nn/adaptive_avg_pool2d.h"

#include "nn/pool_checks.h"
#include "ops/api.h"

namespace pacer::nn {

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Shape o) : output_size(std::move(o)) {
  PACER_CHECK(output_size.size() == 2 && output_size[0] > 0 && output_size[1] > 0,
              "AdaptiveAvgPool2d: expected a positive [oh, ow] output size, got {}", output_size);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) const {
  detail::check_pool_input("AdaptiveAvgPool2d", x);
  return adaptive_avg_pool2d(x, output_size);
}

}  // namespace pacer::nn
