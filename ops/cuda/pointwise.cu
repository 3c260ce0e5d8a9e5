// CUDA kernels of the pointwise ops: the shared kernels (ops/common/pointwise_kernels.h) on
// the CUDA loop engine (loops.cuh).
#include "ops/common/pointwise_kernels.h"
#include "ops/cuda/loops.cuh"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

struct CudaLoop {
  template <class Out, class... In, class F>
  static void run(const Tensor& out, const std::array<const Tensor*, sizeof...(In)>& ins, F f) {
    cuda_kernel<Out, In...>(out, ins, f);
  }
};

}  // namespace

PACER_POINTWISE_KERNELS(CUDA, CudaLoop);
PACER_KERNEL(fill_, CUDA, PK_CUDA::fill);
PACER_KERNEL(full, CUDA, PK_CUDA::fill);

}  // namespace pacer::ops::cuda
