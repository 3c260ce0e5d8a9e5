#pragma once
/// RoIAlign pieces shared by the CPU and CUDA kernels (ops/cpu/detection.cpp,
/// ops/cuda/detection.cu): the op's attributes, one roi's geometry, and the bilinear
/// sampling rule (torchvision's). Each device computes the geometry itself: the CUDA one
/// spells out its roundings to match the CPU bit for bit.

#include <cstdint>

#include "core/macros.h"
#include "ops/op_def.h"

namespace pacer::ops {

struct RoiArgs {
  int64_t ph, pw, sampling_ratio;
  double scale;
  bool aligned;
};

inline RoiArgs roi_args(const OpCall& c) {
  const Shape& os = c.attrs.shape("output_size");
  return {os[0], os[1], c.attrs.i("sampling_ratio"), c.attrs.f("spatial_scale"), c.attrs.b("aligned")};
}

/// The geometry of one roi (torchvision's roi_align_forward_kernel_impl).
template <class C>
struct RoiGeom {
  int64_t batch;
  C start_h, start_w, bin_h, bin_w;
  int64_t grid_h, grid_w;
  C count;
};

/// Bilinear corners and weights of sample (y, x) in an H x W map; false when the sample
/// lies outside [-1, H] x [-1, W] (or the map is empty): it then contributes nothing.
template <class C>
PACER_HOST_DEVICE inline bool roi_bilinear(C y, C x, int64_t H, int64_t W, int64_t idx[4], C w[4]) {
  if (H <= 0 || W <= 0) return false;
  if (y < C(-1) || y > C(H) || x < C(-1) || x > C(W)) return false;
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  int64_t yl = int64_t(y), xl = int64_t(x), yh, xh;
  if (yl >= H - 1) {
    yh = yl = H - 1;
    y = C(yl);
  } else {
    yh = yl + 1;
  }
  if (xl >= W - 1) {
    xh = xl = W - 1;
    x = C(xl);
  } else {
    xh = xl + 1;
  }
  const C ly = y - C(yl), lx = x - C(xl), hy = C(1) - ly, hx = C(1) - lx;
  idx[0] = yl * W + xl;
  idx[1] = yl * W + xh;
  idx[2] = yh * W + xl;
  idx[3] = yh * W + xh;
  w[0] = hy * hx;
  w[1] = hy * lx;
  w[2] = ly * hx;
  w[3] = ly * lx;
  return true;
}

}  // namespace pacer::ops
