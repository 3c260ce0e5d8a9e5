#include "nn/max_pool2d.h"

#include "nn/pool_checks.h"
#include "ops/api.h"

namespace pacer::nn {

MaxPool2d::MaxPool2d(Shape k, Shape s, Shape p, Shape d)
    : kernel(std::move(k)), stride(s.empty() ? kernel : std::move(s)), padding(std::move(p)), dilation(std::move(d)) {
  detail::check_pool_args("MaxPool2d", kernel, stride, padding);
  PACER_CHECK(dilation.size() == 2 && dilation[0] > 0 && dilation[1] > 0,
              "MaxPool2d: expected a positive [dh, dw] dilation, got {}", dilation);
}

Tensor MaxPool2d::forward(const Tensor& x) const {
  detail::check_pool_input("MaxPool2d", x);
  return max_pool2d(x, kernel, stride, padding, dilation);
}

}  // namespace pacer::nn
