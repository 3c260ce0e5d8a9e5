#pragma once
/// LayerNorm: normalizes over the trailing dims `normalized_shape` (torch.nn.LayerNorm):
/// eps 1e-5; with elementwise_affine, parameters weight (ones) and bias (zeros) of shape
/// normalized_shape.

#include "nn/module.h"

namespace pacer::nn {

class LayerNorm : public UnaryModule {
 public:
  explicit LayerNorm(Shape normalized_shape, double eps = 1e-5, bool elementwise_affine = true, Options options = {});
  Tensor forward(const Tensor& x) const override;

  Tensor weight, bias;  // parameters of shape normalized_shape, or undefined
  Shape normalized_shape;
  double eps;
};

}  // namespace pacer::nn
