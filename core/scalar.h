#pragma once
/// Scalar: a number that is either integral, floating or boolean, as PyTorch's Scalar.
/// It keeps int64 exactly (a double would lose integers above 2^53).

#include <cstdint>
#include <type_traits>

#include "core/dtype.h"

namespace pacer {

class Scalar {
 public:
  enum class Kind : uint8_t { Int, Float, Bool };
  Scalar() : Scalar(int64_t(0)) {}
  Scalar(double v) : kind_(Kind::Float), d_(v) {}  // NOLINT
  Scalar(float v) : kind_(Kind::Float), d_(v) {}   // NOLINT
  Scalar(bool v) : kind_(Kind::Bool), i_(v) {}     // NOLINT
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  Scalar(I v) : kind_(Kind::Int), i_(int64_t(v)) {}  // NOLINT

  Kind kind() const { return kind_; }
  bool is_floating() const { return kind_ == Kind::Float; }
  bool is_integral() const { return kind_ != Kind::Float; }
  double to_double() const { return kind_ == Kind::Float ? d_ : double(i_); }
  int64_t to_int() const { return kind_ == Kind::Float ? int64_t(d_) : i_; }
  /// The dtype PyTorch gives a tensor made from this number: f32 / i64 / bool.
  DType default_dtype() const {
    return kind_ == Kind::Float ? DType::F32 : (kind_ == Kind::Int ? DType::I64 : DType::Bool);
  }
  template <class T>
  T to() const {
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) return T(float(to_double()));
    else if constexpr (std::is_floating_point_v<T>) return T(to_double());
    else if constexpr (std::is_same_v<T, bool>) return to_double() != 0.0;
    else return T(to_int());
  }

 private:
  Kind kind_;
  union {
    double d_;
    int64_t i_;
  };
};

}  // namespace pacer
