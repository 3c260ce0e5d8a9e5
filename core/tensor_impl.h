#pragma once
/// TensorImpl: storage + sizes + strides + offset + dtype, and an autograd slot.

#include <memory>

#include "core/dtype.h"
#include "core/small_vector.h"
#include "core/storage.h"

namespace pacer {

struct AutogradMeta;

class TensorImpl final : public RefCounted {
 public:
  TensorImpl(Storage storage, DType dtype, Shape sizes, Shape strides, int64_t offset);
  ~TensorImpl() override;

  const Storage& storage() const { return storage_; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_->device(); }
  const Shape& sizes() const { return sizes_; }
  const Shape& strides() const { return strides_; }
  int64_t offset() const { return offset_; }
  int64_t numel() const { return numel_; }
  bool is_contiguous() const { return contiguous_; }
  void* data() const {
    return static_cast<char*>(storage_->data()) + offset_ * int64_t(element_size(dtype_));
  }

  /// Replaces the view geometry (used by in-place shape changes such as resize of empties).
  void set_geometry(Shape sizes, Shape strides, int64_t offset);
  /// Replaces storage, dtype and geometry while keeping this impl (so every handle sees the
  /// change) and its autograd slot: PyTorch's `tensor.data = other` (Module::to uses it).
  void set_data(Storage storage, DType dtype, Shape sizes, Shape strides, int64_t offset);

  /// A number that came from a C++ scalar (x + 2): it takes part in type promotion only
  /// by category, as in PyTorch.
  bool is_wrapped_number = false;

  /// For outputs of view ops: the tensor whose storage this one views (the root of a
  /// chain of views). Autograd refuses in-place updates of such views when gradients are
  /// involved, because the base's history would miss them.
  IntrusivePtr<TensorImpl> view_base;

  AutogradMeta* autograd() const { return autograd_.get(); }
  AutogradMeta& autograd_mut();

 private:
  void refresh();

  Storage storage_;
  DType dtype_;
  Shape sizes_, strides_;
  int64_t offset_ = 0;
  int64_t numel_ = 1;
  bool contiguous_ = true;
  std::unique_ptr<AutogradMeta> autograd_;
};

/// Row-major strides for `sizes`.
Shape contiguous_strides(const Shape& sizes);
/// Product of sizes (1 for a scalar).
int64_t shape_numel(const Shape& sizes);

}  // namespace pacer
