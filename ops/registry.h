#pragma once
/// The op registry: every OpDef registers itself at load time; kernels attach by op name
/// from their own files. The registry self-test walks it.

#include <string>
#include <vector>

#include "ops/op_def.h"

namespace pacer::ops {

/// Registers `def` (called by PACER_OP); returns it.
OpDef& register_op(OpDef& def);
/// Attaches a kernel to the op named `name` (before or after the op registers).
void register_kernel(const char* name, DeviceType device, KernelFn fn);
/// The op named `name`; throws when there is none.
const OpDef& find_op(const std::string& name);
/// All registered ops, sorted by name.
std::vector<const OpDef*> all_ops();

struct KernelRegistrar {
  KernelRegistrar(const char* name, DeviceType device, KernelFn fn) { register_kernel(name, device, fn); }
};

}  // namespace pacer::ops

/// Declares the OpDef factory for op NAME: `PACER_OP(add) { OpDef d; ...; return d; }`.
/// Defines `ops::op_NAME()`, the registered OpDef, usable from the same file.
#define PACER_OP(NAME)                                                      \
  static ::pacer::ops::OpDef make_op_##NAME();                              \
  ::pacer::ops::OpDef& op_##NAME() {                                        \
    static ::pacer::ops::OpDef& def = [] {                                  \
      static ::pacer::ops::OpDef d = make_op_##NAME();                      \
      return std::ref(::pacer::ops::register_op(d));                        \
    }();                                                                    \
    return def;                                                             \
  }                                                                         \
  [[maybe_unused]] static ::pacer::ops::OpDef& pacer_op_reg_##NAME = op_##NAME(); \
  static ::pacer::ops::OpDef make_op_##NAME()

/// Registers a kernel for op NAME on DEVICE (CPU or CUDA) from a kernel file.
#define PACER_KERNEL(NAME, DEVICE, FN) \
  static ::pacer::ops::KernelRegistrar pacer_kernel_reg_##NAME##_##DEVICE(#NAME, ::pacer::DeviceType::DEVICE, FN)
