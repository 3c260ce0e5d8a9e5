#include "autograd/saved_tensor.h"

namespace pacer::autograd {

SavedTensor::SavedTensor(const Tensor& t, bool is_output) {
  if (!t.defined()) return;
  data_ = is_output ? make_view(t, t.sizes(), t.strides(), t.storage_offset()) : t;
  version_ = t.version();
}

Tensor SavedTensor::unpack(const std::string& node_name) const {
  PACER_CHECK(!released_,
              "{}: trying to backward through the graph a second time (its saved tensors were freed); "
              "pass retain_graph=true to the first backward",
              node_name);
  if (!data_.defined()) return data_;
  PACER_CHECK(data_.version() == version_,
              "{}: a tensor needed for the gradient ({} {}) was modified by an in-place operation: it is "
              "at version {}, expected version {}",
              node_name, data_.dtype(), data_.sizes(), data_.version(), version_);
  return data_;
}

}  // namespace pacer::autograd
