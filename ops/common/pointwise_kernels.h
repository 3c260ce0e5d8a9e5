#pragma once
/// The kernels of the pointwise ops, written once for every device (DESIGN §3): the dtype
/// dispatch and the functor for each op live here; `Loop` is a device's elementwise engine,
/// a struct with
///   template <class Out, class... In, class F>
///   static void run(const Tensor& out, const std::array<const Tensor*, sizeof...(In)>& ins, F f);
/// (ops/cpu/pointwise.cpp and ops/cuda/pointwise.cu instantiate it with their loops).

#include <array>
#include <type_traits>

#include "ops/common/pointwise_math.h"
#include "ops/op_def.h"

namespace pacer::ops {

namespace pointwise_detail {

// g * d gelu(x) / dx, with either form of gelu's derivative.
template <class Grad>
struct GeluBackward {
  template <class C>
  PACER_HOST_DEVICE C operator()(C g, C x) const { return g * Grad{}(x); }
};

// 0 where y <= 0, else g (relu's derivative given its output y; a NaN y passes g, as in
// PyTorch's threshold_backward).
struct ReluBackward {
  template <class C>
  PACER_HOST_DEVICE C operator()(C g, C y) const { return y <= C(0) ? C(0) : g; }
};

struct Square {
  template <class C>
  PACER_HOST_DEVICE C operator()(C a) const { return a * a; }
};

template <class O>
struct Convert {
  template <class V>
  PACER_HOST_DEVICE auto operator()(V v) const {
    if constexpr (std::is_same_v<O, bool>) return v != V(0);
    else return v;
  }
};

template <class C>
struct AddScaled {
  C alpha;
  PACER_HOST_DEVICE C operator()(C x, C y) const { return x + alpha * y; }
};

template <class C>
struct Constant {
  C value;
  PACER_HOST_DEVICE C operator()() const { return value; }
};

}  // namespace pointwise_detail

template <class Loop>
struct PointwiseKernels {
  template <class F>
  static void unary_same(OpCall& c) {
    dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
      if constexpr (!std::is_same_v<T, bool>) Loop::template run<T, T>(c.out(0), {&c.in(0)}, F{});
    });
  }

  template <class F>
  static void unary_float(OpCall& c) {
    dispatch_floating(c.out(0).dtype(), c.op.name,
                      [&]<class T>() { Loop::template run<T, T>(c.out(0), {&c.in(0)}, F{}); });
  }

  template <class F>
  static void binary_same(OpCall& c) {
    dispatch_dtype(c.out(0).dtype(),
                   [&]<class T>() { Loop::template run<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, F{}); });
  }

  template <class F>
  static void binary_numeric(OpCall& c) {
    dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
      if constexpr (!std::is_same_v<T, bool>) Loop::template run<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, F{});
    });
  }

  template <class F>
  static void binary_float(OpCall& c) {
    dispatch_floating(c.out(0).dtype(), c.op.name,
                      [&]<class T>() { Loop::template run<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, F{}); });
  }

  // Comparisons: inputs share a dtype, the output is bool.
  template <class F>
  static void compare(OpCall& c) {
    dispatch_dtype(c.in(0).dtype(),
                   [&]<class T>() { Loop::template run<bool, T, T>(c.out(0), {&c.in(0), &c.in(1)}, F{}); });
  }

  static void logical_not(OpCall& c) {
    dispatch_dtype(c.in(0).dtype(),
                   [&]<class T>() { Loop::template run<bool, T>(c.out(0), {&c.in(0)}, math::LogicalNot{}); });
  }

  static void gelu(OpCall& c) {
    const bool tanh_approx = c.attrs.str("approximate") == "tanh";
    dispatch_floating(c.out(0).dtype(), "gelu", [&]<class T>() {
      if (tanh_approx) Loop::template run<T, T>(c.out(0), {&c.in(0)}, math::GeluTanh{});
      else Loop::template run<T, T>(c.out(0), {&c.in(0)}, math::GeluErf{});
    });
  }

  static void gelu_backward(OpCall& c) {
    using namespace pointwise_detail;
    const bool tanh_approx = c.attrs.str("approximate") == "tanh";
    dispatch_floating(c.out(0).dtype(), "gelu_backward", [&]<class T>() {
      if (tanh_approx) Loop::template run<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, GeluBackward<math::GeluTanhGrad>{});
      else Loop::template run<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, GeluBackward<math::GeluErfGrad>{});
    });
  }

  static void relu_backward(OpCall& c) {
    dispatch_floating(c.out(0).dtype(), "relu_backward", [&]<class T>() {
      Loop::template run<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, pointwise_detail::ReluBackward{});
    });
  }

  static void clamp(OpCall& c) {
    dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
      using C = compute_t<T>;
      math::Clamp<C> f{C(0), C(0), c.attrs.has("min"), c.attrs.has("max")};
      if (f.has_lo) f.lo = c.attrs.scalar("min").to<C>();
      if (f.has_hi) f.hi = c.attrs.scalar("max").to<C>();
      Loop::template run<T, T>(c.out(0), {&c.in(0)}, f);
    });
  }

  static void pow_scalar(OpCall& c) {
    dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
      using C = compute_t<T>;
      if constexpr (!std::is_same_v<T, bool>) {
        const C p = c.attrs.scalar("exponent").to<C>();
        if constexpr (std::is_floating_point_v<C>) {
          if (p == C(2)) return Loop::template run<T, T>(c.out(0), {&c.in(0)}, pointwise_detail::Square{});
        }
        Loop::template run<T, T>(c.out(0), {&c.in(0)}, math::PowScalar<C>{p});
      }
    });
  }

  // Any dtype to any dtype, with broadcasting: cast, clone and copy_ share it.
  static void convert(const Tensor& out, const Tensor& in) {
    dispatch_dtype(out.dtype(), [&]<class O>() {
      dispatch_dtype(in.dtype(),
                     [&]<class I>() { Loop::template run<O, I>(out, {&in}, pointwise_detail::Convert<O>{}); });
    });
  }

  // x += alpha * y (alpha = 1 is the plain add).
  static void add_scaled(OpCall& c) {
    const Scalar& alpha = c.attrs.scalar("alpha");
    if (alpha.is_integral() && alpha.to_int() == 1) return binary_same<math::Add>(c);
    dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
      if constexpr (!std::is_same_v<T, bool>) {
        using C = compute_t<T>;
        Loop::template run<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, pointwise_detail::AddScaled<C>{alpha.to<C>()});
      }
    });
  }

  static void where(OpCall& c) {
    dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
      Loop::template run<T, bool, T, T>(c.out(0), {&c.in(0), &c.in(1), &c.in(2)}, math::Where{});
    });
  }

  // Every element set to the "value" attr (the CPU fills contiguous memory faster itself).
  static void fill(OpCall& c) {
    Tensor& out = c.out(0);
    const Scalar& v = c.attrs.scalar("value");
    dispatch_dtype(out.dtype(), [&]<class T>() {
      const T value = v.to<T>();
      Loop::template run<T>(out, {}, pointwise_detail::Constant<compute_t<T>>{compute_t<T>(value)});
    });
  }
};

}  // namespace pacer::ops

