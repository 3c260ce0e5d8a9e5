#pragma once
/// The interface of the Fashion-MNIST demo models: logits [N, classes] from flattened
/// 28x28 images [N, 784].

#include <memory>
#include <string>

#include "nn/module.h"

namespace pacer::models {

class ImageClassifier : public nn::Module {
 public:
  virtual Tensor forward(const Tensor& x) const = 0;
};

/// "mlp" (784-256-10) or "cnn" (two conv-BN-ReLU-pool blocks and a linear head).
std::shared_ptr<ImageClassifier> make_classifier(const std::string& name);

}  // namespace pacer::models
