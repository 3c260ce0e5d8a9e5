#pragma once
/// Adam and AdamW with torch.optim's update (torch 1.13, single-tensor path; amsgrad is
/// not implemented). Per parameter, at step t (counted per parameter, from 1):
///   AdamW only: p *= 1 - lr * wd                       (decoupled weight decay)
///   Adam only:  g = grad + wd * p                      (L2 penalty folded into g)
///   m = beta1 * m + (1 - beta1) * g
///   v = beta2 * v + (1 - beta2) * g * g
///   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// eps is added after the square root and the bias correction, as torch does.
/// State: "step" (i64 scalar, on the CPU), "exp_avg" (m), "exp_avg_sq" (v).

#include "optim/optimizer.h"

namespace pacer::optim {

struct AdamOptions {
  double lr = 1e-3;
  std::array<double, 2> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0;

  std::vector<Setting> settings();
  void check(const std::string& who) const;
};

/// The same fields as AdamOptions; only weight_decay's default differs (torch's 1e-2).
struct AdamWOptions {
  double lr = 1e-3;
  std::array<double, 2> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;

  std::vector<Setting> settings();
  void check(const std::string& who) const;
};

class Adam final : public TypedOptimizer<AdamOptions> {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options);
  explicit Adam(const std::vector<ParamGroup<AdamOptions>>& groups);
  void update() override;
};

class AdamW final : public TypedOptimizer<AdamWOptions> {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions options);
  explicit AdamW(const std::vector<ParamGroup<AdamWOptions>>& groups);
  void update() override;
};

}  // namespace pacer::optim
