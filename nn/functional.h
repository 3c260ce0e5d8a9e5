#pragma once
/// Functional forms of losses used before the loss ops of a later issue arrive.

#include "core/tensor.h"

namespace pacer::nn::functional {

/// Mean cross-entropy of logits [N, C] against class indices [N] (i64).
Tensor cross_entropy(const Tensor& logits, const Tensor& target);

}  // namespace pacer::nn::functional
