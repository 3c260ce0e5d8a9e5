#pragma once
/// Helpers shared by the op definition files (infer rules used by many ops).

#include "ops/api.h"
#include "ops/dispatch.h"
#include "ops/registry.h"
#include "ops/shape_utils.h"

namespace pacer::ops {

/// The layout an output of shape `sizes` gets: channels-last when the call runs on CUDA
/// and an input of that very shape is channels-last (as PyTorch keeps channels_last through
/// conv -> bn -> relu -> add), else contiguous (empty). On the CPU outputs stay contiguous.
inline Shape suggested_strides(const OpCall& c, const Shape& sizes) {
  if (!c.device.is_cuda() || sizes.size() != 4) return {};
  for (const Tensor& t : c.inputs)
    if (t.defined() && t.sizes() == sizes && is_channels_last(t)) return channels_last_strides(sizes);
  return {};
}

/// Output 0 has the shape of input 0, the call's device and dtype `dtype`, and keeps a
/// channels-last layout (suggested_strides) unless `keep_layout` is false.
inline void same_shape_output(OpCall& c, DType dtype, bool keep_layout = true) {
  const Shape& s = c.in(0).sizes();
  c.output_meta = {{s, dtype, c.device, keep_layout ? suggested_strides(c, s) : Shape{}}};
}

/// Casts inputs [first, first+count) to `dtype` (recorded, so gradients flow back through
/// the cast), moving 0-dim CPU scalars to the call's device — except for pointwise ops,
/// whose CUDA loop takes such a scalar by value (a host-to-device copy per `x * 0.9` would
/// cost more than the op).
inline void cast_inputs(OpCall& c, DType dtype, size_t first = 0, size_t count = size_t(-1)) {
  const size_t end = std::min(c.inputs.size(), count == size_t(-1) ? c.inputs.size() : first + count);
  for (size_t i = first; i < end; ++i) {
    Tensor& t = c.inputs[i];
    if (t.dtype() != dtype) t = cast(t, dtype);
    const bool by_value = c.op.has(kPointwise) && t.dim() == 0 && t.is_cpu();
    if (t.device() != c.device && !by_value) t = t.to(c.device);
  }
}

/// Broadcast shape of all inputs.
inline Shape broadcast_all(const OpCall& c) {
  Shape s = c.in(0).sizes();
  for (size_t i = 1; i < c.inputs.size(); ++i) s = broadcast_shapes(s, c.in(i).sizes());
  return s;
}

/// Throws unless `t` is floating (for ops whose math needs it).
inline void check_floating(const Tensor& t, const char* what) {
  PACER_CHECK(is_floating(t.dtype()), "expected a floating {} (float32/64, float16, bfloat16), got {}", what,
              t.dtype());
}

}  // namespace pacer::ops
