#include "optim/clip.h"

#include "autograd/grad_mode.h"
#include "ops/api.h"

namespace pacer::optim {

Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  PACER_CHECK(max_norm >= 0, "clip_grad_norm_: expected max_norm >= 0, got {}", max_norm);
  NoGradGuard no_grad;
  std::vector<Tensor> grads, norms;
  for (const Tensor& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return scalar_tensor(0.0, DType::F32);
  for (const Tensor& g : grads) norms.push_back(norm(g).to(grads[0].device()));
  const Tensor total = norm(stack(norms));
  const Tensor coef = clamp(max_norm / (total + 1e-6), std::nullopt, 1.0);
  for (Tensor g : grads) mul_(g, coef.to(g.device()));
  return total;
}

}  // namespace pacer::optim
