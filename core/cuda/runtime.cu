#include <cuda_runtime.h>

#include "core/cuda/runtime.h"

namespace pacer::cuda {

int device_count() {
  int n = 0;
  // No driver or no device is a normal situation on CPU machines, not an error.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

}  // namespace pacer::cuda
