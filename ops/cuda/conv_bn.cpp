// The conv_bn fusion's CUDA kernel (ops/graph/cuda_conv_bn.h): cuDNN's convolution + genstats
// graph writes y and its per-channel sums, and batch norm's normalize pass (+ residual + ReLU)
// runs from them, so y is read once after it is written instead of twice. Where no engine
// takes the problem (or with a bias, or PACER_CONV_GENSTATS=0), the convolution and batch
// norm's own statistics pass run as the unfused nodes would.
#include "ops/api.h"
#include "ops/cuda/batch_norm.h"
#include "ops/cuda/conv.h"
#include "ops/graph/cuda_conv_bn.h"
#include "ops/shape_utils.h"

namespace pacer::ops::cuda {

namespace {

bool takes(const TensorMeta& x, const TensorMeta& y) {
  for (const TensorMeta* m : {&x, &y}) {
    if (m->dtype != DType::F16 && m->dtype != DType::BF16) return false;
    if (!is_dense_channels_last(m->sizes, m->strides)) return false;
  }
  return x.dtype == y.dtype && batch_norm_vec_takes(y);
}

void forward(const Tensor& x, const Tensor& w, const Tensor& b, const Attrs& conv, const Tensor& bn_w,
             const Tensor& bn_b, const Tensor& residual, bool relu, double eps, Tensor& y, Tensor& out, Tensor& mean,
             Tensor& invstd) {
  if (!b.defined() && (x.dtype() == DType::F16 || x.dtype() == DType::BF16)) {
    Tensor sums = empty({2, y.size(1)}, {.dtype = DType::F32, .device = y.device()});
    if (conv2d_forward_with_sums(x, w, conv, y, sums)) {
      batch_norm_channels_last(y, bn_w, bn_b, residual, relu, eps, out, mean, invstd, sums);
      return;
    }
  }
  conv2d_forward_into(x, w, b, conv, y);
  batch_norm_channels_last(y, bn_w, bn_b, residual, relu, eps, out, mean, invstd);
}

struct RegisterConvBatchNorm {
  RegisterConvBatchNorm() {
    graph::detail::CudaConvBatchNorm& h = graph::detail::cuda_conv_bn();
    h.takes = &takes;
    h.forward = &forward;
  }
} register_conv_bn;

}  // namespace

}  // namespace pacer::ops::cuda
