#include "models/mlp.h"

#include "ops/api.h"

namespace pacer::models {

Mlp::Mlp(int64_t in, int64_t hidden, int64_t classes)
    : fc1_(register_module("fc1", std::make_shared<nn::Linear>(in, hidden))),
      fc2_(register_module("fc2", std::make_shared<nn::Linear>(hidden, classes))) {}

Tensor Mlp::forward(const Tensor& x) const { return fc2_->forward(relu(fc1_->forward(x))); }

}  // namespace pacer::models
