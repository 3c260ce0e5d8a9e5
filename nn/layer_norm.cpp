#include "nn/layer_norm.h"

#include "ops/api.h"

namespace pacer::nn {

LayerNorm::LayerNorm(Shape shape, double eps_, bool affine, Options o) : normalized_shape(std::move(shape)), eps(eps_) {
  bool ok = !normalized_shape.empty();
  for (int64_t s : normalized_shape) ok = ok && s > 0;
  PACER_CHECK(ok, "LayerNorm: expected a non-empty normalized_shape of positive sizes, got {}", normalized_shape);
  PACER_CHECK(eps >= 0, "LayerNorm: expected eps >= 0, got {}", eps);
  if (affine) {
    Options plain = o;
    plain.requires_grad = false;
    weight = register_parameter("weight", ones(normalized_shape, plain));
    bias = register_parameter("bias", zeros(normalized_shape, plain));
  }
}

Tensor LayerNorm::forward(const Tensor& x) const {
  const int64_t k = int64_t(normalized_shape.size());
  bool ok = x.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i) ok = x.size(x.dim() - k + i) == normalized_shape[size_t(i)];
  PACER_CHECK(ok, "LayerNorm: expected input whose trailing dims are {}, got shape {}", normalized_shape, x.sizes());
  return layer_norm(x, normalized_shape, weight, bias, eps);
}

}  // namespace pacer::nn
