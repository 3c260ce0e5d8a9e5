#include "core/dtype.h"

namespace pacer {

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::I64: return "int64";
    case DType::I32: return "int32";
    case DType::U8: return "uint8";
    case DType::Bool: return "bool";
  }
  return "unknown";
}

DType parse_dtype(std::string_view s) {
  if (s == "float32" || s == "f32" || s == "float") return DType::F32;
  if (s == "float64" || s == "f64" || s == "double") return DType::F64;
  if (s == "float16" || s == "f16" || s == "half") return DType::F16;
  if (s == "bfloat16" || s == "bf16") return DType::BF16;
  if (s == "int64" || s == "i64" || s == "long") return DType::I64;
  if (s == "int32" || s == "i32" || s == "int") return DType::I32;
  if (s == "uint8" || s == "u8") return DType::U8;
  if (s == "bool") return DType::Bool;
  PACER_FAIL("unknown dtype '{}': expected one of f32, f64, f16, bf16, i64, i32, u8, bool", s);
}

// PyTorch's promotion lattice for the eight dtypes Pacer has. Mixing f16 and bf16 gives
// f32; u8 with a signed integer widens to the signed one (i32 with u8 -> i32).
DType promote_types(DType a, DType b) {
  if (a == b) return a;
  constexpr DType F32 = DType::F32, F64 = DType::F64, F16 = DType::F16, BF = DType::BF16,
                  I64 = DType::I64, I32 = DType::I32, U8 = DType::U8, B = DType::Bool;
  // Rows/columns in enum order: F32 F64 F16 BF16 I64 I32 U8 Bool.
  static constexpr DType table[kNumDTypes][kNumDTypes] = {
      /*F32 */ {F32, F64, F32, F32, F32, F32, F32, F32},
      /*F64 */ {F64, F64, F64, F64, F64, F64, F64, F64},
      /*F16 */ {F32, F64, F16, F32, F16, F16, F16, F16},
      /*BF16*/ {F32, F64, F32, BF, BF, BF, BF, BF},
      /*I64 */ {F32, F64, F16, BF, I64, I64, I64, I64},
      /*I32 */ {F32, F64, F16, BF, I64, I32, I32, I32},
      /*U8  */ {F32, F64, F16, BF, I64, I32, U8, U8},
      /*Bool*/ {F32, F64, F16, BF, I64, I32, U8, B},
  };
  return table[int(a)][int(b)];
}

}  // namespace pacer
