// Autocast state is per thread (as in PyTorch): one flag and half type per device type,
// a suspension flag for kernels and backward, and the cache of cast parameters, which
// lives while any guard is open.
#include "ops/autocast.h"

#include <unordered_map>

#include "autograd/grad_mode.h"
#include "ops/autocast_apply.h"
#include "ops/api.h"

namespace pacer {

namespace {

struct State {
  bool enabled[kNumDeviceTypes] = {false, false};
  DType lower[kNumDeviceTypes] = {DType::BF16, DType::F16};
  bool suspended = false;
  int depth = 0;
  // Cast parameters by source impl. The entry holds the source (so its address cannot be
  // reused while cached) and its version when cast: a parameter updated in place (an
  // optimizer step inside the region) is cast again.
  struct Cached {
    Tensor source;
    uint32_t version;
    Tensor cast;
  };
  std::unordered_map<const TensorImpl*, Cached> cache;
};

State& state() {
  thread_local State s;
  return s;
}

int rank(DType t) {
  switch (t) {
    case DType::F16: return 1;
    case DType::BF16: return 1;
    case DType::F32: return 2;
    case DType::F64: return 3;
    default: return 0;
  }
}

Tensor cast_cached(const Tensor& t, DType to) {
  State& s = state();
  const bool param = t.is_leaf() && t.requires_grad();
  if (!param) return cast(t, to);
  auto it = s.cache.find(t.impl());
  if (it != s.cache.end() && it->second.version == t.version() && it->second.cast.dtype() == to) return it->second.cast;
  Tensor c = cast(t, to);
  s.cache[t.impl()] = {t, t.version(), c};
  return c;
}

}  // namespace

AutocastGuard::AutocastGuard(DeviceType device_type, DType lower, bool enabled) : type_(device_type) {
  PACER_CHECK(is_half(lower), "autocast: expected float16 or bfloat16 as the lower type, got {}", dtype_name(lower));
  State& s = state();
  prev_enabled_ = s.enabled[int(type_)];
  prev_dtype_ = s.lower[int(type_)];
  s.enabled[int(type_)] = enabled;
  s.lower[int(type_)] = lower;
  ++s.depth;
}

AutocastGuard::~AutocastGuard() {
  State& s = state();
  s.enabled[int(type_)] = prev_enabled_;
  s.lower[int(type_)] = prev_dtype_;
  if (--s.depth == 0) s.cache.clear();
}

AutocastSuspend::AutocastSuspend() : prev_(state().suspended) { state().suspended = true; }
AutocastSuspend::~AutocastSuspend() { state().suspended = prev_; }

bool autocast_enabled(DeviceType type) {
  const State& s = state();
  return s.enabled[int(type)] && !s.suspended;
}

DType autocast_dtype(DeviceType type) { return state().lower[int(type)]; }

namespace ops {

bool autocast_active() {
  const State& s = state();
  return !s.suspended && (s.enabled[0] || s.enabled[1]);
}

void apply_autocast(const OpDef& op, std::vector<Tensor>& inputs, const Attrs& attrs) {
  if (op.amp == AmpPolicy::None || attrs.has("dtype")) return;
  // The call's device: the first input that is not a 0-dim CPU scalar (as the dispatcher).
  const Tensor* first = nullptr;
  for (const Tensor& t : inputs) {
    if (!t.defined()) continue;
    if (!first) first = &t;
    if (!(t.dim() == 0 && t.is_cpu())) {
      first = &t;
      break;
    }
  }
  if (!first || !autocast_enabled(first->device().type)) return;
  const DType lower = autocast_dtype(first->device().type);
  AutocastSuspend casts_as_given;  // the casts below are plain casts
  switch (op.amp) {
    case AmpPolicy::Lower:
      for (Tensor& t : inputs)
        if (t.defined() && t.dtype() == DType::F32) t = cast_cached(t, lower);
      break;
    case AmpPolicy::Fp32:
      for (Tensor& t : inputs)
        if (t.defined() && is_half(t.dtype())) t = cast_cached(t, DType::F32);
      break;
    case AmpPolicy::Promote: {
      // Among dimensioned tensors only: a 0-dim operand (x * 0.9's wrapped number) never
      // widens a result, as in type promotion.
      DType widest = DType::F16;
      bool mixed = false, any = false;
      for (const Tensor& t : inputs) {
        if (!t.defined() || !is_floating(t.dtype()) || t.dim() == 0) continue;
        if (any && t.dtype() != widest) mixed = true;
        if (!any || rank(t.dtype()) > rank(widest)) widest = t.dtype();
        any = true;
      }
      if (mixed)
        for (Tensor& t : inputs)
          if (t.defined() && t.dim() > 0 && is_floating(t.dtype()) && t.dtype() != widest) t = cast_cached(t, widest);
      break;
    }
    case AmpPolicy::None: break;
  }
}

}  // namespace ops

}  // namespace pacer
