#pragma once
/// Linear: y = x W^T + b, with PyTorch's default initialization
/// (weight and bias uniform in +-1/sqrt(in_features)).

#include "nn/module.h"

namespace pacer::nn {

class Linear : public UnaryModule {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Options options = {});
  Tensor forward(const Tensor& x) const override;

  Tensor weight;  // [out, in]
  Tensor bias;    // [out] or undefined
};

}  // namespace pacer::nn
