#include "core/tensor_impl.h"

#include "core/autograd_meta.h"

namespace pacer {

Shape contiguous_strides(const Shape& sizes) {
  Shape s(sizes.size());
  int64_t acc = 1;
  for (size_t i = sizes.size(); i-- > 0;) {
    s[i] = acc;
    acc *= sizes[i] > 0 ? sizes[i] : 1;
  }
  return s;
}

int64_t shape_numel(const Shape& sizes) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return n;
}

TensorImpl::TensorImpl(Storage storage, DType dtype, Shape sizes, Shape strides, int64_t offset)
    : storage_(std::move(storage)), dtype_(dtype), sizes_(std::move(sizes)), strides_(std::move(strides)),
      offset_(offset) {
  refresh();
}

TensorImpl::~TensorImpl() = default;

void TensorImpl::set_geometry(Shape sizes, Shape strides, int64_t offset) {
  sizes_ = std::move(sizes);
  strides_ = std::move(strides);
  offset_ = offset;
  refresh();
}

// A tensor is contiguous when its strides are the row-major ones, ignoring size-1 dims
// (whose stride never matters), as PyTorch defines it.
void TensorImpl::refresh() {
  numel_ = shape_numel(sizes_);
  contiguous_ = true;
  int64_t expected = 1;
  for (size_t i = sizes_.size(); i-- > 0;) {
    if (sizes_[i] == 1) continue;
    if (strides_[i] != expected) {
      contiguous_ = false;
      break;
    }
    expected *= sizes_[i];
  }
  if (numel_ == 0) contiguous_ = true;
}

void TensorImpl::set_data(Storage storage, DType dtype, Shape sizes, Shape strides, int64_t offset) {
  storage_ = std::move(storage);
  dtype_ = dtype;
  set_geometry(std::move(sizes), std::move(strides), offset);
}

AutogradMeta& TensorImpl::autograd_mut() {
  if (!autograd_) autograd_ = std::make_unique<AutogradMeta>();
  return *autograd_;
}

}  // namespace pacer
