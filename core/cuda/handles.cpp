// Library handles per (device, thread): cuBLAS and cuDNN handles are not safe to share
// between threads that use them at once, and creating one costs milliseconds, so each
// thread keeps its own, created on first use and rebound to the current stream per call.
#include "core/cuda/handles.h"

#include <array>
#include <cstdlib>
#include <cstring>

#include "core/cuda/caching_allocator.h"
#include "core/cuda/check.h"
#include "core/cuda/library_check.h"
#include "core/cuda/runtime.h"
#include "core/cuda/stream.h"

namespace pacer::cuda {

namespace detail {

void throw_cublas_error(const char* file, int line, const char* expr, cublasStatus_t status) {
  ::pacer::detail::throw_error(file, line,
                               fmt::format("cuBLAS error {} ({}) from {}: {}", int(status), cublasGetStatusName(status),
                                           expr, cublasGetStatusString(status)));
}

void throw_cudnn_error(const char* file, int line, const char* expr, cudnnStatus_t status) {
  char detail[512] = {0};
  cudnnGetLastErrorString(detail, sizeof(detail));
  ::pacer::detail::throw_error(file, line,
                               fmt::format("cuDNN error {} ({}) from {}{}{}", int(status), cudnnGetErrorString(status),
                                           expr, detail[0] ? ": " : "", detail));
}

}  // namespace detail

namespace {

constexpr int kMaxDevices = 64;

// Handles are leaked at thread exit on purpose: destroying them after the CUDA context is
// torn down (static destruction order) crashes inside the libraries.
struct ThreadHandles {
  std::array<cublasHandle_t, kMaxDevices> blas{};
  std::array<cublasLtHandle_t, kMaxDevices> lt{};
  std::array<cudnnHandle_t, kMaxDevices> dnn{};
  std::array<void*, kMaxDevices> ws{};
  std::array<size_t, kMaxDevices> ws_size{};
  std::array<cudaStream_t, kMaxDevices> ws_stream{};  // the stream the workspace was allocated on
};

ThreadHandles& handles() {
  thread_local ThreadHandles h;
  return h;
}

bool env_allow_tf32() {
  const char* v = std::getenv("PACER_ALLOW_TF32");
  return !(v && std::strcmp(v, "0") == 0);
}

bool g_allow_tf32 = env_allow_tf32();

}  // namespace

bool allow_tf32() { return g_allow_tf32; }
void set_allow_tf32(bool allow) { g_allow_tf32 = allow; }

void* cublas_handle() {
  const int d = current_device();
  check_device(d);
  cublasHandle_t& h = handles().blas[size_t(d)];
  if (!h) PACER_CUBLAS_CHECK(cublasCreate(&h));
  PACER_CUBLAS_CHECK(cublasSetStream(h, static_cast<cudaStream_t>(current_stream(d).handle())));
  PACER_CUBLAS_CHECK(cublasSetMathMode(h, allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  return h;
}

void* cublaslt_handle() {
  const int d = current_device();
  check_device(d);
  cublasLtHandle_t& h = handles().lt[size_t(d)];
  if (!h) PACER_CUBLAS_CHECK(cublasLtCreate(&h));
  return h;
}

void* cudnn_handle() {
  const int d = current_device();
  check_device(d);
  cudnnHandle_t& h = handles().dnn[size_t(d)];
  if (!h) PACER_CUDNN_CHECK(cudnnCreate(&h));
  PACER_CUDNN_CHECK(cudnnSetStream(h, static_cast<cudaStream_t>(current_stream(d).handle())));
  return h;
}

void* workspace(size_t nbytes) {
  const int d = current_device();
  check_device(d);
  ThreadHandles& h = handles();
  const cudaStream_t s = static_cast<cudaStream_t>(current_stream(d).handle());
  // A workspace is only reused on the stream it was allocated on: on another stream, work
  // still queued on the old one could be using it. Freeing returns the block to the cache
  // tagged with its allocating stream, so only that stream (in order) can reuse it.
  if (h.ws_size[size_t(d)] < nbytes || (h.ws[size_t(d)] && h.ws_stream[size_t(d)] != s)) {
    raw_free(h.ws[size_t(d)]);
    h.ws[size_t(d)] = nullptr;
    h.ws_size[size_t(d)] = 0;
    h.ws[size_t(d)] = raw_alloc(nbytes);
    h.ws_size[size_t(d)] = nbytes;
    h.ws_stream[size_t(d)] = s;
  }
  return h.ws[size_t(d)];
}

}  // namespace pacer::cuda
