#pragma once
/// Status checks for cuBLAS(Lt) and cuDNN (internal: includes their headers). Each failing
/// status throws pacer::Error with file:line, the expression and the library's message.

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cudnn.h>

#include "core/error.h"

namespace pacer::cuda::detail {
[[noreturn]] void throw_cublas_error(const char* file, int line, const char* expr, cublasStatus_t status);
[[noreturn]] void throw_cudnn_error(const char* file, int line, const char* expr, cudnnStatus_t status);
}  // namespace pacer::cuda::detail

#define PACER_CUBLAS_CHECK(expr)                                                          \
  do {                                                                                    \
    const cublasStatus_t pacer_status_ = (expr);                                          \
    if (PACER_UNLIKELY(pacer_status_ != CUBLAS_STATUS_SUCCESS))                           \
      ::pacer::cuda::detail::throw_cublas_error(__FILE__, __LINE__, #expr, pacer_status_); \
  } while (0)

#define PACER_CUDNN_CHECK(expr)                                                          \
  do {                                                                                   \
    const cudnnStatus_t pacer_status_ = (expr);                                          \
    if (PACER_UNLIKELY(pacer_status_ != CUDNN_STATUS_SUCCESS))                           \
      ::pacer::cuda::detail::throw_cudnn_error(__FILE__, __LINE__, #expr, pacer_status_); \
  } while (0)
