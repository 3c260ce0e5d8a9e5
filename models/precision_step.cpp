#include "models/precision_step.h"

#include "ops/api.h"
#include "ops/autocast.h"

namespace pacer::models {

Tensor forward_in_precision(const std::function<Tensor(const Tensor&)>& forward, const Tensor& x,
                            const PrecisionPlan& plan, DeviceType device_type) {
  // A half model keeps f32 batch norm (O2), whose eval-mode output is f32: autocast brings
  // the next layer's input back to the half type.
  const bool autocast = plan.autocast || plan.half_model;
  AutocastGuard guard(device_type, plan.lower == DType::F32 ? DType::BF16 : plan.lower, autocast);
  Tensor out = forward(plan.half_model ? cast(x, plan.lower) : x);
  return out.dtype() == DType::F32 ? out : cast(out, DType::F32);
}

void backward_and_step(const Tensor& loss, optim::Optimizer& opt, optim::LossScaler* scaler) {
  opt.zero_grad();
  if (scaler) {
    scaler->scale(loss).backward();
    scaler->step(opt);
    scaler->update();
  } else {
    loss.backward();
    opt.step();
  }
}

}  // namespace pacer::models