/// Registers the kernels of every pointwise op for DEVICE with engine LOOP (one line per op,
/// so a new pointwise op is added here once for all devices).
#define PACER_POINTWISE_KERNELS(DEVICE, LOOP)                                                  \
  using PK_##DEVICE = ::pacer::ops::PointwiseKernels<LOOP>;                                    \
  PACER_KERNEL(neg, DEVICE, PK_##DEVICE::unary_same<::pacer::math::Neg>);                      \
  PACER_KERNEL(exp, DEVICE, PK_##DEVICE::unary_float<::pacer::math::Exp>);                     \
  PACER_KERNEL(log, DEVICE, PK_##DEVICE::unary_float<::pacer::math::Log>);                     \
  PACER_KERNEL(sqrt, DEVICE, PK_##DEVICE::unary_float<::pacer::math::Sqrt>);                   \
  PACER_KERNEL(rsqrt, DEVICE, PK_##DEVICE::unary_float<::pacer::math::Rsqrt>);                 \
  PACER_KERNEL(abs, DEVICE, PK_##DEVICE::unary_same<::pacer::math::Abs>);                      \
  PACER_KERNEL(sign, DEVICE, PK_##DEVICE::unary_same<::pacer::math::Sign>);                    \
  PACER_KERNEL(relu, DEVICE, PK_##DEVICE::unary_same<::pacer::math::Relu>);                    \
  PACER_KERNEL(sigmoid, DEVICE, PK_##DEVICE::unary_float<::pacer::math::Sigmoid>);             \
  PACER_KERNEL(tanh, DEVICE, PK_##DEVICE::unary_float<::pacer::math::Tanh>);                   \
  PACER_KERNEL(gelu, DEVICE, PK_##DEVICE::gelu);                                               \
  PACER_KERNEL(gelu_backward, DEVICE, PK_##DEVICE::gelu_backward);                             \
  PACER_KERNEL(relu_backward, DEVICE, PK_##DEVICE::relu_backward);                             \
  PACER_KERNEL(clamp, DEVICE, PK_##DEVICE::clamp);                                             \
  PACER_KERNEL(logical_not, DEVICE, PK_##DEVICE::logical_not);                                 \
  PACER_KERNEL(cast, DEVICE, [](::pacer::ops::OpCall& c) { PK_##DEVICE::convert(c.out(0), c.in(0)); });  \
  PACER_KERNEL(clone, DEVICE, [](::pacer::ops::OpCall& c) { PK_##DEVICE::convert(c.out(0), c.in(0)); }); \
  PACER_KERNEL(copy_, DEVICE, [](::pacer::ops::OpCall& c) { PK_##DEVICE::convert(c.out(0), c.in(1)); }); \
  PACER_KERNEL(add, DEVICE, PK_##DEVICE::binary_same<::pacer::math::Add>);                     \
  PACER_KERNEL(sub, DEVICE, PK_##DEVICE::binary_numeric<::pacer::math::Sub>);                  \
  PACER_KERNEL(mul, DEVICE, PK_##DEVICE::binary_same<::pacer::math::Mul>);                     \
  PACER_KERNEL(div, DEVICE, PK_##DEVICE::binary_float<::pacer::math::Div>);                    \
  PACER_KERNEL(pow, DEVICE, PK_##DEVICE::binary_numeric<::pacer::math::Pow>);                  \
  PACER_KERNEL(pow_scalar, DEVICE, PK_##DEVICE::pow_scalar);                                   \
  PACER_KERNEL(maximum, DEVICE, PK_##DEVICE::binary_same<::pacer::math::Maximum>);             \
  PACER_KERNEL(minimum, DEVICE, PK_##DEVICE::binary_same<::pacer::math::Minimum>);             \
  PACER_KERNEL(add_, DEVICE, PK_##DEVICE::add_scaled);                                         \
  PACER_KERNEL(mul_, DEVICE, PK_##DEVICE::binary_same<::pacer::math::Mul>);                    \
  PACER_KERNEL(eq, DEVICE, PK_##DEVICE::compare<::pacer::math::Eq>);                           \
  PACER_KERNEL(ne, DEVICE, PK_##DEVICE::compare<::pacer::math::Ne>);                           \
  PACER_KERNEL(lt, DEVICE, PK_##DEVICE::compare<::pacer::math::Lt>);                           \
  PACER_KERNEL(le, DEVICE, PK_##DEVICE::compare<::pacer::math::Le>);                           \
  PACER_KERNEL(gt, DEVICE, PK_##DEVICE::compare<::pacer::math::Gt>);                           \
  PACER_KERNEL(ge, DEVICE, PK_##DEVICE::compare<::pacer::math::Ge>);                           \
  PACER_KERNEL(logical_and, DEVICE, PK_##DEVICE::compare<::pacer::math::LogicalAnd>);          \
  PACER_KERNEL(logical_or, DEVICE, PK_##DEVICE::compare<::pacer::math::LogicalOr>);            \
  PACER_KERNEL(logical_xor, DEVICE, PK_##DEVICE::compare<::pacer::math::LogicalXor>);          \
  PACER_KERNEL(where, DEVICE, PK_##DEVICE::where)
