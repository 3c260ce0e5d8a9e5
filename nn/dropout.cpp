#include "nn/dropout.h"

#include "ops/api.h"

namespace pacer::nn {

Dropout::Dropout(double p_) : p(p_) {
  PACER_CHECK(p >= 0 && p <= 1, "Dropout: expected a probability in [0, 1], got {}", p);
}

Tensor Dropout::forward(const Tensor& x) const { return dropout(x, p, is_training()); }

}  // namespace pacer::nn
