#pragma once
/// Index validation for CUDA kernels (internal to ops/cuda). The CPU kernels raise "index k is
/// out of range ..." for a bad index; the CUDA ones skip it (nothing is read or written out of
/// bounds) and record its position in a device slot with atomicMin, which the host reads back
/// after the launch (one word and a wait) and turns into the CPU's error. While a CUDA graph
/// is being captured nothing has run, so nothing is read back (a replay skips bad indices).

#include <cstdint>

#include "core/tensor.h"

namespace pacer::ops::cuda {

class BadIndexSlot {
 public:
  /// A slot on `device`, cleared on the current stream.
  explicit BadIndexSlot(Device device);
  /// Where kernels record the first bad position (atomicMin of the position).
  unsigned long long* get() const { return static_cast<unsigned long long*>(slot_.data()); }
  /// After the launch: the first recorded position, or -1 (also while a graph is being captured).
  int64_t first() const;
  /// The value at element `at` of a contiguous int64 / int32 device index tensor.
  static int64_t value_at(const Tensor& index, int64_t at);

 private:
  Tensor slot_;
};

}  // namespace pacer::ops::cuda
