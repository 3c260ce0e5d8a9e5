#pragma once
/// Conv2d: 2-d convolution layer with PyTorch's default initialization
/// (weight and bias uniform in +-1/sqrt(in_channels / groups * kh * kw)).

#include "nn/module.h"

namespace pacer::nn {

struct Conv2dOptions {
  Shape kernel = {3, 3};
  Shape stride = {1, 1};
  Shape padding = {0, 0};
  Shape dilation = {1, 1};
  int64_t groups = 1;
  bool bias = true;
};

class Conv2d : public UnaryModule {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Conv2dOptions options = {}, Options tensor_options = {});
  Tensor forward(const Tensor& x) const override;

  Tensor weight;  // [out, in / groups, kh, kw]
  Tensor bias;    // [out] or undefined
  Conv2dOptions options;
};

}  // namespace pacer::nn
