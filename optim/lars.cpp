#include "optim/lars.h"

#include "autograd/grad_mode.h"
#include "ops/api.h"

namespace pacer::optim {

namespace {
constexpr size_t kMomentumBuffer = 0;
}  // namespace

std::vector<Setting> LarsOptions::settings() {
  return {{"lr", &lr},   {"momentum", &momentum}, {"weight_decay", &weight_decay},
          {"eta", &eta}, {"epsilon", &epsilon},   {"exclude_from_lars", &exclude_from_lars}};
}

void LarsOptions::check(const std::string& who) const {
  PACER_CHECK(lr >= 0, "{}: expected lr >= 0, got {}", who, lr);
  PACER_CHECK(momentum >= 0, "{}: expected momentum >= 0, got {}", who, momentum);
  PACER_CHECK(weight_decay >= 0, "{}: expected weight_decay >= 0, got {}", who, weight_decay);
  PACER_CHECK(eta > 0, "{}: expected eta > 0, got {}", who, eta);
  PACER_CHECK(epsilon >= 0, "{}: expected epsilon >= 0, got {}", who, epsilon);
  PACER_CHECK(!exclude_from_lars || weight_decay == 0,
              "{}: a group with exclude_from_lars takes no weight decay; expected weight_decay 0, got {}", who,
              weight_decay);
}

Lars::Lars(std::vector<Tensor> params, LarsOptions options)
    : Lars(std::vector<ParamGroup<LarsOptions>>{{std::move(params), options}}) {}
Lars::Lars(const std::vector<ParamGroup<LarsOptions>>& groups) : TypedOptimizer("LARS", groups, {"momentum_buffer"}) {}

void Lars::update() {
  NoGradGuard no_grad;
  for (size_t group = 0; group < num_groups(); ++group) {
    const LarsOptions& o = options_[group];
    for (size_t i = group_begin(group); i < group_end(group); ++i) {
      Tensor& p = params_[i];
      const Tensor& g = p.grad();
      if (!g.defined()) continue;
      Tensor d = g;
      if (!o.exclude_from_lars) {
        // The trust ratio stays a 0-d tensor on the parameter's device: no host sync.
        const Tensor w_norm = norm(p), g_norm = norm(g);
        const Tensor ratio = o.eta * w_norm / (g_norm + w_norm * o.weight_decay + o.epsilon);
        const Tensor trust = where(logical_and(w_norm > 0.0, g_norm > 0.0), ratio, ones_like(ratio));
        d = (o.weight_decay != 0 ? g + p * o.weight_decay : g) * trust;
      }
      if (o.momentum != 0) {
        Tensor& buf = state(i, kMomentumBuffer);
        if (!buf.defined()) {
          buf = clone(d);
        } else {
          mul_(buf, wrap(o.momentum));
          add_(buf, d);
        }
        d = buf;
      }
      if (const Tensor& neg_lr = neg_lr_tensor(group); neg_lr.defined()) add_(p, d * neg_lr);
      else add_(p, d, -o.lr);
    }
  }
}

}  // namespace pacer::optim
