// CPU kernels of the pointwise ops: the shared kernels (ops/common/pointwise_kernels.h) on
// the CPU loop engine (loops.h), plus a memset-speed fill.
#include "ops/common/pointwise_kernels.h"
#include "ops/cpu/loops.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

struct CpuLoop {
  template <class Out, class... In, class F>
  static void run(const Tensor& out, const std::array<const Tensor*, sizeof...(In)>& ins, F f) {
    cpu_kernel<Out, In...>(out, ins, f);
  }
};

void fill_kernel(OpCall& c) {
  Tensor& out = c.out(0);
  if (!out.is_contiguous()) return PointwiseKernels<CpuLoop>::fill(c);
  const Scalar& v = c.attrs.scalar("value");
  dispatch_dtype(out.dtype(), [&]<class T>() {
    const T value = v.to<T>();
    T* p = static_cast<T*>(out.data());
    parallel_for(0, out.numel(), kPointwiseGrain, [&](int64_t b, int64_t e) { std::fill(p + b, p + e, value); });
  });
}

}  // namespace

PACER_POINTWISE_KERNELS(CPU, CpuLoop);
PACER_KERNEL(fill_, CPU, fill_kernel);
PACER_KERNEL(full, CPU, fill_kernel);
// to_device between two CPU tensors (Tensor::to never asks for it, a direct call may).
PACER_KERNEL(to_device, CPU, [](OpCall& c) { PK_CPU::convert(c.out(0), c.in(0)); });

}  // namespace pacer::ops::cpu
