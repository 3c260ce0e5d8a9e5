#pragma once
/// AdaptiveAvgPool2d: averages an [N, C, H, W] input over adaptive windows to
/// [N, C, oh, ow] (torch.nn.AdaptiveAvgPool2d; ResNet's head uses {1, 1}).

#include "nn/module.h"

namespace pacer::nn {

class AdaptiveAvgPool2d : public UnaryModule {
 public:
  explicit AdaptiveAvgPool2d(Shape output_size);
  Tensor forward(const Tensor& x) const override;

  Shape output_size;
};

}  // namespace pacer::nn
