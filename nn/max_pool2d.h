#pragma once
/// MaxPool2d: max over kernel windows of an [N, C, H, W] input (torch.nn.MaxPool2d;
/// stride defaults to the kernel size).

#include "nn/module.h"

namespace pacer::nn {

class MaxPool2d : public UnaryModule {
 public:
  explicit MaxPool2d(Shape kernel, Shape stride = {}, Shape padding = {0, 0}, Shape dilation = {1, 1});
  Tensor forward(const Tensor& x) const override;

  Shape kernel, stride, padding, dilation;
};

}  // namespace pacer::nn
