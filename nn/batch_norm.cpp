#include "nn/batch_norm.h"

#include "ops/api.h"

namespace pacer::nn {

BatchNorm2d::BatchNorm2d(int64_t channels, double eps_, double momentum_, Options o) : eps(eps_), momentum(momentum_) {
  PACER_CHECK(channels > 0, "BatchNorm2d: expected channels > 0, got {}", channels);
  Options plain = o;
  plain.requires_grad = false;
  weight = register_parameter("weight", ones({channels}, plain));
  bias = register_parameter("bias", zeros({channels}, plain));
  running_mean = register_buffer("running_mean", zeros({channels}, plain));
  running_var = register_buffer("running_var", ones({channels}, plain));
}

Tensor BatchNorm2d::forward(const Tensor& x) const {
  PACER_CHECK(x.dim() == 4 && x.size(1) == weight.size(0), "BatchNorm2d: expected input [N, {}, H, W], got shape {}",
              weight.size(0), x.sizes());
  return batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
}

}  // namespace pacer::nn
