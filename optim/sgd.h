#pragma once
/// SGD with momentum, dampening, Nesterov and weight decay, with torch.optim.SGD's update:
///   g = grad + wd * p;  buf = momentum * buf + (1 - dampening) * g  (buf = g at step 1);
///   g = nesterov ? g + momentum * buf : buf;  p -= lr * g.

#include "optim/optimizer.h"

namespace pacer::optim {

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

class Sgd final : public Optimizer {
 public:
  Sgd(std::vector<Tensor> params, SgdOptions options);
  void step() override;
  SgdOptions& options() { return options_; }

 private:
  SgdOptions options_;
  std::vector<Tensor> momentum_buffers_;
};

}  // namespace pacer::optim
