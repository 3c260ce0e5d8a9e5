#include "optim/sgd.h"

#include "autograd/grad_mode.h"
#include "ops/api.h"

namespace pacer::optim {

namespace {
constexpr size_t kMomentumBuffer = 0;
}  // namespace

std::vector<Setting> SgdOptions::settings() {
  return {{"lr", &lr},
          {"momentum", &momentum},
          {"dampening", &dampening},
          {"weight_decay", &weight_decay},
          {"nesterov", &nesterov}};
}

void SgdOptions::check(const std::string& who) const {
  PACER_CHECK(lr >= 0, "{}: expected lr >= 0, got {}", who, lr);
  PACER_CHECK(momentum >= 0, "{}: expected momentum >= 0, got {}", who, momentum);
  PACER_CHECK(weight_decay >= 0, "{}: expected weight_decay >= 0, got {}", who, weight_decay);
  PACER_CHECK(!nesterov || (momentum > 0 && dampening == 0),
              "{}: Nesterov momentum needs momentum > 0 and zero dampening (got momentum {}, dampening {})", who,
              momentum, dampening);
}

Sgd::Sgd(std::vector<Tensor> params, SgdOptions options)
    : Sgd(std::vector<ParamGroup<SgdOptions>>{{std::move(params), options}}) {}

Sgd::Sgd(const std::vector<ParamGroup<SgdOptions>>& groups) : TypedOptimizer("SGD", groups, {"momentum_buffer"}) {}

void Sgd::update() {
  NoGradGuard no_grad;
  for (size_t group = 0; group < num_groups(); ++group) {
    const SgdOptions& o = options_[group];
    for (size_t i = group_begin(group); i < group_end(group); ++i) {
      Tensor& p = params_[i];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      if (o.weight_decay != 0) g = g + p * o.weight_decay;
      if (o.momentum != 0) {
        Tensor& buf = state(i, kMomentumBuffer);
        if (!buf.defined()) {
          buf = clone(g);
        } else {
          mul_(buf, wrap(o.momentum));
          add_(buf, g, 1.0 - o.dampening);
        }
        g = o.nesterov ? g + buf * o.momentum : buf;
      }
      if (const Tensor& neg_lr = neg_lr_tensor(group); neg_lr.defined()) add_(p, g * neg_lr);
      else add_(p, g, -o.lr);
    }
  }
}

}  // namespace pacer::optim
