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

}  // namespace pacer::ops
