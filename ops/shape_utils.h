#pragma once
/// Shape arithmetic shared by op definitions: dim wrapping, broadcasting, type promotion.

#include <vector>

#include "core/tensor.h"

namespace pacer::ops {

/// d in [-ndim, ndim) -> [0, ndim); throws naming the valid range.
int64_t wrap_dim(int64_t d, int64_t ndim);
/// The broadcast of two shapes (NumPy rules); throws naming both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b);
/// PyTorch's result_type: dimensioned tensors outrank 0-dim tensors, which outrank
/// wrapped numbers, except that a higher category (bool < integer < floating) wins.
DType result_type(const std::vector<Tensor>& ts);
/// Normalized reduction dims (sorted, unique); empty `dims` means all dims.
Shape reduction_dims(const Shape& dims, int64_t ndim);
/// Output shape of a reduction over `dims`.
Shape reduced_shape(const Shape& sizes, const Shape& dims, bool keepdim);

/// The element strides of the channels-last (NHWC) layout of a 4-d NCHW shape.
Shape channels_last_strides(const Shape& sizes);
/// True when `strides` are exactly the channels-last strides of the 4-d `sizes` (every dim's,
/// size-1 ones included: what the vectorized and fused NHWC kernels index by).
bool is_dense_channels_last(const Shape& sizes, const Shape& strides);
/// True when t is 4-d, laid out channels-last, and not also plain contiguous (a tensor
/// with C == 1 or H == W == 1 is both; it counts as contiguous).
bool is_channels_last(const Tensor& t);

}  // namespace pacer::ops
