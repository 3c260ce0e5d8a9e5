#pragma once
/// The window geometry of max_pool2d / avg_pool2d as their attrs carry it (CPU and CUDA
/// kernels read it alike).

#include <cstdint>

#include "ops/op_def.h"

namespace pacer::ops {

struct PoolGeometry {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};

inline PoolGeometry pool_geometry(const Attrs& a) {
  const Shape &k = a.shape("kernel"), &s = a.shape("stride"), &p = a.shape("padding"), &d = a.shape("dilation");
  return {k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1]};
}

}  // namespace pacer::ops
