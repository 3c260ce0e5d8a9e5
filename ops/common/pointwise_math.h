#pragma once
/// The scalar math of pointwise ops, written once (DESIGN §3) and shared by the CPU loops,
/// the CUDA loops and the fused-kernel generator. T is the compute type (float for the
/// half types). Derivative functors sit beside the ops they differentiate.

#include <cmath>
#include <type_traits>

#include "core/macros.h"

namespace pacer::math {

template <class T>
PACER_HOST_DEVICE inline T zero() { return T(0); }

struct Neg { template <class T> PACER_HOST_DEVICE T operator()(T a) const { return -a; } };
struct Exp { template <class T> PACER_HOST_DEVICE T operator()(T a) const { return std::exp(a); } };
struct Log { template <class T> PACER_HOST_DEVICE T operator()(T a) const { return std::log(a); } };
struct Sqrt { template <class T> PACER_HOST_DEVICE T operator()(T a) const { return std::sqrt(a); } };
struct Rsqrt { template <class T> PACER_HOST_DEVICE T operator()(T a) const { return T(1) / std::sqrt(a); } };
struct Abs {
  template <class T> PACER_HOST_DEVICE T operator()(T a) const {
    if constexpr (std::is_unsigned_v<T>) return a;
    else return a < T(0) ? -a : a;
  }
};
struct Sign {
  template <class T> PACER_HOST_DEVICE T operator()(T a) const {
    if constexpr (std::is_unsigned_v<T>) return T(a != T(0));
    else return T((T(0) < a) - (a < T(0)));
  }
};
struct Relu {
  // NaN propagates (a > 0 is false for NaN, so test the other way round).
  template <class T> PACER_HOST_DEVICE T operator()(T a) const {
    if constexpr (std::is_unsigned_v<T>) return a;
    else return a < T(0) ? T(0) : a;
  }
};
struct Sigmoid { template <class T> PACER_HOST_DEVICE T operator()(T a) const { return T(1) / (T(1) + std::exp(-a)); } };
struct Tanh { template <class T> PACER_HOST_DEVICE T operator()(T a) const { return std::tanh(a); } };
/// gelu(x) = x * Phi(x), Phi the standard normal CDF.
struct GeluErf {
  template <class T> PACER_HOST_DEVICE T operator()(T a) const {
    return T(0.5) * a * (T(1) + std::erf(a * T(0.70710678118654752440)));
  }
};
/// d gelu / dx = Phi(x) + x * phi(x).
struct GeluErfGrad {
  template <class T> PACER_HOST_DEVICE T operator()(T a) const {
    T cdf = T(0.5) * (T(1) + std::erf(a * T(0.70710678118654752440)));
    T pdf = T(0.39894228040143267794) * std::exp(T(-0.5) * a * a);
    return cdf + a * pdf;
  }
};
/// The tanh approximation of gelu (Hendrycks & Gimpel).
struct GeluTanh {
  template <class T> PACER_HOST_DEVICE T operator()(T a) const {
    T inner = T(0.79788456080286535588) * (a + T(0.044715) * a * a * a);
    return T(0.5) * a * (T(1) + std::tanh(inner));
  }
};
struct GeluTanhGrad {
  template <class T> PACER_HOST_DEVICE T operator()(T a) const {
    const T k = T(0.79788456080286535588);
    T inner = k * (a + T(0.044715) * a * a * a);
    T th = std::tanh(inner);
    T dinner = k * (T(1) + T(3) * T(0.044715) * a * a);
    return T(0.5) * (T(1) + th) + T(0.5) * a * (T(1) - th * th) * dinner;
  }
};
struct LogicalNot { template <class T> PACER_HOST_DEVICE bool operator()(T a) const { return !bool(a); } };

struct Add {
  template <class T> PACER_HOST_DEVICE T operator()(T a, T b) const {
    if constexpr (std::is_same_v<T, bool>) return a || b;
    else return a + b;
  }
};
struct Sub { template <class T> PACER_HOST_DEVICE T operator()(T a, T b) const { return a - b; } };
struct Mul {
  template <class T> PACER_HOST_DEVICE T operator()(T a, T b) const {
    if constexpr (std::is_same_v<T, bool>) return a && b;
    else return a * b;
  }
};
/// Integer division is not offered (div promotes integers to float, as torch.div does).
struct Div { template <class T> PACER_HOST_DEVICE T operator()(T a, T b) const { return a / b; } };
struct Pow {
  template <class T> PACER_HOST_DEVICE T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if constexpr (std::is_signed_v<T>) {
        if (b < T(0)) return a == T(1) ? T(1) : (a == T(-1) ? ((b & 1) ? T(-1) : T(1)) : T(0));
      }
      T r = 1;
      while (b) {
        if (b & 1) r *= a;
        a *= a;
        b >>= 1;
      }
      return r;
    } else {
      return std::pow(a, b);
    }
  }
};
/// NaN-propagating max / min (torch.maximum).
struct Maximum {
  template <class T> PACER_HOST_DEVICE T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) if (a != a || b != b) return a + b;
    return a > b ? a : b;
  }
};
struct Minimum {
  template <class T> PACER_HOST_DEVICE T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) if (a != a || b != b) return a + b;
    return a < b ? a : b;
  }
};
struct Eq { template <class T> PACER_HOST_DEVICE bool operator()(T a, T b) const { return a == b; } };
struct Ne { template <class T> PACER_HOST_DEVICE bool operator()(T a, T b) const { return a != b; } };
struct Lt { template <class T> PACER_HOST_DEVICE bool operator()(T a, T b) const { return a < b; } };
struct Le { template <class T> PACER_HOST_DEVICE bool operator()(T a, T b) const { return a <= b; } };
struct Gt { template <class T> PACER_HOST_DEVICE bool operator()(T a, T b) const { return a > b; } };
struct Ge { template <class T> PACER_HOST_DEVICE bool operator()(T a, T b) const { return a >= b; } };
struct LogicalAnd { template <class T> PACER_HOST_DEVICE bool operator()(T a, T b) const { return bool(a) && bool(b); } };
struct LogicalOr { template <class T> PACER_HOST_DEVICE bool operator()(T a, T b) const { return bool(a) || bool(b); } };
struct LogicalXor { template <class T> PACER_HOST_DEVICE bool operator()(T a, T b) const { return bool(a) != bool(b); } };

struct Where { template <class T> PACER_HOST_DEVICE T operator()(bool c, T a, T b) const { return c ? a : b; } };

/// Clamp with optional bounds (NaN propagates).
template <class T>
struct Clamp {
  T lo, hi;
  bool has_lo, has_hi;
  PACER_HOST_DEVICE T operator()(T a) const {
    if (has_lo && a < lo) a = lo;
    if (has_hi && a > hi) a = hi;
    return a;
  }
};

/// a ** p for a scalar exponent.
template <class T>
struct PowScalar {
  T p;
  PACER_HOST_DEVICE T operator()(T a) const { return Pow{}(a, p); }
};

}  // namespace pacer::math
