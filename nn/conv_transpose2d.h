#pragma once
/// ConvTranspose2d: transposed 2-d convolution with PyTorch's parameter layout
/// (weight [in, out / groups, kh, kw]) and default initialization (weight and bias uniform
/// in +-1/sqrt(fan_in), fan_in computed from weight.size(1) * kh * kw as torch does).

#include "nn/conv2d.h"
#include "nn/module.h"

namespace pacer::nn {

struct ConvTranspose2dOptions {
  Shape kernel = {3, 3};
  Shape stride = {1, 1};
  Shape padding = {0, 0};
  Shape output_padding = {0, 0};
  Shape dilation = {1, 1};
  int64_t groups = 1;
  bool bias = true;
};

class ConvTranspose2d : public UnaryModule {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, ConvTranspose2dOptions options = {},
                  Options tensor_options = {});
  Tensor forward(const Tensor& x) const override;

  Tensor weight;  // [in, out / groups, kh, kw]
  Tensor bias;    // [out] or undefined
  ConvTranspose2dOptions options;
};

}  // namespace pacer::nn
