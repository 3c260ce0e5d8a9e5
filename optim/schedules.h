#pragma once
/// Learning-rate schedules of the MLPerf v0.6 workloads. Each is a pure function lr(step)
/// of the step index its reference uses, plus a counter for the training loop:
///
///   opt.set_lr(schedule.lr());   // lr(current_step())
///   opt.step();
///   schedule.step();             // on to the next update
///
/// The counter starts at the index the reference gives the first update (documented per
/// class: 1 where the reference counts updates from 1, 0 where it counts completed ones).
/// state_dict() holds the counter ("step", i64 scalar) and every setting (f64 / i64
/// scalars, i64 [n] lists), so that a checkpoint resumes the schedule exactly.

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "optim/optimizer.h"

namespace pacer::optim {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  /// The learning rate of update `step` (a pure function of the settings).
  virtual double lr(int64_t step) const = 0;
  double lr() const { return lr(step_); }
  /// Advances the counter by one update.
  void step() { ++step_; }
  int64_t current_step() const { return step_; }
  void set_step(int64_t step) { step_ = step; }
  /// "PolyWarmup", ...: the prefix of this schedule's error messages.
  virtual const char* name() const = 0;

  NamedTensors state_dict() const;
  /// Restores the counter and the settings. Every key must be present and known, each
  /// tensor of the expected dtype and shape, and the settings valid; otherwise it throws
  /// pacer::Error naming the key, and the schedule is left as it was.
  void load_state_dict(const NamedTensors& state);

 protected:
  explicit LrSchedule(int64_t first_step) : step_(first_step) {}
  virtual std::vector<Setting> settings() = 0;
  /// Throws pacer::Error when a setting is out of range.
  virtual void check() const = 0;

 private:
  int64_t step_;
};

/// Linear warmup, then polynomial decay to end_lr (MLPerf ResNet-50 with LARS: power 2).
/// Reference: PolySchedule in NVIDIA's MLPerf v0.6 ResNet-50 (mxnet/common/fit.py), which
/// MXNet calls with num_update = 1 for the first update, so the counter starts at 1:
///   step <= warmup:  base_lr * step / warmup_steps
///   otherwise:       end_lr + (base_lr - end_lr) * (1 - (s - warmup) / (total - warmup))^power,
///                    s = min(step, total_steps)   (NVIDIA's end_lr is 1e-4)
struct PolyWarmupOptions {
  double base_lr = 0.1;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double power = 2;
  double end_lr = 0;
};

class PolyWarmupSchedule final : public LrSchedule {
 public:
  explicit PolyWarmupSchedule(PolyWarmupOptions options);
  double lr(int64_t step) const override;
  using LrSchedule::lr;
  const char* name() const override { return "PolyWarmup"; }
  const PolyWarmupOptions& options() const { return o_; }

 private:
  std::vector<Setting> settings() override;
  void check() const override;
  PolyWarmupOptions o_;
};

/// Linear warmup from warmup_factor * base_lr, then a factor gamma at each milestone.
/// Reference: WarmupMultiStepLR of maskrcnn-benchmark (MLPerf Mask R-CNN: warmup_factor
/// 1/3, 500 warmup steps, milestones 60k / 80k), whose first update is step 1:
///   lr = base_lr * w * gamma^(number of milestones <= step),
///   w = warmup_factor * (1 - a) + a with a = step / warmup_steps while step < warmup_steps,
///   else 1.
/// MLPerf SSD's reference warmup, base_lr - (wb - it) * base_lr / (wb * 2^k), is this with
/// warmup_factor = 1 - 2^-k (its first update is step 0: call set_step(0)).
struct WarmupMultiStepOptions {
  double base_lr = 0.1;
  /// Strictly increasing steps.
  std::vector<int64_t> milestones = {};
  double gamma = 0.1;
  int64_t warmup_steps = 0;
  double warmup_factor = 1.0 / 3;
};

class WarmupMultiStepSchedule final : public LrSchedule {
 public:
  explicit WarmupMultiStepSchedule(WarmupMultiStepOptions options);
  double lr(int64_t step) const override;
  using LrSchedule::lr;
  const char* name() const override { return "WarmupMultiStep"; }
  const WarmupMultiStepOptions& options() const { return o_; }

 private:
  std::vector<Setting> settings() override;
  void check() const override;
  WarmupMultiStepOptions o_;
};

/// Linear warmup, then inverse square root decay (Transformer). The MLPerf reference's
/// LR = 2 * d_model^-0.5 * min(step / warmup, 1) * rsqrt(max(step, warmup)), i.e.
///   lr = scale * min(step^-0.5, step * warmup_steps^-1.5),   scale = 2 * d_model^-0.5,
/// computed in the reference's form; its step is TensorFlow's global step, 0 at the
/// first update (which therefore gets lr 0), so the counter starts at 0.
struct InverseSqrtOptions {
  double scale = 1;
  int64_t warmup_steps = 1;
};

class InverseSqrtSchedule final : public LrSchedule {
 public:
  explicit InverseSqrtSchedule(InverseSqrtOptions options);
  double lr(int64_t step) const override;
  using LrSchedule::lr;
  const char* name() const override { return "InverseSqrt"; }
  const InverseSqrtOptions& options() const { return o_; }

 private:
  std::vector<Setting> settings() override;
  void check() const override;
  InverseSqrtOptions o_;
};

/// GNMT: exponential warmup from base_lr / 100, then decay_steps multiplications by
/// decay_factor, decay_interval steps apart, from remain_steps on. Reference:
/// WarmupMultiStepLR of the MLPerf GNMT (rnn_translator/pytorch/seq2seq/train/
/// lr_scheduler.py), a torch _LRScheduler whose first update is step 0:
///   step <= warmup:   base_lr * f^(warmup - step),  f = exp(log(0.01) / warmup)  (1 if warmup 0)
///   step >= remain:   base_lr * decay_factor^min((step - remain) / decay_interval + 1, decay_steps)
///   otherwise:        base_lr
struct GnmtOptions {
  double base_lr = 1e-3;
  int64_t warmup_steps = 200;
  /// No decay unless set (for_iterations sets it from the length of the run).
  int64_t remain_steps = std::numeric_limits<int64_t>::max();
  int64_t decay_interval = 1;
  int64_t decay_steps = 4;
  double decay_factor = 0.5;
};

class GnmtSchedule final : public LrSchedule {
 public:
  explicit GnmtSchedule(GnmtOptions options);
  /// The reference's settings for a run of `iterations` updates: remain_steps =
  /// int(remain_fraction * iterations), decay_interval = max((iterations - remain_steps) /
  /// decay_steps, 1), warmup_steps capped at remain_steps (MLPerf: 200 warmup steps,
  /// decays from 2/3 of training).
  static GnmtOptions for_iterations(double base_lr, int64_t iterations, int64_t warmup_steps = 200,
                                    double remain_fraction = 2.0 / 3, int64_t decay_steps = 4,
                                    double decay_factor = 0.5);
  double lr(int64_t step) const override;
  using LrSchedule::lr;
  const char* name() const override { return "Gnmt"; }
  const GnmtOptions& options() const { return o_; }

 private:
  std::vector<Setting> settings() override;
  void check() const override;
  GnmtOptions o_;
};

}  // namespace pacer::optim
