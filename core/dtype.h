#pragma once
/// DType: the eight element types, their sizes and names, PyTorch's type promotion,
/// and dispatch_dtype(), which turns a runtime dtype into a template argument.

#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "core/half.h"

namespace pacer {

enum class DType : uint8_t { F32, F64, F16, BF16, I64, I32, U8, Bool };
inline constexpr int kNumDTypes = 8;

inline constexpr DType f32 = DType::F32;
inline constexpr DType f64 = DType::F64;
inline constexpr DType f16 = DType::F16;
inline constexpr DType bf16 = DType::BF16;
inline constexpr DType i64 = DType::I64;
inline constexpr DType i32 = DType::I32;
inline constexpr DType u8 = DType::U8;
inline constexpr DType boolean = DType::Bool;

/// Size in bytes of one element.
constexpr size_t element_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::U8: case DType::Bool: return 1;
  }
  return 0;
}

/// PyTorch's name ("float32", "bfloat16", "int64", "bool", ...).
std::string_view dtype_name(DType t);
/// Parses the PyTorch name or the short one ("f32", "bf16", "i64"); throws on others.
DType parse_dtype(std::string_view name);

constexpr bool is_floating(DType t) {
  return t == DType::F32 || t == DType::F64 || t == DType::F16 || t == DType::BF16;
}
constexpr bool is_integral(DType t, bool include_bool) {
  return t == DType::I64 || t == DType::I32 || t == DType::U8 || (include_bool && t == DType::Bool);
}
constexpr bool is_half(DType t) { return t == DType::F16 || t == DType::BF16; }

/// PyTorch's promote_types for two tensors of the same category rank.
DType promote_types(DType a, DType b);

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<Half> { static constexpr DType value = DType::F16; };
template <> struct dtype_of<BFloat16> { static constexpr DType value = DType::BF16; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::I32; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::U8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };
template <class T> inline constexpr DType dtype_v = dtype_of<T>::value;

/// The type math is done in: float for the half types, the type itself otherwise.
template <class T> struct compute_type { using type = T; };
template <> struct compute_type<Half> { using type = float; };
template <> struct compute_type<BFloat16> { using type = float; };
template <class T> using compute_t = typename compute_type<T>::type;

/// Calls f.template operator()<T>() with T the C++ type of `t`.
/// Usage: dispatch_dtype(t, [&]<class T>() { ... });
template <class F>
decltype(auto) dispatch_dtype(DType t, F&& f) {
  switch (t) {
    case DType::F32: return f.template operator()<float>();
    case DType::F64: return f.template operator()<double>();
    case DType::F16: return f.template operator()<Half>();
    case DType::BF16: return f.template operator()<BFloat16>();
    case DType::I64: return f.template operator()<int64_t>();
    case DType::I32: return f.template operator()<int32_t>();
    case DType::U8: return f.template operator()<uint8_t>();
    case DType::Bool: return f.template operator()<bool>();
  }
  PACER_FAIL("unknown dtype {}", int(t));
}

/// Like dispatch_dtype but only for the four floating types; names `what` in the error.
template <class F>
decltype(auto) dispatch_floating(DType t, std::string_view what, F&& f) {
  switch (t) {
    case DType::F32: return f.template operator()<float>();
    case DType::F64: return f.template operator()<double>();
    case DType::F16: return f.template operator()<Half>();
    case DType::BF16: return f.template operator()<BFloat16>();
    default: break;
  }
  PACER_FAIL("{}: expected a floating dtype (float32, float64, float16, bfloat16), got {}", what,
             dtype_name(t));
}

}  // namespace pacer

template <>
struct fmt::formatter<pacer::DType> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <class Ctx>
  auto format(pacer::DType t, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "{}", pacer::dtype_name(t));
  }
};
