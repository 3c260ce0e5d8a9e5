#include "nn/functional.h"

#include "ops/api.h"

namespace pacer::nn::functional {

Tensor cross_entropy(const Tensor& logits, const Tensor& target) {
  PACER_CHECK(logits.dim() == 2, "cross_entropy: expected logits [N, C], got shape {}", logits.sizes());
  PACER_CHECK(target.dim() == 1 && target.size(0) == logits.size(0),
              "cross_entropy: expected {} targets of shape [N], got shape {}", logits.size(0), target.sizes());
  PACER_CHECK(target.dtype() == DType::I64 || target.dtype() == DType::I32,
              "cross_entropy: expected integer class indices, got {}", target.dtype());
  Tensor logp = log_softmax(logits, 1);
  return neg(mean(gather(logp, 1, unsqueeze(target, 1))));
}

}  // namespace pacer::nn::functional
