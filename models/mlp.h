#pragma once
/// The Fashion-MNIST MLP: 784 -> hidden -> 10 with ReLU (Linear layers named fc1 / fc2 as
/// a PyTorch nn.Module with those attributes would name them).

#include "models/image_classifier.h"
#include "nn/linear.h"

namespace pacer::models {

class Mlp : public ImageClassifier {
 public:
  explicit Mlp(int64_t in = 784, int64_t hidden = 256, int64_t classes = 10);
  /// Logits [N, classes] for inputs [N, in].
  Tensor forward(const Tensor& x) const override;

 private:
  std::shared_ptr<nn::Linear> fc1_, fc2_;
};

}  // namespace pacer::models
