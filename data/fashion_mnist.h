#pragma once
/// Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017): 60k train / 10k test 28x28 grey images in
/// 10 classes, as shipped by Debian's dataset-fashion-mnist in IDX format.

#include <string>

#include "core/tensor.h"

namespace pacer::data {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct ImageClassificationSet {
  Tensor images;  // [N, 784] f32, normalized
  Tensor labels;  // [N] i64 in [0, 10)
  int64_t size() const { return labels.numel(); }
};

/// Loads split "train" or "test" from `dir` ({train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]),
/// scaled to [0, 1] and normalized with the training set's mean 0.2860 and std 0.3530.
/// `limit` > 0 keeps the first `limit` samples.
ImageClassificationSet load_fashion_mnist(const std::string& dir, const std::string& split, int64_t limit = 0);

}  // namespace pacer::data
