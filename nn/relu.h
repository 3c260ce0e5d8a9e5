#pragma once
/// ReLU: max(x, 0) elementwise, as torch.nn.ReLU (no parameters).

#include "nn/module.h"

namespace pacer::nn {

class ReLU : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) const override;
};

}  // namespace pacer::nn
