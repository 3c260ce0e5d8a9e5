#include "optim/optimizer.h"

namespace pacer::optim {

Optimizer::Optimizer(std::vector<Tensor> params) : params_(std::move(params)) {
  for (size_t i = 0; i < params_.size(); ++i)
    PACER_CHECK(params_[i].defined() && params_[i].requires_grad() && params_[i].is_leaf(),
                "optimizer: parameter {} must be a leaf tensor that requires grad", i);
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.set_grad(Tensor());
}

}  // namespace pacer::optim
