#pragma once
/// Dropout: in training, zeroes each element with probability p and scales the others by
/// 1 / (1 - p); in evaluation, the identity (torch.nn.Dropout, default p = 0.5).

#include "nn/module.h"

namespace pacer::nn {

class Dropout : public UnaryModule {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& x) const override;

  double p;
};

}  // namespace pacer::nn
