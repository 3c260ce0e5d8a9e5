#pragma once
/// CUDA convolution entries for other CUDA kernels of ops (internal): the conv_bn fusion's
/// kernel (ops/cuda/conv_bn.cpp) runs the convolution into its planned output.

#include "core/tensor.h"
#include "ops/attrs.h"

namespace pacer::ops::cuda {

/// y = conv2d(x, w, b; attrs) into the allocated y (NCHW or NHWC), as the conv2d kernel runs it.
void conv2d_forward_into(const Tensor& x, const Tensor& w, const Tensor& b, const Attrs& attrs, Tensor& y);

/// y = conv2d(x, w; attrs) with batch norm's per-channel sums of y and of its squares
/// (`sums`: float32 [2, C], dense) from cuDNN's fused convolution + genstats graph
/// (ops/cuda/conv_graph.h). For float16 / bfloat16, one group, y dense channels-last (x and w
/// are brought to channels-last); not for a 1x1 convolution that runs as a GEMM.
/// PACER_CONV_GENSTATS=0 turns it off. False, with nothing written, when it does not apply or
/// no engine takes the problem.
bool conv2d_forward_with_sums(const Tensor& x, const Tensor& w, const Attrs& attrs, Tensor& y, Tensor& sums);

}  // namespace pacer::ops::cuda
