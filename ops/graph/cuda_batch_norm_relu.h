#pragma once
/// The CUDA side of the bn_relu fusion (ops/graph/passes/bn_relu.cpp): batch norm + (add +)
/// ReLU as one normalize kernel, and ReLU's backward applied inside batch norm's, for dense
/// channels-last tensors. Registered by the CUDA backend (ops/cuda/batch_norm_nhwc.cu); all null
/// in a build without it.

#include "core/tensor.h"
#include "ops/op_def.h"

namespace pacer::graph::detail {

struct CudaBatchNormRelu {
  /// Whether the fused kernels take a batch norm input of this metadata (a dense
  /// channels-last 4-d f32 / f16 / bf16 CUDA tensor whose channels suit the vectorized kernels;
  /// an input at an address not 16-byte aligned is copied first). False for every tensor under
  /// PACER_BN_SCALAR=1.
  bool (*takes)(const ops::TensorMeta& x) = nullptr;
  /// out = relu(batch_norm(x) [+ residual]) with the batch statistics in mean / invstd, as
  /// batch_norm_train's outputs; `residual` may be undefined.
  void (*forward)(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& residual, double eps, Tensor& out,
                  Tensor& mean, Tensor& invstd) = nullptr;
  /// batch_norm_train_backward of relu_backward(dout, out).
  void (*backward)(const Tensor& dout, const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& mean,
                   const Tensor& invstd, Tensor& dx, Tensor& dw, Tensor& db) = nullptr;
};

CudaBatchNormRelu& cuda_batch_norm_relu();

}  // namespace pacer::graph::detail
