#include "optim/sgd.h"

#include "autograd/grad_mode.h"
#include "ops/api.h"

namespace pacer::optim {

Sgd::Sgd(std::vector<Tensor> params, SgdOptions o) : Optimizer(std::move(params)), options_(o) {
  PACER_CHECK(o.lr >= 0, "SGD: expected lr >= 0, got {}", o.lr);
  PACER_CHECK(o.momentum >= 0, "SGD: expected momentum >= 0, got {}", o.momentum);
  PACER_CHECK(o.weight_decay >= 0, "SGD: expected weight_decay >= 0, got {}", o.weight_decay);
  PACER_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
              "SGD: Nesterov momentum needs momentum > 0 and zero dampening");
  momentum_buffers_.resize(params_.size());
}

void Sgd::step() {
  NoGradGuard no_grad;
  const SgdOptions& o = options_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (o.weight_decay != 0) g = g + p * o.weight_decay;
    if (o.momentum != 0) {
      Tensor& buf = momentum_buffers_[i];
      if (!buf.defined()) {
        buf = clone(g);
      } else {
        mul_(buf, wrap(o.momentum));
        add_(buf, g, 1.0 - o.dampening);
      }
      g = o.nesterov ? g + buf * o.momentum : buf;
    }
    add_(p, g, -o.lr);
  }
}

}  // namespace pacer::optim
