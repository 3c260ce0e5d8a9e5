#pragma once
/// One training step under a precision plan (models/precision.h), shared by every
/// workload's loop: the forward runs under autocast where the plan asks (and, for a half
/// model, with inputs in the half type and f32 logits back), and the backward + optimizer
/// step go through the loss scaler when there is one.

#include <functional>

#include "models/precision.h"
#include "optim/loss_scaler.h"
#include "optim/optimizer.h"

namespace pacer::models {

/// forward(x) under the plan on `device_type`; the result is cast to f32.
Tensor forward_in_precision(const std::function<Tensor(const Tensor&)>& forward, const Tensor& x,
                            const PrecisionPlan& plan, DeviceType device_type);

/// zero_grad, backward of `loss` (scaled when `scaler`), step (skipped on overflow), update.
void backward_and_step(const Tensor& loss, optim::Optimizer& opt, optim::LossScaler* scaler);

}  // namespace pacer::models
