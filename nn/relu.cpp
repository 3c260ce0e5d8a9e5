#include "nn/relu.h"

#include "ops/api.h"

namespace pacer::nn {

Tensor ReLU::forward(const Tensor& x) const { return relu(x); }

}  // namespace pacer::nn
