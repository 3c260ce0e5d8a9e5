#pragma once
/// The two primitives of loss scaling (optim::LossScaler drives them). Both work in place
/// on device tensors, so a CUDA training step needs no host synchronization.

#include <vector>

#include "core/tensor.h"

namespace pacer {

/// For every gradient g: found_inf = 1 when g holds an inf or NaN, then g *= inv_scale (in
/// place, computed in f32, f64 for f64). found_inf and inv_scale: f32, one element, on the
/// gradients' device; found_inf is only ever set, never cleared. Gradients must be dense
/// (contiguous or channels-last). One kernel launch per dtype on CUDA.
void amp_unscale_(const std::vector<Tensor>& grads, Tensor& found_inf, const Tensor& inv_scale);

/// The dynamic loss scale's update after a step (all tensors one element, in place):
/// with found_inf set, scale *= backoff, growth_tracker = 0 and skipped += 1; otherwise
/// growth_tracker += 1 and, once it reaches `interval`, scale *= growth (kept finite) and
/// growth_tracker = 0. scale is then clamped to [min_scale, max_scale].
/// scale, found_inf: f32; growth_tracker, skipped: i64.
void amp_update_scale_(Tensor& scale, Tensor& growth_tracker, Tensor& skipped, const Tensor& found_inf, double growth,
                       double backoff, int64_t interval, double min_scale, double max_scale);

}  // namespace pacer
