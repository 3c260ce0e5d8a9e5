#pragma once
/// The CUDA side of the conv_bn fusion (ops/graph/passes/bn_relu.cpp): a convolution whose
/// output batch norm (+ residual + ReLU) normalizes, with the statistics summed by cuDNN in the
/// convolution's epilogue (a conv + genstats graph) where an engine takes it, else by batch
/// norm's own pass. Registered by the CUDA backend (ops/cuda/conv_bn.cpp); null without it.

#include "core/tensor.h"
#include "ops/attrs.h"
#include "ops/op_def.h"

namespace pacer::graph::detail {

struct CudaConvBatchNorm {
  /// Whether the fused kernel takes a convolution with this input and output: both dense
  /// channels-last float16 / bfloat16 CUDA tensors whose channels suit the batch-norm kernels.
  bool (*takes)(const ops::TensorMeta& x, const ops::TensorMeta& y) = nullptr;
  /// y = conv2d(x, w, b; conv); out = [relu](batch_norm_train(y; bn_w, bn_b, eps) [+ residual])
  /// with the batch statistics in mean / invstd; b and residual may be undefined.
  void (*forward)(const Tensor& x, const Tensor& w, const Tensor& b, const ops::Attrs& conv, const Tensor& bn_w,
                  const Tensor& bn_b, const Tensor& residual, bool relu, double eps, Tensor& y, Tensor& out,
                  Tensor& mean, Tensor& invstd) = nullptr;
};

CudaConvBatchNorm& cuda_conv_bn();

}  // namespace pacer::graph::detail
