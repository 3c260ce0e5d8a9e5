// CPU kernels of the pointwise ops: one line each on top of cpu_kernel (loops.h) and the
// shared scalar math (ops/common/pointwise_math.h).
#include "ops/common/pointwise_math.h"
#include "ops/cpu/loops.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

template <class F>
void unary_same(OpCall& c) {
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
    if constexpr (!std::is_same_v<T, bool>) cpu_kernel<T, T>(c.out(0), {&c.in(0)}, F{});
  });
}

template <class F>
void unary_float(OpCall& c) {
  dispatch_floating(c.out(0).dtype(), c.op.name, [&]<class T>() { cpu_kernel<T, T>(c.out(0), {&c.in(0)}, F{}); });
}

template <class F>
void binary_same(OpCall& c) {
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() { cpu_kernel<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, F{}); });
}

template <class F>
void binary_numeric(OpCall& c) {
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
    if constexpr (!std::is_same_v<T, bool>) cpu_kernel<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, F{});
  });
}

template <class F>
void binary_float(OpCall& c) {
  dispatch_floating(c.out(0).dtype(), c.op.name,
                    [&]<class T>() { cpu_kernel<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, F{}); });
}

// Comparisons: inputs share a dtype, the output is bool.
template <class F>
void compare(OpCall& c) {
  dispatch_dtype(c.in(0).dtype(), [&]<class T>() { cpu_kernel<bool, T, T>(c.out(0), {&c.in(0), &c.in(1)}, F{}); });
}

void gelu_kernel(OpCall& c) {
  const bool tanh_approx = c.attrs.str("approximate") == "tanh";
  dispatch_floating(c.out(0).dtype(), "gelu", [&]<class T>() {
    if (tanh_approx) cpu_kernel<T, T>(c.out(0), {&c.in(0)}, math::GeluTanh{});
    else cpu_kernel<T, T>(c.out(0), {&c.in(0)}, math::GeluErf{});
  });
}

void gelu_backward_kernel(OpCall& c) {
  const bool tanh_approx = c.attrs.str("approximate") == "tanh";
  dispatch_floating(c.out(0).dtype(), "gelu_backward", [&]<class T>() {
    using C = compute_t<T>;
    auto run = [&](auto grad_fn) {
      cpu_kernel<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, [grad_fn](C g, C x) { return g * grad_fn(x); });
    };
    if (tanh_approx) run(math::GeluTanhGrad{});
    else run(math::GeluErfGrad{});
  });
}

void clamp_kernel(OpCall& c) {
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
    using C = compute_t<T>;
    math::Clamp<C> f{C(0), C(0), c.attrs.has("min"), c.attrs.has("max")};
    if (f.has_lo) f.lo = c.attrs.scalar("min").to<C>();
    if (f.has_hi) f.hi = c.attrs.scalar("max").to<C>();
    cpu_kernel<T, T>(c.out(0), {&c.in(0)}, f);
  });
}

void pow_scalar_kernel(OpCall& c) {
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
    using C = compute_t<T>;
    if constexpr (!std::is_same_v<T, bool>) {
      const C p = c.attrs.scalar("exponent").to<C>();
      if constexpr (std::is_floating_point_v<C>) {
        if (p == C(2)) return cpu_kernel<T, T>(c.out(0), {&c.in(0)}, [](C a) { return a * a; });
      }
      cpu_kernel<T, T>(c.out(0), {&c.in(0)}, math::PowScalar<C>{p});
    }
  });
}

// Any dtype to any dtype, with broadcasting: casts, clone and copy_ share it.
void convert(const Tensor& out, const Tensor& in) {
  dispatch_dtype(out.dtype(), [&]<class O>() {
    dispatch_dtype(in.dtype(), [&]<class I>() {
      cpu_kernel<O, I>(out, {&in}, [](compute_t<I> v) {
        if constexpr (std::is_same_v<O, bool>) return v != compute_t<I>(0);
        else return v;
      });
    });
  });
}

// x += alpha * y (alpha = 1 is the plain add).
void add_scaled_kernel(OpCall& c) {
  const Scalar& alpha = c.attrs.scalar("alpha");
  if (alpha.is_integral() && alpha.to_int() == 1) return binary_same<math::Add>(c);
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
    if constexpr (!std::is_same_v<T, bool>) {
      using C = compute_t<T>;
      const C a = alpha.to<C>();
      cpu_kernel<T, T, T>(c.out(0), {&c.in(0), &c.in(1)}, [a](C x, C y) { return x + a * y; });
    }
  });
}

