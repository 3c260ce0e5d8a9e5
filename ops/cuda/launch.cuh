#pragma once
/// What every CUDA kernel file of ops needs: the current stream, grid sizing, typed data
/// pointers, and the launch check. Kernels register like CPU ones:
/// `PACER_KERNEL(name, CUDA, fn)`; the dispatcher has already made the op's device current.

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "core/cuda/check.h"
#include "core/cuda/stream.h"
#include "core/tensor.h"

namespace pacer::ops::cuda {

/// The current stream of the current device, as a cudaStream_t.
inline cudaStream_t stream() { return static_cast<cudaStream_t>(pacer::cuda::current_stream().handle()); }

inline constexpr int kThreads = 256;

/// Blocks for n work items of `per_block` items each, capped for grid-stride loops.
inline unsigned blocks_for(int64_t n, int64_t per_block = kThreads) {
  const int64_t b = (n + per_block - 1) / per_block;
  return unsigned(std::clamp<int64_t>(b, 1, int64_t(1) << 30));
}

/// Typed data pointer of a tensor (at its storage offset).
template <class T>
T* data_ptr(const Tensor& t) {
  return static_cast<T*>(const_cast<void*>(t.data()));
}

/// Device-side storage type of a Pacer storage type (Half/BFloat16 stay as they are: they
/// convert to float in device code through the intrinsics in core/half.h).
template <class T>
using device_t = T;

}  // namespace pacer::ops::cuda
