#pragma once
/// Functional helpers of the demo models (thin wrappers over ops/api.h).

#include "core/tensor.h"

namespace pacer::nn::functional {

/// Mean cross-entropy of logits [N, C] against class indices [N]: pacer::cross_entropy.
Tensor cross_entropy(const Tensor& logits, const Tensor& target);

}  // namespace pacer::nn::functional
