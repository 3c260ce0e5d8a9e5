#pragma once
/// Tensor: a cheap handle (one pointer) to a ref-counted TensorImpl.
///
/// Core gives the data model: geometry, dtype, device, element access, printing. Math
/// lives in the ops layer as free functions (pacer::add(a, b), a + b, pacer::sum(x)).
/// A few methods are declared here but defined by higher layers, as in PyTorch:
/// backward / retain_grad / register_hook (autograd) and to(dtype/device) (ops).

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/scalar.h"
#include "core/tensor_impl.h"

namespace pacer {

namespace autograd {
class Node;
}

/// What a factory makes: `zeros({2, 3}, {.dtype = f64, .requires_grad = true})`.
struct Options {
  DType dtype = DType::F32;
  Device device = kCPU;
  bool requires_grad = false;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(IntrusivePtr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return bool(impl_); }
  TensorImpl* impl() const { return impl_.get(); }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  // --- geometry -----------------------------------------------------------------
  const Shape& sizes() const { return checked().sizes(); }
  const Shape& strides() const { return checked().strides(); }
  /// Size of dimension `d`; negative d counts from the end. Throws when out of range.
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t dim() const { return int64_t(checked().sizes().size()); }
  int64_t numel() const { return checked().numel(); }
  int64_t storage_offset() const { return checked().offset(); }
  bool is_contiguous() const { return checked().is_contiguous(); }
  DType dtype() const { return checked().dtype(); }
  Device device() const { return checked().device(); }
  bool is_cpu() const { return device().is_cpu(); }
  size_t element_size() const { return pacer::element_size(dtype()); }
  size_t nbytes() const { return size_t(numel()) * element_size(); }
  const Storage& storage() const { return checked().storage(); }

  // --- data ---------------------------------------------------------------------
  void* data() const { return checked().data(); }
  /// Typed pointer to the first element; checks that T matches the dtype.
  template <class T>
  T* data_ptr() const {
    check_data_type(dtype_v<T>);
    return static_cast<T*>(impl_->data());
  }
  /// The single element of a one-element CPU tensor, converted to T.
  template <class T>
  T item() const {
    return scalar_item().to<T>();
  }
  Scalar scalar_item() const;
  /// All elements (in logical row-major order) converted to T; CPU only.
  template <class T>
  std::vector<T> to_vector() const;

  // --- autograd slot (defined in core; meaning given by autograd/) --------------
  bool requires_grad() const;
  /// Marks a leaf as needing a gradient. Only floating tensors can require grad.
  Tensor& set_requires_grad(bool on = true);
  /// The accumulated gradient of a leaf (undefined until a backward reaches it).
  const Tensor& grad() const;
  void set_grad(const Tensor& g);
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  bool is_leaf() const;
  uint32_t version() const { return checked().storage()->version(); }
  void bump_version() const { checked().storage()->bump_version(); }

  // --- defined in autograd/ -----------------------------------------------------
  /// Backpropagates from this tensor. A non-scalar needs `gradient` (same shape).
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false,
                bool create_graph = false) const;
  /// Keeps .grad() of a non-leaf after backward.
  void retain_grad() const;
  /// Runs `hook(grad)` when this tensor's gradient is computed; a defined return
  /// value replaces the gradient.
  void register_hook(std::function<Tensor(const Tensor&)> hook) const;

  // --- defined in ops/ ----------------------------------------------------------
  /// Copy converted to `dtype` (this tensor itself when it already is); differentiable.
  Tensor to(DType dtype) const;
  /// Copy on `device` (this tensor itself when it already is there); differentiable.
  Tensor to(Device device) const;

  /// PyTorch-like text: tensor([[1.0000, 2.0000]], dtype=float64, requires_grad=True).
  std::string str() const;

 private:
  /// The impl, or a clear error for an undefined tensor (instead of a crash).
  const TensorImpl& checked() const {
    if (PACER_UNLIKELY(!impl_)) throw_undefined();
    return *impl_;
  }
  [[noreturn]] static void throw_undefined();
  void check_data_type(DType want) const;
  IntrusivePtr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

/// An uninitialized tensor.
Tensor empty(const Shape& sizes, Options options = {});
/// A tensor with the given geometry over fresh storage large enough for it.
Tensor empty_strided(const Shape& sizes, const Shape& strides, Options options = {});
/// A view with new geometry over `base`'s storage (no autograd; ops/ wraps it).
Tensor make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset);
/// Wraps caller-owned memory without copying; `deleter` (optional) runs on release.
Tensor from_blob(void* data, const Shape& sizes, DType dtype, std::function<void(void*)> deleter = {},
                 Device device = kCPU);
/// A CPU tensor holding a copy of `values`, with shape `sizes` (default: 1-D).
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& sizes = {}, Options options = {.dtype = dtype_v<T>});
/// A 0-dim tensor from a number; marked as a wrapped number for type promotion.
Tensor scalar_tensor(Scalar value, DType dtype, bool wrapped_number = false);

/// Reads the element at storage position p (as the tensor's dtype) as a double.
double load_as_double(const void* p, DType dtype);
/// Writes v converted to `dtype` at p.
void store_from_double(void* p, DType dtype, double v);

}  // namespace pacer
