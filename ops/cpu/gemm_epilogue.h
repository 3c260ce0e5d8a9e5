#pragma once
/// CPU kernels of the graph's GEMM-epilogue fusion (ops/graph/passes/gemm_epilogue.cpp): the
/// activation and the bias gradient run over the GEMM's output right after it is written,
/// with the same loops and roundings as the unfused ops, so replays stay bit for bit equal.

#include "core/tensor.h"

namespace pacer::ops::cpu {

/// t = relu(t) in place, t contiguous and floating (the relu op's numbers).
void relu_in_place(Tensor& t);

/// y [m, n] = relu(linear(x [m, k], w [n, k], bias [n] or undefined)); y contiguous.
void linear_relu_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y);

/// dz [m, n] = relu_backward(g [m, k] @ w [k, n], y [m, n]) (zero where y <= 0) and
/// db [n] = dz summed over its rows, in the row order of sum(dz, {0}); dz and y contiguous.
void mm_relu_backward_bias_grad(const Tensor& g, const Tensor& w, const Tensor& y, Tensor& dz, Tensor& db);

/// dz = relu_backward(dy, y) for NCHW tensors [N, C, H, W] (contiguous, one shape and
/// dtype) and db [C] = dz summed over N, H, W in the order of sum(dz, {0, 2, 3}) (per
/// channel, images then pixels, eight accumulators).
void relu_backward_channel_sums(const Tensor& dy, const Tensor& y, Tensor& dz, Tensor& db);

}  // namespace pacer::ops::cpu
