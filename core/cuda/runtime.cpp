#include "core/cuda/runtime.h"

#include <cstdio>

#include "core/cuda/check.h"

namespace pacer::cuda {

namespace detail {

void throw_cuda_error(const char* file, int line, const char* expr, cudaError_t status) {
  (void)cudaGetLastError();  // clear a sticky launch error so the next call starts clean
  ::pacer::detail::throw_error(file, line,
                               fmt::format("CUDA error {} ({}) from {}: {}", int(status), cudaGetErrorName(status),
                                           expr, cudaGetErrorString(status)));
}

}  // namespace detail

bool is_built() { return true; }

int device_count() {
  // Probed once: the answer cannot change in a process, and the call costs a driver trip.
  static const int n = [] {
    int count = 0;
    // No driver or no device is a normal situation on CPU machines, not an error.
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    return count;
  }();
  return n;
}

void check_device(int index) {
  const int n = device_count();
  PACER_CHECK(n > 0, "cuda:{} was asked for, but no CUDA device is visible (no GPU, or no driver); use the 'cpu' device",
              index);
  PACER_CHECK(index >= 0 && index < n, "cuda:{} was asked for, but only {} CUDA device(s) are visible (cuda:0..cuda:{})",
              index, n, n - 1);
}

int current_device() {
  int d = 0;
  if (device_count() == 0) return 0;
  PACER_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void set_device(int index) {
  check_device(index);
  PACER_CUDA_CHECK(cudaSetDevice(index));
}

void synchronize(int index) {
  if (index < 0) index = current_device();
  DeviceGuard g(index);
  PACER_CUDA_CHECK(cudaDeviceSynchronize());
}

DeviceProperties device_properties(int index) {
  check_device(index);
  cudaDeviceProp p{};
  PACER_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
  DeviceProperties out{};
  std::snprintf(out.name, sizeof(out.name), "%s", p.name);
  out.major = p.major;
  out.minor = p.minor;
  out.multiprocessors = p.multiProcessorCount;
  out.total_memory = p.totalGlobalMem;
  return out;
}

DeviceGuard::DeviceGuard(int index) {
  const int cur = current_device();
  if (cur != index) {
    set_device(index);
    previous_ = cur;
  }
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) (void)cudaSetDevice(previous_);  // destructors must not throw
}

}  // namespace pacer::cuda
