#pragma once
/// FrozenBatchNorm2d: batch norm with fixed statistics and affine terms, as torchvision's
/// torchvision.ops.FrozenBatchNorm2d (detection backbones). weight, bias, running_mean and
/// running_var are all buffers (no parameters, nothing trains); eps defaults to 1e-5 as in
/// torchvision. forward(x) = x * scale + shift per channel, with
/// scale = weight * rsqrt(running_var + eps) and shift = bias - running_mean * scale.

#include "nn/module.h"

namespace pacer::nn {

class FrozenBatchNorm2d : public UnaryModule {
 public:
  explicit FrozenBatchNorm2d(int64_t channels, double eps = 1e-5, Options options = {});
  Tensor forward(const Tensor& x) const override;

  Tensor weight, bias, running_mean, running_var;  // buffers [C]
  double eps;
};

}  // namespace pacer::nn
