#pragma once
// Helpers shared by the GPU suites.
#include "core/cuda/handles.h"

namespace pacer::test {

/// Switches TF32 off for the scope, so that float32 CUDA results are float32-exact enough to
/// compare with the CPU's.
struct Tf32Off {
  bool prev = cuda::allow_tf32();
  Tf32Off() { cuda::set_allow_tf32(false); }
  ~Tf32Off() { cuda::set_allow_tf32(prev); }
  Tf32Off(const Tf32Off&) = delete;
  Tf32Off& operator=(const Tf32Off&) = delete;
};

}  // namespace pacer::test
