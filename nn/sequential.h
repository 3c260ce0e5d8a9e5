#pragma once
/// Sequential: runs its layers in order, each one's output the next one's input
/// (torch.nn.Sequential). The layers are children named "0", "1", ..., so state_dict
/// names are "0.weight", "1.running_mean", ... as in PyTorch.

#include <initializer_list>
#include <memory>
#include <vector>

#include "nn/module.h"

namespace pacer::nn {

class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> layers);
  explicit Sequential(const std::vector<std::shared_ptr<UnaryModule>>& layers);

  /// Appends a layer as child str(size()).
  void push_back(std::shared_ptr<UnaryModule> layer);
  Tensor forward(const Tensor& x) const override;

  size_t size() const { return layers_.size(); }
  /// The i-th layer; throws when i is out of range.
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const;
  /// The i-th layer as T; throws when i is out of range or the layer is not a T.
  template <class T>
  std::shared_ptr<T> at(size_t i) const {
    auto p = std::dynamic_pointer_cast<T>((*this)[i]);
    if (!p) throw_wrong_type(i);
    return p;
  }

 private:
  [[noreturn]] void throw_wrong_type(size_t i) const;
  std::vector<std::shared_ptr<UnaryModule>> layers_;
};

}  // namespace pacer::nn
