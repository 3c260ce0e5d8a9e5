#pragma once
/// Status checks for the CUDA runtime (internal: includes cuda_runtime.h, so only .cpp/.cu
/// files of the CUDA backend include it). Every failing status throws pacer::Error with the
/// file and line of the call, the expression and the runtime's own message.

#include <cuda_runtime.h>

#include "core/error.h"

namespace pacer::cuda::detail {
[[noreturn]] void throw_cuda_error(const char* file, int line, const char* expr, cudaError_t status);
}  // namespace pacer::cuda::detail

#define PACER_CUDA_CHECK(expr)                                                          \
  do {                                                                                  \
    const cudaError_t pacer_status_ = (expr);                                           \
    if (PACER_UNLIKELY(pacer_status_ != cudaSuccess))                                   \
      ::pacer::cuda::detail::throw_cuda_error(__FILE__, __LINE__, #expr, pacer_status_); \
  } while (0)

/// After a kernel launch: reports a bad launch configuration at the launch site.
#define PACER_CUDA_KERNEL_CHECK() PACER_CUDA_CHECK(cudaGetLastError())
