#include "optim/loss_scaler.h"

#include <cmath>
#include <map>

#include "autograd/grad_mode.h"
#include "ops/api.h"

namespace pacer::optim {

LossScaler::LossScaler(LossScalerOptions options, Device device) : options_(options), device_(device) {
  const LossScalerOptions& o = options_;
  PACER_CHECK(o.init_scale > 0 && std::isfinite(o.init_scale), "LossScaler: expected init_scale > 0, got {}",
              o.init_scale);
  PACER_CHECK(o.growth_factor >= 1, "LossScaler: expected growth_factor >= 1, got {}", o.growth_factor);
  PACER_CHECK(o.backoff_factor > 0 && o.backoff_factor <= 1, "LossScaler: expected 0 < backoff_factor <= 1, got {}",
              o.backoff_factor);
  PACER_CHECK(o.growth_interval >= 1, "LossScaler: expected growth_interval >= 1, got {}", o.growth_interval);
  PACER_CHECK(o.min_scale > 0 && o.min_scale <= o.max_scale,
              "LossScaler: expected 0 < min_scale <= max_scale, got {} and {}", o.min_scale, o.max_scale);
  const Options f32{.dtype = DType::F32, .device = device}, i64{.dtype = DType::I64, .device = device};
  scale_ = full({1}, o.init_scale, f32);
  growth_tracker_ = zeros({1}, i64);
  skipped_ = zeros({1}, i64);
  found_inf_ = zeros({1}, f32);
}

LossScaler LossScaler::fixed(double scale, Device device) {
  return LossScaler({.init_scale = scale, .min_scale = std::min(1.0, scale), .max_scale = std::max(16777216.0, scale),
                     .dynamic = false},
                    device);
}

Tensor LossScaler::scale(const Tensor& loss) const {
  PACER_CHECK(loss.device() == device_, "LossScaler: the loss is on {}, the scaler's state on {}", loss.device(),
              device_);
  return loss * (loss.dtype() == DType::F32 ? scale_ : cast(scale_, loss.dtype()));
}

void LossScaler::unscale_(Optimizer& opt) {
  PACER_CHECK(!unscaled_, "LossScaler: unscale_ was already called since the last update()");
  NoGradGuard no_grad;
  fill_(found_inf_, 0.0);
  const Tensor inv = div(ones({1}, {.dtype = DType::F32, .device = device_}), scale_);
  std::vector<Tensor> grads;
  for (const Tensor& p : opt.model_params())
    if (p.grad().defined()) grads.push_back(p.grad());
  if (!grads.empty()) amp_unscale_(grads, found_inf_, inv);
  unscaled_ = true;
}

void LossScaler::step(Optimizer& opt) {
  if (!unscaled_) unscale_(opt);
  opt.set_found_inf(found_inf_);
  try {
    opt.step();
  } catch (...) {
    opt.set_found_inf(Tensor());
    throw;
  }
  opt.set_found_inf(Tensor());
}

void LossScaler::update() {
  NoGradGuard no_grad;
  const LossScalerOptions& o = options_;
  if (o.dynamic) {
    amp_update_scale_(scale_, growth_tracker_, skipped_, found_inf_, o.growth_factor, o.backoff_factor,
                      o.growth_interval, o.min_scale, o.max_scale);
  } else {  // a fixed scale: only the skipped steps are counted
    amp_update_scale_(scale_, growth_tracker_, skipped_, found_inf_, 1.0, 1.0, 1, o.init_scale, o.init_scale);
  }
  fill_(found_inf_, 0.0);
  unscaled_ = false;
}

double LossScaler::current_scale() const { return scale_.to(kCPU).item<float>(); }
int64_t LossScaler::skipped_steps() const { return skipped_.to(kCPU).item<int64_t>(); }

NamedTensors LossScaler::state_dict() const {
  return {{"loss_scaler.scale", scale_}, {"loss_scaler.growth_tracker", growth_tracker_},
          {"loss_scaler.skipped_steps", skipped_}};
}

void LossScaler::load_state_dict(const NamedTensors& state) {
  const std::map<std::string, Tensor> by = detail::by_name("LossScaler load_state_dict", state);
  const std::pair<const char*, DType> want[] = {{"loss_scaler.scale", DType::F32},
                                                {"loss_scaler.growth_tracker", DType::I64},
                                                {"loss_scaler.skipped_steps", DType::I64}};
  for (const auto& [key, dt] : want) {
    auto it = by.find(key);
    PACER_CHECK(it != by.end(), "LossScaler load_state_dict: missing key '{}'", key);
    PACER_CHECK(it->second.dtype() == dt && it->second.numel() == 1,
                "LossScaler load_state_dict: '{}' expected one {} value, got shape {} ({})", key, dtype_name(dt),
                it->second.sizes(), it->second.dtype());
  }
  for (const auto& [key, t] : by)
    PACER_CHECK(key.rfind("loss_scaler.", 0) == 0 && (key == want[0].first || key == want[1].first ||
                                                       key == want[2].first),
                "LossScaler load_state_dict: unexpected key '{}'", key);
  NoGradGuard no_grad;
  copy_(scale_, reshape(by.at(want[0].first), {1}));
  copy_(growth_tracker_, reshape(by.at(want[1].first), {1}));
  copy_(skipped_, reshape(by.at(want[2].first), {1}));
  PACER_CHECK(current_scale() > 0 && std::isfinite(current_scale()),
              "LossScaler load_state_dict: the saved scale {} is not a positive finite number", current_scale());
}

}  // namespace pacer::optim
