#include "nn/avg_pool2d.h"

#include "nn/pool_checks.h"
#include "ops/api.h"

namespace pacer::nn {

AvgPool2d::AvgPool2d(Shape k, Shape s, Shape p)
    : kernel(std::move(k)), stride(s.empty() ? kernel : std::move(s)), padding(std::move(p)) {
  detail::check_pool_args("AvgPool2d", kernel, stride, padding);
}

Tensor AvgPool2d::forward(const Tensor& x) const {
  detail::check_pool_input("AvgPool2d", x);
  return avg_pool2d(x, kernel, stride, padding);
}

}  // namespace pacer::nn
