#pragma once
/// The CUDA side of the gemm_epilogue fusion (ops/graph/passes/gemm_epilogue.cpp),
/// registered by the CUDA backend (ops/cuda/gemm_epilogue.cu); null in a build without it.
/// Floating dtypes (f32, f64, f16, bf16).

#include "core/tensor.h"

namespace pacer::graph::detail {

struct CudaGemmEpilogue {
  /// y = relu(x @ w^T + bias): x [m, k], w [n, k], bias [n] or undefined, y a dense fresh
  /// [m, n] (cuBLASLt's RELU_BIAS epilogue).
  void (*linear_relu)(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) = nullptr;
  /// dz = relu_backward(g @ w, y), db = sum(dz, [0]): g [m, k], w [k, n], y m * n elements
  /// (the ReLU output), dz a dense fresh [m, n], db [n]. The GEMM writes dz; one sweep then
  /// masks it in place and sums its columns.
  void (*mm_relu_bgrad)(const Tensor& g, const Tensor& w, const Tensor& y, Tensor& dz, Tensor& db) = nullptr;
  /// dz = relu_backward(dy, y), db = sum(dz) per channel, for dense channels-last [N, C, H,
  /// W] tensors (memory [N * H * W, C]: the channel sums are column sums).
  void (*relu_bgrad_channels_last)(const Tensor& dy, const Tensor& y, Tensor& dz, Tensor& db) = nullptr;
};

CudaGemmEpilogue& cuda_gemm_epilogue();

}  // namespace pacer::graph::detail
