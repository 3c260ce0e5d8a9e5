#pragma once
/// SavedTensor: a tensor kept for backward, with the version it had when saved. Unpacking
/// after an in-place change throws, as PyTorch does, instead of computing a wrong gradient.

#include <string>

#include "core/tensor.h"

namespace pacer::autograd {

class SavedTensor {
 public:
  SavedTensor() = default;
  /// `is_output`: the tensor is an output of the node saving it. It is then stored without
  /// its autograd slot, so that the node and its output do not keep each other alive.
  SavedTensor(const Tensor& t, bool is_output);
  /// The saved tensor; throws if it was modified in place or already freed.
  Tensor unpack(const std::string& node_name) const;
  void reset() {
    data_ = Tensor();
    released_ = true;
  }
  bool defined() const { return data_.defined() || released_; }

 private:
  Tensor data_;
  uint32_t version_ = 0;
  bool released_ = false;
};

}  // namespace pacer::autograd
