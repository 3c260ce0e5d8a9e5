// CUDA kernels of the pointwise ops: the same functors as ops/cpu/pointwise.cpp
// (ops/common/pointwise_math.h) on the CUDA loop engine (loops.cuh).
#include "ops/common/pointwise_math.h"
#include "ops/cuda/loops.cuh"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

template <class F>
void unary_same(OpCall& c) {
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
    if constexpr (!std::is_same_v<T, bool>) cuda_kernel<T, T>(c.out(0), {&c.in(0)}, F{});
  });
}

template <class F>
void unary_float(OpCall& c) {
  dispatch_floating(c.out(0).dtype(), c.op.name, [&]<class T>() { cuda_kernel<T, T>(c.out(0), {&c.in(0)}, F{}); });
}

template <class F>
void binary_same(OpCall& c) {
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() { cuda_kernel<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, F{}); });
}

template <class F>
void binary_numeric(OpCall& c) {
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
    if constexpr (!std::is_same_v<T, bool>) cuda_kernel<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, F{});
  });
}

template <class F>
void binary_float(OpCall& c) {
  dispatch_floating(c.out(0).dtype(), c.op.name,
                    [&]<class T>() { cuda_kernel<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, F{}); });
}

template <class F>
void compare(OpCall& c) {
  dispatch_dtype(c.in(0).dtype(), [&]<class T>() { cuda_kernel<bool, T, T>(c.out(0), {&c.in(0), &c.in(1)}, F{}); });
}

// g * d gelu(x) / dx, with either form of gelu's derivative.
template <class Grad>
struct GeluBackward {
  template <class C>
  PACER_HOST_DEVICE C operator()(C g, C x) const { return g * Grad{}(x); }
};

void gelu_kernel(OpCall& c) {
  const bool tanh_approx = c.attrs.str("approximate") == "tanh";
  dispatch_floating(c.out(0).dtype(), "gelu", [&]<class T>() {
    if (tanh_approx) cuda_kernel<T, T>(c.out(0), {&c.in(0)}, math::GeluTanh{});
    else cuda_kernel<T, T>(c.out(0), {&c.in(0)}, math::GeluErf{});
  });
}

void gelu_backward_kernel(OpCall& c) {
  const bool tanh_approx = c.attrs.str("approximate") == "tanh";
  dispatch_floating(c.out(0).dtype(), "gelu_backward", [&]<class T>() {
    if (tanh_approx) cuda_kernel<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, GeluBackward<math::GeluTanhGrad>{});
    else cuda_kernel<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, GeluBackward<math::GeluErfGrad>{});
  });
}

void clamp_kernel(OpCall& c) {
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
    using C = compute_t<T>;
    math::Clamp<C> f{C(0), C(0), c.attrs.has("min"), c.attrs.has("max")};
    if (f.has_lo) f.lo = c.attrs.scalar("min").to<C>();
    if (f.has_hi) f.hi = c.attrs.scalar("max").to<C>();
    cuda_kernel<T, T>(c.out(0), {&c.in(0)}, f);
  });
}

struct Square {
  template <class C>
  PACER_HOST_DEVICE C operator()(C a) const { return a * a; }
};

void pow_scalar_kernel(OpCall& c) {
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
    using C = compute_t<T>;
    if constexpr (!std::is_same_v<T, bool>) {
      const C p = c.attrs.scalar("exponent").to<C>();
      if constexpr (std::is_floating_point_v<C>) {
        if (p == C(2)) return cuda_kernel<T, T>(c.out(0), {&c.in(0)}, Square{});
      }
      cuda_kernel<T, T>(c.out(0), {&c.in(0)}, math::PowScalar<C>{p});
    }
  });
}

template <class O>
struct Convert {
  template <class V>
  PACER_HOST_DEVICE auto operator()(V v) const {
    if constexpr (std::is_same_v<O, bool>) return v != V(0);
    else return v;
  }
};

// Any dtype to any dtype on one device, with broadcasting: cast, clone and copy_ share it.
void convert(const Tensor& out, const Tensor& in) {
  dispatch_dtype(out.dtype(), [&]<class O>() {
    dispatch_dtype(in.dtype(), [&]<class I>() { cuda_kernel<O, I>(out, {&in}, Convert<O>{}); });
  });
}

template <class C>
struct AddScaled {
  C alpha;
  PACER_HOST_DEVICE C operator()(C x, C y) const { return x + alpha * y; }
};

