#include "core/tensor.h"

#include <cstring>

#include "core/autograd_meta.h"
#include "core/host_reads.h"

namespace pacer {

namespace {
int64_t wrap_dim(int64_t d, int64_t ndim) {
  PACER_CHECK(d >= -ndim && d < ndim, "dimension {} out of range: expected [{}, {}] for a {}-d tensor", d,
              -ndim, ndim - 1, ndim);
  return d < 0 ? d + ndim : d;
}
const Tensor kUndefined;
const std::shared_ptr<autograd::Node> kNoNode;
}  // namespace

int64_t Tensor::size(int64_t d) const { return sizes()[size_t(wrap_dim(d, dim()))]; }
int64_t Tensor::stride(int64_t d) const { return strides()[size_t(wrap_dim(d, dim()))]; }

void Tensor::throw_undefined() {
  PACER_FAIL("the tensor is undefined (a default-constructed Tensor); expected a tensor with data");
}

void Tensor::check_data_type(DType want) const {
  PACER_CHECK(defined(), "data_ptr: the tensor is undefined");
  PACER_CHECK(dtype() == want, "data_ptr: expected element type {}, but the tensor is {}", want, dtype());
}

double load_as_double(const void* p, DType dtype) {
  return dispatch_dtype(dtype, [&]<class T>() { return double(compute_t<T>(*static_cast<const T*>(p))); });
}

void store_from_double(void* p, DType dtype, double v) {
  dispatch_dtype(dtype, [&]<class T>() { *static_cast<T*>(p) = Scalar(v).to<T>(); });
}

Scalar Tensor::scalar_item() const {
  PACER_CHECK(defined(), "item: the tensor is undefined");
  check_host_read("item");
  PACER_CHECK(numel() == 1, "item: expected a tensor with one element, got shape {}", sizes());
  PACER_CHECK(is_cpu(), "item: expected a CPU tensor, got one on {}; move it with .to(kCPU)", device());
  return dispatch_dtype(dtype(), [&]<class T>() -> Scalar {
    T v = *static_cast<const T*>(data());
    if constexpr (std::is_same_v<T, bool>) return Scalar(v);
    else if constexpr (std::is_integral_v<T>) return Scalar(int64_t(v));
    else return Scalar(double(compute_t<T>(v)));
  });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  PACER_CHECK(defined(), "to_vector: the tensor is undefined");
  check_host_read("to_vector");
  PACER_CHECK(is_cpu(), "to_vector: expected a CPU tensor, got one on {}", device());
  std::vector<T> out;
  out.reserve(size_t(numel()));
  const int64_t n = dim();
  Shape index(size_t(n), 0);
  const char* base = static_cast<const char*>(data());
  const size_t es = element_size();
  for (int64_t k = 0; k < numel(); ++k) {
    int64_t off = 0;
    for (int64_t d = 0; d < n; ++d) off += index[d] * strides()[d];
    dispatch_dtype(dtype(), [&]<class S>() {
      S v;
      std::memcpy(&v, base + off * int64_t(es), sizeof(S));
      if constexpr (std::is_same_v<T, S>) out.push_back(v);
      else if constexpr (std::is_same_v<S, bool>) out.push_back(Scalar(v).to<T>());
      else if constexpr (std::is_integral_v<S>) out.push_back(Scalar(int64_t(v)).to<T>());
      else out.push_back(Scalar(double(compute_t<S>(v))).to<T>());
    });
    for (int64_t d = n - 1; d >= 0; --d) {
      if (++index[d] < sizes()[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

#define PACER_INSTANTIATE(T) template std::vector<T> Tensor::to_vector<T>() const;
PACER_INSTANTIATE(float)
PACER_INSTANTIATE(double)
PACER_INSTANTIATE(Half)
PACER_INSTANTIATE(BFloat16)
PACER_INSTANTIATE(int64_t)
PACER_INSTANTIATE(int32_t)
PACER_INSTANTIATE(uint8_t)
PACER_INSTANTIATE(bool)
#undef PACER_INSTANTIATE

bool Tensor::requires_grad() const {
  if (!impl_) return false;
  auto* m = impl_->autograd();
  return m && m->requires_grad;
}

Tensor& Tensor::set_requires_grad(bool on) {
  PACER_CHECK(defined(), "set_requires_grad: the tensor is undefined");
  if (!on && !impl_->autograd()) return *this;
  PACER_CHECK(!on || is_floating(dtype()),
              "set_requires_grad: only floating tensors can require gradients, got {}", dtype());
  PACER_CHECK(is_leaf(),
              "set_requires_grad: can only change requires_grad of a leaf tensor; detach() a "
              "non-leaf first");
  impl_->autograd_mut().requires_grad = on;
  return *this;
}

const Tensor& Tensor::grad() const {
  if (!impl_) return kUndefined;
  auto* m = impl_->autograd();
  if (!m) return kUndefined;
  return m->retained_grad ? *m->retained_grad : m->grad;
}

void Tensor::set_grad(const Tensor& g) {
  PACER_CHECK(defined(), "set_grad: the tensor is undefined");
  PACER_CHECK(!g.defined() || (g.sizes() == sizes() && g.dtype() == dtype()),
              "set_grad: expected a gradient of shape {} and dtype {}, got shape {} and dtype {}", sizes(),
              dtype(), g.sizes(), g.dtype());
  impl_->autograd_mut().grad = g;
}

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  if (!impl_) return kNoNode;
  auto* m = impl_->autograd();
  return m ? m->grad_fn : kNoNode;
}

bool Tensor::is_leaf() const { return grad_fn() == nullptr; }

Tensor empty_strided(const Shape& sizes, const Shape& strides, Options options) {
  PACER_CHECK(sizes.size() == strides.size(), "empty_strided: {} sizes but {} strides", sizes.size(),
              strides.size());
  int64_t extent = 1;
  for (size_t i = 0; i < sizes.size(); ++i) {
    PACER_CHECK(sizes[i] >= 0, "empty: expected non-negative sizes, got {}", sizes);
    if (sizes[i] == 0) extent = 0;
  }
  if (extent != 0)
    for (size_t i = 0; i < sizes.size(); ++i) extent += (sizes[i] - 1) * strides[i];
  auto storage = make_intrusive<StorageImpl>(size_t(extent) * element_size(options.dtype), options.device);
  Tensor t(make_intrusive<TensorImpl>(std::move(storage), options.dtype, sizes, strides, 0));
  if (options.requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor empty(const Shape& sizes, Options options) {
  return empty_strided(sizes, contiguous_strides(sizes), options);
}

Tensor make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset) {
  return Tensor(make_intrusive<TensorImpl>(base.storage(), base.dtype(), std::move(sizes), std::move(strides),
                                           offset));
}

Tensor from_blob(void* data, const Shape& sizes, DType dtype, std::function<void(void*)> deleter,
                 Device device) {
  int64_t n = shape_numel(sizes);
  auto storage = make_intrusive<StorageImpl>(data, size_t(n) * pacer::element_size(dtype), device,
                                             std::move(deleter));
  return Tensor(make_intrusive<TensorImpl>(std::move(storage), dtype, sizes, contiguous_strides(sizes), 0));
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& sizes, Options options) {
  Shape shape = sizes.empty() ? Shape{int64_t(values.size())} : sizes;
  PACER_CHECK(shape_numel(shape) == int64_t(values.size()),
              "from_vector: shape {} holds {} elements, but {} values were given", shape, shape_numel(shape),
              values.size());
  PACER_CHECK(options.device.is_cpu(), "from_vector: builds CPU tensors; move the result with .to(device)");
  Options o = options;
  o.requires_grad = false;
  Tensor t = empty(shape, o);
  dispatch_dtype(o.dtype, [&]<class S>() {
    S* p = static_cast<S*>(t.data());
    for (size_t i = 0; i < values.size(); ++i) {
      if constexpr (std::is_same_v<S, T>) p[i] = values[i];
      else p[i] = Scalar(double(compute_t<T>(values[i]))).to<S>();
    }
  });
  if (options.requires_grad) t.set_requires_grad(true);
  return t;
}

#define PACER_INSTANTIATE(T) template Tensor from_vector<T>(const std::vector<T>&, const Shape&, Options);
PACER_INSTANTIATE(float)
PACER_INSTANTIATE(double)
PACER_INSTANTIATE(Half)
PACER_INSTANTIATE(BFloat16)
PACER_INSTANTIATE(int64_t)
PACER_INSTANTIATE(int32_t)
PACER_INSTANTIATE(uint8_t)
PACER_INSTANTIATE(bool)
#undef PACER_INSTANTIATE

Tensor scalar_tensor(Scalar value, DType dtype, bool wrapped_number) {
  Tensor t = empty({}, {.dtype = dtype});
  dispatch_dtype(dtype, [&]<class T>() { *static_cast<T*>(t.data()) = value.to<T>(); });
  t.impl()->is_wrapped_number = wrapped_number;
  return t;
}

}  // namespace pacer
