#pragma once
/// CPU batch norm with fused epilogues, for the bn_relu graph pass (the batch_norm_train
/// ops' kernels are the same loops without them). All tensors contiguous; x [N, C, ...].

#include "core/tensor.h"

namespace pacer::ops::cpu {

/// out = relu(batch_norm(x) [+ residual]) with the batch statistics in mean / invstd (as
/// batch_norm_train's outputs 1 and 2); `residual` may be undefined.
void batch_norm_relu_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& residual, double eps,
                             Tensor& out, Tensor& mean, Tensor& invstd);

/// batch_norm_train_backward of relu_backward(dout, out): the ReLU mask applied on the fly.
void batch_norm_relu_backward(const Tensor& dout, const Tensor& out, const Tensor& x, const Tensor& w,
                              const Tensor& mean, const Tensor& invstd, Tensor& dx, Tensor& dw, Tensor& db);

}  // namespace pacer::ops::cpu