void add_scaled_kernel(OpCall& c) {
  const Scalar& alpha = c.attrs.scalar("alpha");
  if (alpha.is_integral() && alpha.to_int() == 1) return binary_same<math::Add>(c);
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
    if constexpr (!std::is_same_v<T, bool>) {
      using C = compute_t<T>;
      cuda_kernel<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, AddScaled<C>{alpha.to<C>()});
    }
  });
}

void where_kernel(OpCall& c) {
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
    cuda_kernel<T, bool, T, T>(c.out(0), {&c.in(0), &c.in(1), &c.in(2)}, math::Where{});
  });
}

template <class C>
struct Constant {
  C value;
  PACER_HOST_DEVICE C operator()() const { return value; }
};

void fill_kernel(OpCall& c) {
  Tensor& out = c.out(0);
  const Scalar& v = c.attrs.scalar("value");
  dispatch_dtype(out.dtype(), [&]<class T>() {
    const T value = v.to<T>();
    cuda_kernel<T>(out, {}, Constant<compute_t<T>>{compute_t<T>(value)});
  });
}

void logical_not_kernel(OpCall& c) {
  dispatch_dtype(c.in(0).dtype(), [&]<class T>() { cuda_kernel<bool, T>(c.out(0), {&c.in(0)}, math::LogicalNot{}); });
}

}  // namespace

PACER_KERNEL(neg, CUDA, unary_same<math::Neg>);
PACER_KERNEL(exp, CUDA, unary_float<math::Exp>);
PACER_KERNEL(log, CUDA, unary_float<math::Log>);
PACER_KERNEL(sqrt, CUDA, unary_float<math::Sqrt>);
PACER_KERNEL(rsqrt, CUDA, unary_float<math::Rsqrt>);
PACER_KERNEL(abs, CUDA, unary_same<math::Abs>);
PACER_KERNEL(sign, CUDA, unary_same<math::Sign>);
PACER_KERNEL(relu, CUDA, unary_same<math::Relu>);
PACER_KERNEL(sigmoid, CUDA, unary_float<math::Sigmoid>);
PACER_KERNEL(tanh, CUDA, unary_float<math::Tanh>);
PACER_KERNEL(gelu, CUDA, gelu_kernel);
PACER_KERNEL(gelu_backward, CUDA, gelu_backward_kernel);
PACER_KERNEL(clamp, CUDA, clamp_kernel);
PACER_KERNEL(logical_not, CUDA, logical_not_kernel);
PACER_KERNEL(cast, CUDA, [](OpCall& c) { convert(c.out(0), c.in(0)); });
PACER_KERNEL(clone, CUDA, [](OpCall& c) { convert(c.out(0), c.in(0)); });
PACER_KERNEL(copy_, CUDA, [](OpCall& c) { convert(c.out(0), c.in(1)); });
PACER_KERNEL(fill_, CUDA, fill_kernel);
PACER_KERNEL(full, CUDA, fill_kernel);

PACER_KERNEL(add, CUDA, binary_same<math::Add>);
PACER_KERNEL(sub, CUDA, binary_numeric<math::Sub>);
PACER_KERNEL(mul, CUDA, binary_same<math::Mul>);
PACER_KERNEL(div, CUDA, binary_float<math::Div>);
PACER_KERNEL(pow, CUDA, binary_numeric<math::Pow>);
PACER_KERNEL(pow_scalar, CUDA, pow_scalar_kernel);
PACER_KERNEL(maximum, CUDA, binary_same<math::Maximum>);
PACER_KERNEL(minimum, CUDA, binary_same<math::Minimum>);
PACER_KERNEL(add_, CUDA, add_scaled_kernel);
PACER_KERNEL(mul_, CUDA, binary_same<math::Mul>);
PACER_KERNEL(eq, CUDA, compare<math::Eq>);
PACER_KERNEL(ne, CUDA, compare<math::Ne>);
PACER_KERNEL(lt, CUDA, compare<math::Lt>);
PACER_KERNEL(le, CUDA, compare<math::Le>);
PACER_KERNEL(gt, CUDA, compare<math::Gt>);
PACER_KERNEL(ge, CUDA, compare<math::Ge>);
PACER_KERNEL(logical_and, CUDA, compare<math::LogicalAnd>);
PACER_KERNEL(logical_or, CUDA, compare<math::LogicalOr>);
PACER_KERNEL(logical_xor, CUDA, compare<math::LogicalXor>);
PACER_KERNEL(where, CUDA, where_kernel);

}  // namespace pacer::ops::cuda
