#include "optim/adam.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/api.h"

namespace pacer::optim {

namespace {

constexpr size_t kStep = 0, kExpAvg = 1, kExpAvgSq = 2;
const std::vector<std::string> kSlots = {"step", "exp_avg", "exp_avg_sq"};

// AdamOptions and AdamWOptions have the same fields, so they share these.
template <class O>
std::vector<Setting> adam_settings(O& o) {
  return {{"lr", &o.lr}, {"betas", &o.betas}, {"eps", &o.eps}, {"weight_decay", &o.weight_decay}};
}

template <class O>
void adam_check(const O& o, const std::string& who) {
  PACER_CHECK(o.lr >= 0, "{}: expected lr >= 0, got {}", who, o.lr);
  PACER_CHECK(o.eps >= 0, "{}: expected eps >= 0, got {}", who, o.eps);
  for (size_t j = 0; j < 2; ++j)
    PACER_CHECK(o.betas[j] >= 0 && o.betas[j] < 1, "{}: expected 0 <= betas[{}] < 1, got {}", who, j, o.betas[j]);
  PACER_CHECK(o.weight_decay >= 0, "{}: expected weight_decay >= 0, got {}", who, o.weight_decay);
}

// One parameter's update (the formula in adam.h). The bias corrections are host numbers
// computed in double, as torch's single-tensor path does with a CPU step counter.
template <class O>
void adam_update(Tensor& p, Tensor& step, Tensor& m, Tensor& v, const O& o, bool decoupled) {
  Tensor g = p.grad();
  if (!step.defined()) {
    step = scalar_tensor(int64_t(0), DType::I64);
    m = zeros_like(p);
    v = zeros_like(p);
  }
  const int64_t t = step.item<int64_t>() + 1;
  step = scalar_tensor(t, DType::I64);
  const auto [beta1, beta2] = o.betas;
  if (o.weight_decay != 0) {
    if (decoupled)
      mul_(p, wrap(1.0 - o.lr * o.weight_decay));
    else
      g = g + p * o.weight_decay;
  }
  mul_(m, wrap(beta1));
  add_(m, g, 1.0 - beta1);
  mul_(v, wrap(beta2));
  add_(v, g * g, 1.0 - beta2);
  const double bias_correction1 = 1.0 - std::pow(beta1, double(t));
  const double bias_correction2 = 1.0 - std::pow(beta2, double(t));
  const Tensor denom = sqrt(v) / std::sqrt(bias_correction2) + o.eps;
  add_(p, m / denom, -o.lr / bias_correction1);
}

}  // namespace

std::vector<Setting> AdamOptions::settings() { return adam_settings(*this); }
void AdamOptions::check(const std::string& who) const { adam_check(*this, who); }
std::vector<Setting> AdamWOptions::settings() { return adam_settings(*this); }
void AdamWOptions::check(const std::string& who) const { adam_check(*this, who); }

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : Adam(std::vector<ParamGroup<AdamOptions>>{{std::move(params), options}}) {}
Adam::Adam(const std::vector<ParamGroup<AdamOptions>>& groups) : TypedOptimizer("Adam", groups, kSlots) {}

void Adam::update() {
  NoGradGuard no_grad;
  for (size_t group = 0; group < num_groups(); ++group)
    for (size_t i = group_begin(group); i < group_end(group); ++i)
      if (params_[i].grad().defined())
        adam_update(params_[i], state(i, kStep), state(i, kExpAvg), state(i, kExpAvgSq), options_[group], false);
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options)
    : AdamW(std::vector<ParamGroup<AdamWOptions>>{{std::move(params), options}}) {}
AdamW::AdamW(const std::vector<ParamGroup<AdamWOptions>>& groups) : TypedOptimizer("AdamW", groups, kSlots) {}

void AdamW::update() {
  NoGradGuard no_grad;
  for (size_t group = 0; group < num_groups(); ++group)
    for (size_t i = group_begin(group); i < group_end(group); ++i)
      if (params_[i].grad().defined())
        adam_update(params_[i], state(i, kStep), state(i, kExpAvg), state(i, kExpAvgSq), options_[group], true);
}

}  // namespace pacer::optim
