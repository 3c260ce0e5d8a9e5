#pragma once
/// CPU batch norm with fused epilogues, for the bn_relu graph pass (the batch_norm_train
/// ops' kernels are the same loops without them). All tensors contiguous; x [N, C, ...].

#include "core/tensor.h"

namespace pacer::ops::cpu {

/// Adds the per-channel sum(x) and sum(x^2) of images [n0, n0 + nb) into sums[c] and
/// sums[C + c] (sums: 2 * C doubles, zero at first), in the order batch_norm_train adds them:
/// gathered image by image (the conv_bn epilogue), they equal its statistics bit for bit.
void batch_norm_add_image_sums(const Tensor& x, int64_t n0, int64_t nb, double* sums);

/// out = batch_norm(x) [+ residual] [then ReLU], with the batch statistics in mean / invstd
/// (as batch_norm_train's outputs 1 and 2), from those sums, or summed here when `sums` is
/// null; `residual` may be undefined.
void batch_norm_forward_from_sums(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& residual, bool relu,
                                  double eps, const double* sums, Tensor& out, Tensor& mean, Tensor& invstd);

/// The normalize pass alone: out = batch_norm(x) [+ residual] [then ReLU] with the batch
/// statistics given (mean / invstd as the forward stored them): equal to the forward's out.
void batch_norm_apply(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& mean, const Tensor& invstd,
                      const Tensor& residual, bool relu, Tensor& out);

/// batch_norm_train_backward of relu_backward(dout, out): the ReLU mask applied on the fly.
void batch_norm_relu_backward(const Tensor& dout, const Tensor& out, const Tensor& x, const Tensor& w,
                              const Tensor& mean, const Tensor& invstd, Tensor& dx, Tensor& dw, Tensor& db);

}  // namespace pacer::ops::cpu
