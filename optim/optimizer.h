#pragma once
/// Optimizer: updates a list of parameters from their .grad(), in place, without
/// recording history.

#include <vector>

#include "core/tensor.h"

namespace pacer::optim {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> params);
  virtual ~Optimizer() = default;
  /// One update from the current gradients (parameters without a gradient are skipped).
  virtual void step() = 0;
  /// Drops every gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad();
  const std::vector<Tensor>& params() const { return params_; }

 protected:
  std::vector<Tensor> params_;
};

}  // namespace pacer::optim
