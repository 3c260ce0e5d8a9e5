// CUDA kernels of the factories, twins of ops/cpu/factory.cpp. Element i of every output is
// computed from i alone with the CPU's formula. The random kernels take (seed, offset) from
// the attrs that the op definition filled from the generator (ops/defs/factory.cpp), exactly
// as the CPU kernels do, and call the same core/philox.h functions: rand and randint draw
// the CPU's numbers bit for bit (integer Philox rounds plus exact scaling); randn goes
// through logf / cosf / sqrtf, whose CUDA versions may differ from the host libm's by an
// ulp (see the report / philox.h).
#include "core/philox.h"
#include "ops/cuda/loops.cuh"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

// p[i] = F(i) for i < n, stored with the engine's conversion (the CPU's store_cast).
template <class T, class F>
__global__ void generate_kernel(T* __restrict__ p, int64_t n, F f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = store_value<T>(f(i));
}

template <class F>
void generate(Tensor& out, F f) {
  const int64_t n = out.numel();
  if (n == 0) return;
  dispatch_dtype(out.dtype(), [&]<class T>() {
    generate_kernel<T, F><<<blocks_for(n), kThreads, 0, stream()>>>(data_ptr<T>(out), n, f);
    PACER_CUDA_KERNEL_CHECK();
  });
}

// arange / linspace: the CPU build (-march=native, GCC's default -ffp-contract=fast)
// compiles `start + i * step` and `end - step * j` into fused multiply-adds (checked in the
// disassembly of ops/cpu/factory.cpp.o: vfmadd / vfnmadd), so the device does the same with
// explicit fma() calls: one rounding per element, identical to the CPU's. (A CPU build
// without FMA would round the product separately; the results then differ by at most an
// ulp of double. Writing std::fma in ops/cpu/factory.cpp would pin both down.)
struct Arange {
  double start, step;
  __device__ double operator()(int64_t i) const { return fma(double(i), step, start); }
};

struct Linspace {
  double start, end, step;
  int64_t n;
  __device__ double operator()(int64_t i) const {
    if (n == 1) return start;
    // Fill from both ends so the last element is exactly `end`, as torch.linspace does.
    return i < n / 2 ? fma(step, double(i), start) : fma(-step, double(n - 1 - i), end);
  }
};

struct Uniform {
  uint64_t seed, offset;
  __device__ float operator()(int64_t i) const { return philox_uniform(seed, offset, uint64_t(i)); }
};

struct Normal {
  uint64_t seed, offset;
  __device__ float operator()(int64_t i) const { return philox_normal(seed, offset, uint64_t(i)); }
};

struct RandInt {
  uint64_t seed, offset, range;
  int64_t low;
  __device__ int64_t operator()(int64_t i) const {
    // 64 random bits from two lanes; the modulo bias is below 2^-32 for ranges < 2^32.
    const Philox4 r = philox_block(seed, offset, uint64_t(i));
    const uint64_t bits = (uint64_t(r.v[0]) << 32) | r.v[1];
    return low + int64_t(bits % range);
  }
};

void arange_kernel(OpCall& c) {
  const double start = c.attrs.scalar("start").to_double(), step = c.attrs.scalar("step").to_double();
  generate(c.out(0), Arange{start, step});
}

void linspace_kernel(OpCall& c) {
  const double start = c.attrs.f("start"), end = c.attrs.f("end");
  const int64_t n = c.attrs.i("steps");
  const double step = n > 1 ? (end - start) / double(n - 1) : 0.0;
  generate(c.out(0), Linspace{start, end, step, n});
}

void rand_kernel(OpCall& c) {
  const uint64_t seed = uint64_t(c.attrs.i("seed")), offset = uint64_t(c.attrs.i("offset"));
  generate(c.out(0), Uniform{seed, offset});
}

void randn_kernel(OpCall& c) {
  const uint64_t seed = uint64_t(c.attrs.i("seed")), offset = uint64_t(c.attrs.i("offset"));
  generate(c.out(0), Normal{seed, offset});
}

void randint_kernel(OpCall& c) {
  const uint64_t seed = uint64_t(c.attrs.i("seed")), offset = uint64_t(c.attrs.i("offset"));
  const int64_t low = c.attrs.i("low");
  const uint64_t range = uint64_t(c.attrs.i("high") - low);
  generate(c.out(0), RandInt{seed, offset, range, low});
}

}  // namespace

PACER_KERNEL(arange, CUDA, arange_kernel);
PACER_KERNEL(linspace, CUDA, linspace_kernel);
PACER_KERNEL(rand, CUDA, rand_kernel);
PACER_KERNEL(randn, CUDA, randn_kernel);
PACER_KERNEL(randint, CUDA, randint_kernel);

}  // namespace pacer::ops::cuda