void where_kernel(OpCall& c) {
  dispatch_dtype(c.out(0).dtype(), [&]<class T>() {
    cpu_kernel<T, bool, T, T>(c.out(0), {&c.in(0), &c.in(1), &c.in(2)}, math::Where{});
  });
}

void fill_kernel(OpCall& c) {
  Tensor& out = c.out(0);
  const Scalar& v = c.attrs.scalar("value");
  dispatch_dtype(out.dtype(), [&]<class T>() {
    const T value = v.to<T>();
    if (out.is_contiguous()) {
      T* p = static_cast<T*>(out.data());
      const int64_t n = out.numel();
      parallel_for(0, n, kPointwiseGrain, [&](int64_t b, int64_t e) { std::fill(p + b, p + e, value); });
    } else {
      cpu_kernel<T>(out, {}, [value]() { return compute_t<T>(value); });
    }
  });
}

}  // namespace

PACER_KERNEL(neg, CPU, unary_same<math::Neg>);
PACER_KERNEL(exp, CPU, unary_float<math::Exp>);
PACER_KERNEL(log, CPU, unary_float<math::Log>);
PACER_KERNEL(sqrt, CPU, unary_float<math::Sqrt>);
PACER_KERNEL(rsqrt, CPU, unary_float<math::Rsqrt>);
PACER_KERNEL(abs, CPU, unary_same<math::Abs>);
PACER_KERNEL(sign, CPU, unary_same<math::Sign>);
PACER_KERNEL(relu, CPU, unary_same<math::Relu>);
PACER_KERNEL(sigmoid, CPU, unary_float<math::Sigmoid>);
PACER_KERNEL(tanh, CPU, unary_float<math::Tanh>);
PACER_KERNEL(gelu, CPU, gelu_kernel);
PACER_KERNEL(gelu_backward, CPU, gelu_backward_kernel);
PACER_KERNEL(clamp, CPU, clamp_kernel);
PACER_KERNEL(logical_not, CPU, [](OpCall& c) {
  dispatch_dtype(c.in(0).dtype(), [&]<class T>() { cpu_kernel<bool, T>(c.out(0), {&c.in(0)}, math::LogicalNot{}); });
});
PACER_KERNEL(cast, CPU, [](OpCall& c) { convert(c.out(0), c.in(0)); });
PACER_KERNEL(clone, CPU, [](OpCall& c) { convert(c.out(0), c.in(0)); });
PACER_KERNEL(copy_, CPU, [](OpCall& c) { convert(c.out(0), c.in(1)); });
// to_device between two CPU tensors (Tensor::to never asks for it, a direct call may).
PACER_KERNEL(to_device, CPU, [](OpCall& c) { convert(c.out(0), c.in(0)); });
PACER_KERNEL(fill_, CPU, fill_kernel);
PACER_KERNEL(full, CPU, fill_kernel);

PACER_KERNEL(add, CPU, binary_same<math::Add>);
PACER_KERNEL(sub, CPU, binary_numeric<math::Sub>);
PACER_KERNEL(mul, CPU, binary_same<math::Mul>);
PACER_KERNEL(div, CPU, binary_float<math::Div>);
PACER_KERNEL(pow, CPU, binary_numeric<math::Pow>);
PACER_KERNEL(pow_scalar, CPU, pow_scalar_kernel);
PACER_KERNEL(maximum, CPU, binary_same<math::Maximum>);
PACER_KERNEL(minimum, CPU, binary_same<math::Minimum>);
PACER_KERNEL(add_, CPU, add_scaled_kernel);
PACER_KERNEL(mul_, CPU, binary_same<math::Mul>);
PACER_KERNEL(eq, CPU, compare<math::Eq>);
PACER_KERNEL(ne, CPU, compare<math::Ne>);
PACER_KERNEL(lt, CPU, compare<math::Lt>);
PACER_KERNEL(le, CPU, compare<math::Le>);
PACER_KERNEL(gt, CPU, compare<math::Gt>);
PACER_KERNEL(ge, CPU, compare<math::Ge>);
PACER_KERNEL(logical_and, CPU, compare<math::LogicalAnd>);
PACER_KERNEL(logical_or, CPU, compare<math::LogicalOr>);
PACER_KERNEL(logical_xor, CPU, compare<math::LogicalXor>);
PACER_KERNEL(where, CPU, where_kernel);

}  // namespace pacer::ops::cpu
