// CPU kernels of the factories. Random kernels compute element i from (seed, offset, i)
// alone (core/philox.h), so the result does not depend on the thread count.
#include "core/philox.h"
#include "ops/cpu/loops.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

template <class F>
void generate(Tensor& out, F value_at) {
  dispatch_dtype(out.dtype(), [&]<class T>() {
    T* p = static_cast<T*>(out.data());
    parallel_for(0, out.numel(), 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = store_cast<T>(value_at(i));
    });
  });
}

void arange_kernel(OpCall& c) {
  const double start = c.attrs.scalar("start").to_double(), step = c.attrs.scalar("step").to_double();
  generate(c.out(0), [=](int64_t i) { return start + double(i) * step; });
}

void linspace_kernel(OpCall& c) {
  const double start = c.attrs.f("start"), end = c.attrs.f("end");
  const int64_t n = c.attrs.i("steps");
  const double step = n > 1 ? (end - start) / double(n - 1) : 0.0;
  // Fill from both ends so the last element is exactly `end`, as torch.linspace does.
  generate(c.out(0), [=](int64_t i) {
    if (n == 1) return start;
    return i < n / 2 ? start + step * double(i) : end - step * double(n - 1 - i);
  });
}

void rand_kernel(OpCall& c) {
  const uint64_t seed = uint64_t(c.attrs.i("seed")), offset = uint64_t(c.attrs.i("offset"));
  generate(c.out(0), [=](int64_t i) { return philox_uniform(seed, offset, uint64_t(i)); });
}

void randn_kernel(OpCall& c) {
  const uint64_t seed = uint64_t(c.attrs.i("seed")), offset = uint64_t(c.attrs.i("offset"));
  generate(c.out(0), [=](int64_t i) { return philox_normal(seed, offset, uint64_t(i)); });
}

void randint_kernel(OpCall& c) {
  const uint64_t seed = uint64_t(c.attrs.i("seed")), offset = uint64_t(c.attrs.i("offset"));
  const int64_t low = c.attrs.i("low");
  const uint64_t range = uint64_t(c.attrs.i("high") - low);
  generate(c.out(0), [=](int64_t i) {
    // 64 random bits from two lanes; the modulo bias is below 2^-32 for ranges < 2^32.
    Philox4 r = philox_block(seed, offset, uint64_t(i));
    uint64_t bits = (uint64_t(r.v[0]) << 32) | r.v[1];
    return low + int64_t(bits % range);
  });
}

}  // namespace

PACER_KERNEL(arange, CPU, arange_kernel);
PACER_KERNEL(linspace, CPU, linspace_kernel);
PACER_KERNEL(rand, CPU, rand_kernel);
PACER_KERNEL(randn, CPU, randn_kernel);
PACER_KERNEL(randint, CPU, randint_kernel);

}  // namespace pacer::ops::cpu
