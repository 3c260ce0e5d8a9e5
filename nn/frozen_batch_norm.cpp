#include "nn/frozen_batch_norm.h"

#include "ops/api.h"

namespace pacer::nn {

FrozenBatchNorm2d::FrozenBatchNorm2d(int64_t channels, double eps_, Options o) : eps(eps_) {
  PACER_CHECK(channels > 0, "FrozenBatchNorm2d: expected channels > 0, got {}", channels);
  PACER_CHECK(eps >= 0, "FrozenBatchNorm2d: expected eps >= 0, got {}", eps);
  Options plain = o;
  plain.requires_grad = false;
  weight = register_buffer("weight", ones({channels}, plain));
  bias = register_buffer("bias", zeros({channels}, plain));
  running_mean = register_buffer("running_mean", zeros({channels}, plain));
  running_var = register_buffer("running_var", ones({channels}, plain));
}

Tensor FrozenBatchNorm2d::forward(const Tensor& x) const {
  const int64_t C = weight.size(0);
  PACER_CHECK(x.dim() == 4 && x.size(1) == C, "FrozenBatchNorm2d: expected input [N, {}, H, W], got shape {}", C,
              x.sizes());
  Tensor scale = weight * rsqrt(running_var + eps);
  Tensor shift = bias - running_mean * scale;
  return x * reshape(scale, {1, C, 1, 1}) + reshape(shift, {1, C, 1, 1});
}

}  // namespace pacer::nn
