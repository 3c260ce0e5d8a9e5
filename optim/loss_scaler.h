#pragma once
/// Loss scaling for f16 training (DESIGN §6), as torch.cuda.amp.GradScaler and NVIDIA's
/// MLPerf code do it:
///
///   Tensor loss = ...;                    // forward under AutocastGuard
///   scaler.scale(loss).backward();        // gradients of loss * S
///   scaler.step(opt);                     // unscale (fused inf/NaN check), step unless overflow
///   scaler.update();                      // the dynamic scale's bookkeeping
///
/// Dynamic (default): start at 2^16, x2 after 2000 clean steps, x0.5 and skip the step on
/// an inf/NaN gradient, kept within [min_scale, max_scale]. Static: a fixed scale (SSD's
/// MLPerf run used 128), steps with an overflow are still skipped. The scale, the growth
/// counter, the skipped-step count and the overflow flag live on the device, so a CUDA step
/// never waits for the host; current_scale() and skipped_steps() read them (a sync).

#include "optim/optimizer.h"

namespace pacer::optim {

struct LossScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  double min_scale = 1.0;
  double max_scale = 16777216.0;  // 2^24
  bool dynamic = true;            // false: the scale stays init_scale
};

class LossScaler {
 public:
  /// A scaler whose state lives on `device` (where the loss and gradients are).
  explicit LossScaler(LossScalerOptions options = {}, Device device = kCPU);
  /// The static scaler: a fixed `scale`.
  static LossScaler fixed(double scale, Device device = kCPU);

  /// loss * scale (differentiable: backward yields scaled gradients).
  Tensor scale(const Tensor& loss) const;
  /// Divides the gradients of opt's parameters by the scale and raises the overflow flag
  /// when any holds an inf or NaN; once per step (step() calls it when not done yet). After
  /// it, gradients are true gradients (e.g. for clip_grad_norm_).
  void unscale_(Optimizer& opt);
  /// unscale_ if needed, then opt.step() obeying the overflow flag.
  void step(Optimizer& opt);
  /// After step(): updates the scale (dynamic) and the skipped-step count; clears the flag.
  void update();

  /// The current scale and the number of skipped steps (reading them syncs a device).
  double current_scale() const;
  int64_t skipped_steps() const;
  const LossScalerOptions& options() const { return options_; }

  /// "loss_scaler.scale" (f32 [1]), ".growth_tracker" and ".skipped_steps" (i64 [1]), for
  /// training checkpoints; load_state_dict checks them and copies them in.
  NamedTensors state_dict() const;
  void load_state_dict(const NamedTensors& state);

 private:
  LossScalerOptions options_;
  Device device_;
  Tensor scale_, growth_tracker_, skipped_, found_inf_;
  bool unscaled_ = false;
};

}  // namespace pacer::optim
