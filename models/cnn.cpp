#include "models/cnn.h"

#include "models/mlp.h"
#include "ops/api.h"

namespace pacer::models {

Cnn::Cnn()
    : conv1_(register_module("conv1", std::make_shared<nn::Conv2d>(1, 16, nn::Conv2dOptions{.padding = {1, 1}}))),
      conv2_(register_module("conv2", std::make_shared<nn::Conv2d>(16, 32, nn::Conv2dOptions{.padding = {1, 1}}))),
      bn1_(register_module("bn1", std::make_shared<nn::BatchNorm2d>(16))),
      bn2_(register_module("bn2", std::make_shared<nn::BatchNorm2d>(32))),
      fc_(register_module("fc", std::make_shared<nn::Linear>(32 * 7 * 7, 10))) {}

Tensor Cnn::forward(const Tensor& x) const {
  Tensor h = x.dim() == 2 ? reshape(x, {-1, 1, 28, 28}) : x;
  PACER_CHECK(h.dim() == 4 && h.size(1) == 1 && h.size(2) == 28 && h.size(3) == 28,
              "Cnn: expected images [N, 784] or [N, 1, 28, 28], got shape {}", x.sizes());
  h = max_pool2d(relu(bn1_->forward(conv1_->forward(h))), {2, 2});
  h = max_pool2d(relu(bn2_->forward(conv2_->forward(h))), {2, 2});
  return fc_->forward(flatten(h, 1));
}

std::shared_ptr<ImageClassifier> make_classifier(const std::string& name) {
  if (name == "mlp") return std::make_shared<Mlp>();
  if (name == "cnn") return std::make_shared<Cnn>();
  PACER_FAIL("unknown model '{}': expected 'mlp' or 'cnn'", name);
}

}  // namespace pacer::models
