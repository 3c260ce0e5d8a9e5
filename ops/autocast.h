#pragma once
/// Autocast (DESIGN §6): inside an AutocastGuard, every op call on the guarded device type
/// applies its OpDef's policy to its floating inputs before anything else:
///   Lower   — f32 inputs are cast to the guard's half type (matmuls, convolutions, LSTM);
///   Fp32    — f16 / bf16 inputs are cast to f32 (softmax, log-softmax, sums, losses' parts);
///   Promote — mixed floating inputs are cast to the widest among them;
///   None    — inputs are left alone (everything else, and ops with an explicit `dtype`).
/// f64 inputs are never lowered (as in PyTorch). The casts are recorded, so gradients flow
/// back to the f32 parameters; a parameter (a leaf that requires grad) is cast once per
/// outermost guard and the cast reused, as torch.autocast's weight cache does.
/// Kernels and backward functions run with autocast suspended.

#include <optional>

#include "core/tensor.h"

namespace pacer {

/// Turns autocast on (or off, with enabled = false) for ops running on `device_type`, in
/// this thread, for the guard's lifetime; nests.
class AutocastGuard {
 public:
  AutocastGuard(DeviceType device_type, DType lower, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  DeviceType type_;
  bool prev_enabled_;
  DType prev_dtype_;
};

/// Suspends autocast for the guard's lifetime (kernels, backward): ops see their inputs as
/// given.
class AutocastSuspend {
 public:
  AutocastSuspend();
  ~AutocastSuspend();
  AutocastSuspend(const AutocastSuspend&) = delete;
  AutocastSuspend& operator=(const AutocastSuspend&) = delete;

 private:
  bool prev_;
};

/// Whether autocast is on for `type` in this thread (and not suspended), and its half type.
bool autocast_enabled(DeviceType type);
DType autocast_dtype(DeviceType type);

}  // namespace pacer
