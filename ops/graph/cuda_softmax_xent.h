#pragma once
/// The CUDA side of the softmax_xent fusion (ops/graph/passes/softmax_xent.cpp): the
/// cross-entropy's log-softmax + target pick [+ row sum], and its backward, each one row
/// sweep per block that never stores the log-probabilities. Registered by the CUDA backend
/// (ops/cuda/softmax.cu); null in a build without it. Contiguous float32 / float64 [N, C]
/// logits and int64 / int32 class indices, as the CPU kernels (ops/cpu/softmax_xent.h).

#include "core/tensor.h"

namespace pacer::graph::detail {

struct CudaSoftmaxXent {
  /// picked[i] = log_softmax(x)[i, index[i]]; rowsum[i] = sum_r log_softmax(x)[i, r] when
  /// `rowsum` is given. An index out of range throws the unfused gather's error (checked
  /// after the launch, unless a CUDA graph is being captured).
  void (*pick)(const Tensor& x, const Tensor& index, Tensor& picked, Tensor* rowsum) = nullptr;
  /// dx = P - exp(log_softmax(x)) * sum(P, 1), P = [spread +] one-hot(index) * src.
  void (*backward)(const Tensor& x, const Tensor& index, const Tensor& src, const Tensor& spread, Tensor& dx) = nullptr;
};

CudaSoftmaxXent& cuda_softmax_xent();

}  // namespace pacer::graph::detail
