#pragma once
/// The vectorized channels-last batch norm of ops/cuda/batch_norm_nhwc.cu, for other CUDA
/// kernels of ops (internal): the op's kernel takes it where it applies, the bn_relu hooks use
/// it, and the conv_bn fusion (ops/cuda/conv_bn.cpp) feeds it the statistics its convolution
/// summed.

#include "core/tensor.h"
#include "ops/op_def.h"

namespace pacer::ops::cuda {

/// Whether the vectorized kernels take a tensor of this metadata: dense channels-last 4-d
/// float32 / float16 / bfloat16 on CUDA, with channels that suit the vector width.
bool batch_norm_vec_takes(const TensorMeta& m);

/// out, mean, invstd = [relu](batch_norm_train(x; w, b, eps) [+ residual]) (residual may be
/// undefined), x / out / residual dense channels-last and 16-byte aligned; mean and invstd
/// float32 [C]. With `sums` (float32 [2, C]: the sums of x and of its squares), the
/// statistics come from them and x is read once.
void batch_norm_channels_last(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& residual, bool relu,
                              double eps, Tensor& out, Tensor& mean, Tensor& invstd, const Tensor& sums = Tensor());

/// The backward of batch_norm_channels_last: dx, dw, db from dy (with `z`, a ReLU's output
/// after the batch norm, dy is relu_backward(dy, z) on the fly; z may be undefined); dw and
/// db in the weight's dtype.
void batch_norm_channels_last_backward(const Tensor& dy, const Tensor& z, const Tensor& x, const Tensor& w,
                                       const Tensor& mean, const Tensor& invstd, Tensor& dx, Tensor& dw, Tensor& db);

}  // namespace pacer::ops::cuda
