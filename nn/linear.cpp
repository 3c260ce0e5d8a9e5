#include "nn/linear.h"

#include <cmath>

#include "nn/init.h"
#include "ops/api.h"

namespace pacer::nn {

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, Options o) {
  PACER_CHECK(in_features > 0 && out_features > 0, "Linear: expected positive sizes, got in={} out={}", in_features,
              out_features);
  const double bound = 1.0 / std::sqrt(double(in_features));
  weight = register_parameter("weight", init::uniform({out_features, in_features}, -bound, bound, o));
  if (with_bias) bias = register_parameter("bias", init::uniform({out_features}, -bound, bound, o));
}

Tensor Linear::forward(const Tensor& x) const {
  PACER_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "Linear: expected input [..., {}], got shape {}",
              weight.size(1), x.sizes());
  return linear(x, weight, bias);
}

}  // namespace pacer::nn
