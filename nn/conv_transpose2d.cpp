#include "nn/conv_transpose2d.h"

#include <cmath>

#include "nn/init.h"
#include "ops/api.h"

namespace pacer::nn {

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, ConvTranspose2dOptions o, Options t)
    : options(o) {
  PACER_CHECK(in_channels > 0 && out_channels > 0 && o.groups > 0 && in_channels % o.groups == 0 &&
                  out_channels % o.groups == 0,
              "ConvTranspose2d: groups={} must divide in_channels={} and out_channels={}", o.groups, in_channels,
              out_channels);
  PACER_CHECK(o.kernel.size() == 2 && o.kernel[0] > 0 && o.kernel[1] > 0,
              "ConvTranspose2d: expected a [kh, kw] kernel, got {}", o.kernel);
  const int64_t fan_in = out_channels / o.groups * o.kernel[0] * o.kernel[1];
  const double bound = 1.0 / std::sqrt(double(fan_in));
  weight = register_parameter(
      "weight", init::uniform({in_channels, out_channels / o.groups, o.kernel[0], o.kernel[1]}, -bound, bound, t));
  if (o.bias) bias = register_parameter("bias", init::uniform({out_channels}, -bound, bound, t));
}

Tensor ConvTranspose2d::forward(const Tensor& x) const {
  return conv_transpose2d(x, weight, bias, options.stride, options.padding, options.output_padding, options.dilation,
                          options.groups);
}

}  // namespace pacer::nn
