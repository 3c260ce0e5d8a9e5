#pragma once
/// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_ with norm_type 2.

#include <vector>

#include "core/tensor.h"

namespace pacer::optim {

/// Scales the gradients of `params` in place so that their global L2 norm is at most
/// `max_norm`, and returns that norm as it was before clipping (a 0-d tensor of the
/// gradients' dtype on the first gradient's device, never read back to the host):
///   total = ||(||g_1||, ..., ||g_n||)||;   g_i *= min(max_norm / (total + 1e-6), 1).
/// Like torch, every gradient is multiplied, by exactly 1 when no clipping is needed, and
/// a non-finite norm is returned rather than reported. Parameters without a gradient are
/// skipped; with none at all the result is 0.
Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

}  // namespace pacer::optim
