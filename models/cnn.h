#pragma once
/// The Fashion-MNIST CNN: [conv3x3(1->16) BN ReLU maxpool2] [conv3x3(16->32) BN ReLU
/// maxpool2] linear(32*7*7 -> 10). Layer names follow a PyTorch module with attributes
/// conv1, bn1, conv2, bn2, fc.

#include "models/image_classifier.h"
#include "nn/batch_norm.h"
#include "nn/conv2d.h"
#include "nn/linear.h"

namespace pacer::models {

class Cnn : public ImageClassifier {
 public:
  Cnn();
  /// Logits [N, 10] for flattened images [N, 784] (or [N, 1, 28, 28]).
  Tensor forward(const Tensor& x) const override;

 private:
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<nn::Linear> fc_;
};

}  // namespace pacer::models
