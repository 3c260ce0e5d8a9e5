#pragma once
/// AvgPool2d: mean over kernel windows of an [N, C, H, W] input (torch.nn.AvgPool2d with
/// its defaults: stride = kernel, padding counted in the divisor).

#include "nn/module.h"

namespace pacer::nn {

class AvgPool2d : public UnaryModule {
 public:
  explicit AvgPool2d(Shape kernel, Shape stride = {}, Shape padding = {0, 0});
  Tensor forward(const Tensor& x) const override;

  Shape kernel, stride, padding;
};

}  // namespace pacer::nn
