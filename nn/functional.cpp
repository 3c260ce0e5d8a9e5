#include "nn/functional.h"

#include "ops/api.h"

namespace pacer::nn::functional {

Tensor cross_entropy(const Tensor& logits, const Tensor& target) {
  PACER_CHECK(logits.dim() == 2, "cross_entropy: expected logits [N, C], got shape {}", logits.sizes());
  return pacer::cross_entropy(logits, target);
}

}  // namespace pacer::nn::functional
