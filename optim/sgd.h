#pragma once
/// SGD with momentum, dampening, Nesterov and weight decay, with torch.optim.SGD's update
/// (per parameter group):
///   g = grad + wd * p;  buf = momentum * buf + (1 - dampening) * g  (buf = g at step 1);
///   g = nesterov ? g + momentum * buf : buf;  p -= lr * g.
/// State: "momentum_buffer" (only when momentum != 0).

#include "optim/optimizer.h"

namespace pacer::optim {

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;

  std::vector<Setting> settings();
  /// Throws naming `who` when an option is out of range.
  void check(const std::string& who) const;
};

class Sgd final : public TypedOptimizer<SgdOptions> {
 public:
  /// One group holding every parameter.
  Sgd(std::vector<Tensor> params, SgdOptions options);
  explicit Sgd(const std::vector<ParamGroup<SgdOptions>>& groups);
  void update() override;
  bool supports_lr_tensors() const override { return true; }
};

}  // namespace pacer::optim
