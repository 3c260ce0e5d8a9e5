#pragma once
/// CPU kernels of the graph's softmax + cross-entropy fusion (ops/graph/passes/
/// softmax_xent.cpp). Each row's log-softmax is computed as the log_softmax kernel computes
/// it (max-shifted, the same exp / log, in f32 or f64) but never stored: the forward keeps
/// only what the loss reads, the backward recomputes the row from the logits. Sums run in the
/// order of sum()'s row kernel, so results equal the unfused ops' bit for bit.

#include "core/tensor.h"

namespace pacer::ops::cpu {

/// x [N, C] (float32 / float64, contiguous), index [N, 1] (int64 / int32) of classes:
/// picked [N, 1] = logp[i, index[i]], and, when rowsum is non-null, rowsum [N] = sum over j
/// of logp[i, j] (label smoothing's term), logp = log_softmax(x, 1).
void log_softmax_pick(const Tensor& x, const Tensor& index, Tensor& picked, Tensor* rowsum);

/// The cross-entropy backward through the log-softmax: with P[i, j] = spread[i] (when defined)
/// + (src[i] at j = index[i], else 0) (the loss's gradient with respect to logp: the
/// smoothing term spread over the row, the picked term at the target), dx = P - exp(logp) *
/// sum_j P[i, j]. spread and src are [N, 1] of x's dtype; dx [N, C] contiguous.
void log_softmax_xent_backward(const Tensor& x, const Tensor& index, const Tensor& src, const Tensor& spread,
                               Tensor& dx);

}  // namespace pacer::ops::cpu
