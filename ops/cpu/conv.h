#pragma once
/// CPU conv2d's forward with a hook for fused epilogues (the conv_bn graph pass gathers
/// batch-norm statistics while each output image is still in cache).

#include <cstdint>
#include <functional>

#include "core/tensor.h"
#include "ops/attrs.h"

namespace pacer::ops::cpu {

/// y = conv2d(x, weight, bias) with conv2d's attrs (bias may be undefined); after output
/// images [n0, n0 + nb) are written, calls after_images(n0, nb), images in order.
void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Attrs& attrs, Tensor& y,
                    const std::function<void(int64_t, int64_t)>& after_images = {});

}  // namespace pacer::ops::cpu
