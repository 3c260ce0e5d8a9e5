#include "nn/sequential.h"

#include <string>

namespace pacer::nn {

Sequential::Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> layers) {
  for (const auto& l : layers) push_back(l);
}

Sequential::Sequential(const std::vector<std::shared_ptr<UnaryModule>>& layers) {
  for (const auto& l : layers) push_back(l);
}

void Sequential::push_back(std::shared_ptr<UnaryModule> layer) {
  PACER_CHECK(layer != nullptr, "Sequential: layer {} is null", layers_.size());
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
}

Tensor Sequential::forward(const Tensor& x) const {
  Tensor y = x;
  for (const auto& l : layers_) y = l->forward(y);
  return y;
}

const std::shared_ptr<UnaryModule>& Sequential::operator[](size_t i) const {
  PACER_CHECK(i < layers_.size(), "Sequential: index {} is out of range for {} layers", i, layers_.size());
  return layers_[i];
}

void Sequential::throw_wrong_type(size_t i) const {
  PACER_FAIL("Sequential: layer {} is not of the requested type", i);
}

}  // namespace pacer::nn
