#pragma once
/// BatchNorm2d: normalizes each channel with batch statistics in training (updating the
/// running estimates) and with the running estimates in evaluation. PyTorch's defaults:
/// eps 1e-5, momentum 0.1, affine weight 1 / bias 0, running_mean 0 / running_var 1.

#include "nn/module.h"

namespace pacer::nn {

class BatchNorm2d : public UnaryModule {
 public:
  explicit BatchNorm2d(int64_t channels, double eps = 1e-5, double momentum = 0.1, Options options = {});
  Tensor forward(const Tensor& x) const override;

  Tensor weight, bias;               // parameters [C]
  Tensor running_mean, running_var;  // buffers [C]
  double eps, momentum;
};

}  // namespace pacer::nn
