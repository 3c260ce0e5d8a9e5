#pragma once
/// Parameter initialization (drawn from the default generator unless one is given).

#include "core/generator.h"
#include "core/tensor.h"

namespace pacer::nn::init {

/// Uniform in [lo, hi), as a fresh leaf (no history).
Tensor uniform(const Shape& sizes, double lo, double hi, Options options = {}, Generator* gen = nullptr);

}  // namespace pacer::nn::init
