// CPU kernels of the loss-scaling primitives. Gradients are dense (checked by infer), so
// each is walked as its flat storage range; the order of elements does not matter here.
#include <atomic>
#include <cmath>

#include "core/thread_pool.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

void unscale_kernel(OpCall& c) {
  const float inv = *static_cast<const float*>(c.in(1).data());
  std::atomic<bool> found{false};
  for (size_t i = 2; i < c.inputs.size(); ++i) {
    const Tensor& g = c.in(i);
    dispatch_floating(g.dtype(), "amp_unscale_", [&]<class T>() {
      using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
      T* p = static_cast<T*>(g.data());
      const C s = C(inv);
      parallel_for(0, g.numel(), 32768, [&](int64_t b, int64_t e) {
        bool bad = false;
        for (int64_t j = b; j < e; ++j) {
          const C v = C(p[j]);
          bad = bad || !std::isfinite(v);
          p[j] = T(v * s);
        }
        if (bad) found.store(true, std::memory_order_relaxed);
      });
    });
  }
  if (found.load()) *static_cast<float*>(c.out(0).data()) = 1.0f;
}

void update_scale_kernel(OpCall& c) {
  float& scale = *static_cast<float*>(c.in(0).data());
  int64_t& tracker = *static_cast<int64_t*>(c.in(1).data());
  int64_t& skipped = *static_cast<int64_t*>(c.in(2).data());
  const bool found = *static_cast<const float*>(c.in(3).data()) != 0.0f;
  const double growth = c.attrs.f("growth"), backoff = c.attrs.f("backoff");
  const int64_t interval = c.attrs.i("interval");
  double s = scale;
  if (found) {
    s *= backoff;
    tracker = 0;
    ++skipped;
  } else if (++tracker >= interval) {
    if (std::isfinite(float(s * growth))) s *= growth;
    tracker = 0;
  }
  s = std::min(std::max(s, c.attrs.f("min_scale")), c.attrs.f("max_scale"));
  scale = float(s);
}

}  // namespace

PACER_KERNEL(amp_unscale_, CPU, unscale_kernel);
PACER_KERNEL(amp_update_scale_, CPU, update_scale_kernel);

}  // namespace pacer::ops::cpu
