#include "optim/schedules.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "ops/api.h"

namespace pacer::optim {

NamedTensors LrSchedule::state_dict() const {
  NamedTensors out = {{"step", scalar_tensor(step_, DType::I64)}};
  // settings() hands out pointers so that load_state_dict can write through them; here
  // they are only read.
  for (const Setting& s : const_cast<LrSchedule*>(this)->settings())
    out.emplace_back(s.name, detail::setting_to_tensor(s));
  return out;
}

void LrSchedule::load_state_dict(const NamedTensors& state) {
  const std::string w = fmt::format("{} load_state_dict", name());
  std::map<std::string, Tensor> given = detail::by_name(w, state);
  auto take = [&](const std::string& key) {
    auto it = given.find(key);
    PACER_CHECK(it != given.end(), "{}: missing key '{}'", w, key);
    Tensor t = it->second;
    given.erase(it);
    return t;
  };
  // Everything is checked before the first change, so that an error leaves the schedule
  // as it was.
  const Tensor step = take("step");
  PACER_CHECK(step.dtype() == DType::I64 && step.dim() == 0, "{}: 'step' expected shape [] ({}), got shape {} ({})", w,
              DType::I64, step.sizes(), step.dtype());
  std::vector<std::pair<Setting, Tensor>> loaded, old;
  for (const Setting& s : settings()) {
    const Tensor t = take(s.name);
    detail::check_setting_tensor(w, s.name, t, s);
    loaded.emplace_back(s, t);
  }
  if (!given.empty()) PACER_FAIL("{}: unexpected key '{}'", w, given.begin()->first);
  for (const auto& [s, t] : loaded) old.emplace_back(s, detail::setting_to_tensor(s));
  for (const auto& [s, t] : loaded) detail::load_setting(s, t);
  try {
    check();
  } catch (const Error& e) {
    for (const auto& [s, t] : old) detail::load_setting(s, t);
    PACER_FAIL("{}: the state holds invalid settings: {}", w, e.what());
  }
  step_ = (step.is_cpu() ? step : step.to(kCPU)).item<int64_t>();
}

// --- PolyWarmup ----------------------------------------------------------------------

PolyWarmupSchedule::PolyWarmupSchedule(PolyWarmupOptions options) : LrSchedule(1), o_(options) { check(); }

double PolyWarmupSchedule::lr(int64_t step) const {
  if (o_.warmup_steps > 0 && step <= o_.warmup_steps) return o_.base_lr * (double(step) / double(o_.warmup_steps));
  // Past total_steps the decay would rise again (an even power of a negative number).
  const double s = double(std::min(step, o_.total_steps));
  const double progress = (s - double(o_.warmup_steps)) / double(o_.total_steps - o_.warmup_steps);
  return o_.end_lr + (o_.base_lr - o_.end_lr) * std::pow(1.0 - progress, o_.power);
}

std::vector<Setting> PolyWarmupSchedule::settings() {
  return {{"base_lr", &o_.base_lr},
          {"warmup_steps", &o_.warmup_steps},
          {"total_steps", &o_.total_steps},
          {"power", &o_.power},
          {"end_lr", &o_.end_lr}};
}

void PolyWarmupSchedule::check() const {
  PACER_CHECK(o_.base_lr >= 0, "PolyWarmup: expected base_lr >= 0, got {}", o_.base_lr);
  PACER_CHECK(o_.warmup_steps >= 0, "PolyWarmup: expected warmup_steps >= 0, got {}", o_.warmup_steps);
  PACER_CHECK(o_.total_steps > o_.warmup_steps, "PolyWarmup: expected total_steps > warmup_steps, got {} and {}",
              o_.total_steps, o_.warmup_steps);
  PACER_CHECK(o_.power > 0, "PolyWarmup: expected power > 0, got {}", o_.power);
  PACER_CHECK(o_.end_lr >= 0, "PolyWarmup: expected end_lr >= 0, got {}", o_.end_lr);
}

// --- WarmupMultiStep -----------------------------------------------------------------

WarmupMultiStepSchedule::WarmupMultiStepSchedule(WarmupMultiStepOptions options) : LrSchedule(1), o_(options) {
  check();
}

double WarmupMultiStepSchedule::lr(int64_t step) const {
  double warmup = 1;
  if (step < o_.warmup_steps) {
    const double alpha = double(step) / double(o_.warmup_steps);
    warmup = o_.warmup_factor * (1 - alpha) + alpha;
  }
  // bisect_right: the number of milestones <= step.
  const auto passed = std::upper_bound(o_.milestones.begin(), o_.milestones.end(), step) - o_.milestones.begin();
  return o_.base_lr * warmup * std::pow(o_.gamma, double(passed));
}

std::vector<Setting> WarmupMultiStepSchedule::settings() {
  return {{"base_lr", &o_.base_lr},
          {"milestones", &o_.milestones},
          {"gamma", &o_.gamma},
          {"warmup_steps", &o_.warmup_steps},
          {"warmup_factor", &o_.warmup_factor}};
}

void WarmupMultiStepSchedule::check() const {
  PACER_CHECK(o_.base_lr >= 0, "WarmupMultiStep: expected base_lr >= 0, got {}", o_.base_lr);
  for (size_t i = 1; i < o_.milestones.size(); ++i)
    PACER_CHECK(o_.milestones[i - 1] < o_.milestones[i],
                "WarmupMultiStep: expected strictly increasing milestones, got [{}]", fmt::join(o_.milestones, ", "));
  PACER_CHECK(o_.gamma > 0, "WarmupMultiStep: expected gamma > 0, got {}", o_.gamma);
  PACER_CHECK(o_.warmup_steps >= 0, "WarmupMultiStep: expected warmup_steps >= 0, got {}", o_.warmup_steps);
  PACER_CHECK(o_.warmup_factor >= 0 && o_.warmup_factor <= 1,
              "WarmupMultiStep: expected 0 <= warmup_factor <= 1, got {}", o_.warmup_factor);
}

// --- InverseSqrt ---------------------------------------------------------------------

InverseSqrtSchedule::InverseSqrtSchedule(InverseSqrtOptions options) : LrSchedule(0), o_(options) { check(); }

double InverseSqrtSchedule::lr(int64_t step) const {
  const double s = double(std::max<int64_t>(step, 0)), warmup = double(o_.warmup_steps);
  return o_.scale * std::min(s / warmup, 1.0) / std::sqrt(std::max(s, warmup));
}

std::vector<Setting> InverseSqrtSchedule::settings() {
  return {{"scale", &o_.scale}, {"warmup_steps", &o_.warmup_steps}};
}

void InverseSqrtSchedule::check() const {
  PACER_CHECK(o_.scale >= 0, "InverseSqrt: expected scale >= 0, got {}", o_.scale);
  PACER_CHECK(o_.warmup_steps > 0, "InverseSqrt: expected warmup_steps > 0, got {}", o_.warmup_steps);
}

// --- Gnmt ----------------------------------------------------------------------------

GnmtSchedule::GnmtSchedule(GnmtOptions options) : LrSchedule(0), o_(options) { check(); }

GnmtOptions GnmtSchedule::for_iterations(double base_lr, int64_t iterations, int64_t warmup_steps,
                                         double remain_fraction, int64_t decay_steps, double decay_factor) {
  PACER_CHECK(iterations > 0, "Gnmt: expected iterations > 0, got {}", iterations);
  PACER_CHECK(decay_steps > 0, "Gnmt: expected decay_steps > 0, got {}", decay_steps);
  GnmtOptions o;
  o.base_lr = base_lr;
  o.remain_steps = int64_t(remain_fraction * double(iterations));  // Python's int(): toward zero
  o.decay_interval = std::max<int64_t>((iterations - o.remain_steps) / decay_steps, 1);
  o.warmup_steps = std::min(warmup_steps, o.remain_steps);
  o.decay_steps = decay_steps;
  o.decay_factor = decay_factor;
  return o;
}

double GnmtSchedule::lr(int64_t step) const {
  if (step <= o_.warmup_steps) {
    // The reference's order of operations: f^(warmup - step), not 0.01^((warmup - step) / warmup).
    const double f = o_.warmup_steps != 0 ? std::exp(std::log(0.01) / double(o_.warmup_steps)) : 1.0;
    return o_.base_lr * std::pow(f, double(o_.warmup_steps - step));
  }
  if (step >= o_.remain_steps) {
    const int64_t decays = std::min((step - o_.remain_steps) / o_.decay_interval + 1, o_.decay_steps);
    return o_.base_lr * std::pow(o_.decay_factor, double(decays));
  }
  return o_.base_lr;
}

std::vector<Setting> GnmtSchedule::settings() {
  return {{"base_lr", &o_.base_lr},           {"warmup_steps", &o_.warmup_steps},
          {"remain_steps", &o_.remain_steps}, {"decay_interval", &o_.decay_interval},
          {"decay_steps", &o_.decay_steps},   {"decay_factor", &o_.decay_factor}};
}

void GnmtSchedule::check() const {
  PACER_CHECK(o_.base_lr >= 0, "Gnmt: expected base_lr >= 0, got {}", o_.base_lr);
  PACER_CHECK(o_.warmup_steps >= 0, "Gnmt: expected warmup_steps >= 0, got {}", o_.warmup_steps);
  PACER_CHECK(o_.remain_steps >= o_.warmup_steps, "Gnmt: expected remain_steps >= warmup_steps, got {} and {}",
              o_.remain_steps, o_.warmup_steps);
  PACER_CHECK(o_.decay_interval > 0, "Gnmt: expected decay_interval > 0, got {}", o_.decay_interval);
  PACER_CHECK(o_.decay_steps >= 0, "Gnmt: expected decay_steps >= 0, got {}", o_.decay_steps);
  PACER_CHECK(o_.decay_factor > 0, "Gnmt: expected decay_factor > 0, got {}", o_.decay_factor);
}

}  // namespace pacer::optim
