// CPU detection kernels, following torchvision's CPU kernels (csrc/ops/cpu/nms_kernel.cpp,
// roi_align_kernel.cpp). nms / batched_nms: boxes sorted by score (descending, stable),
// greedy suppression with IoU > threshold (within a class for batched_nms); the kept
// indices go into an output the kernel allocates (kDynamicShape). roi_align: per bin, the
// mean of bilinear samples; roi_align_backward adds each output gradient back with the
// same weights (rois in parallel over channels).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "ops/cpu/loops.h"
#include "ops/common/roi_align_math.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

template <class C>
std::vector<int64_t> greedy_nms(const C* b, const C* s, const int64_t* cls, int64_t n, C thr, bool use_score_thr,
                                C score_thr, int64_t top_k) {
  std::vector<int64_t> order;
  order.reserve(size_t(n));
  for (int64_t i = 0; i < n; ++i)
    if (!use_score_thr || s[i] > score_thr) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return s[i] > s[j]; });
  std::vector<C> area(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) area[size_t(i)] = (b[i * 4 + 2] - b[i * 4]) * (b[i * 4 + 3] - b[i * 4 + 1]);
  std::vector<char> suppressed(size_t(n), 0);
  std::vector<int64_t> keep;
  for (size_t oi = 0; oi < order.size(); ++oi) {
    const int64_t i = order[oi];
    if (suppressed[size_t(i)]) continue;
    keep.push_back(i);
    if (top_k >= 0 && int64_t(keep.size()) >= top_k) break;
    const C ix1 = b[i * 4], iy1 = b[i * 4 + 1], ix2 = b[i * 4 + 2], iy2 = b[i * 4 + 3], ia = area[size_t(i)];
    for (size_t oj = oi + 1; oj < order.size(); ++oj) {
      const int64_t j = order[oj];
      if (suppressed[size_t(j)] || (cls && cls[i] != cls[j])) continue;
      const C xx1 = std::max(ix1, b[j * 4]), yy1 = std::max(iy1, b[j * 4 + 1]);
      const C xx2 = std::min(ix2, b[j * 4 + 2]), yy2 = std::min(iy2, b[j * 4 + 3]);
      const C w = std::max(C(0), xx2 - xx1), h = std::max(C(0), yy2 - yy1);
      const C inter = w * h;
      const C ovr = inter / (ia + area[size_t(j)] - inter);
      if (ovr > thr) suppressed[size_t(j)] = 1;
    }
  }
  if (top_k == 0) keep.clear();
  return keep;
}

// Boxes and scores as compute-type arrays (dense copies), classes as int64.
template <class C>
std::vector<C> to_compute(const Tensor& t) {
  const Tensor m = materialize(t);
  std::vector<C> v(size_t(m.numel()));
  dispatch_floating(m.dtype(), "detection", [&]<class T>() {
    const T* p = static_cast<const T*>(m.data());
    for (size_t i = 0; i < v.size(); ++i) v[i] = C(compute_t<T>(p[i]));
  });
  return v;
}

void nms_common(OpCall& c, bool batched) {
  const Tensor& boxes = c.in(0);
  const int64_t n = boxes.size(0);
  std::vector<int64_t> keep;
  std::vector<int64_t> cls;
  if (batched) {
    const Tensor k = materialize(c.in(2));
    cls.resize(size_t(n));
    dispatch_dtype(k.dtype(), [&]<class T>() {
      if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        const T* p = static_cast<const T*>(k.data());
        for (int64_t i = 0; i < n; ++i) cls[size_t(i)] = int64_t(p[i]);
      }
    });
  }
  const auto run = [&]<class C>() {
    const std::vector<C> b = to_compute<C>(boxes), s = to_compute<C>(c.in(1));
    const double st = batched ? c.attrs.f("score_threshold") : -INFINITY;
    keep = greedy_nms<C>(b.data(), s.data(), batched ? cls.data() : nullptr, n, C(c.attrs.f("iou_threshold")),
                         st > -INFINITY, C(st), batched ? c.attrs.i("top_k") : -1);
  };
  // f64 boxes are compared in f64, every other floating type in f32 (as torchvision's
  // kernels for float and half).
  if (boxes.dtype() == DType::F64) run.template operator()<double>();
  else run.template operator()<float>();
  Tensor out = empty({int64_t(keep.size())}, {.dtype = DType::I64, .device = c.device});
  std::copy(keep.begin(), keep.end(), static_cast<int64_t*>(out.data()));
  c.outputs = {out};
}

void nms_kernel(OpCall& c) { nms_common(c, false); }
void batched_nms_kernel(OpCall& c) { nms_common(c, true); }

// The geometry of roi r = (batch index, x1, y1, x2, y2), torchvision's rule.
template <class C>
RoiGeom<C> roi_geom(const C* r, C scale, int64_t ph, int64_t pw, int64_t sampling_ratio, bool aligned) {
  RoiGeom<C> g;
  g.batch = int64_t(r[0]);
  const C off = aligned ? C(0.5) : C(0);
  g.start_w = r[1] * scale - off;
  g.start_h = r[2] * scale - off;
  const C end_w = r[3] * scale - off, end_h = r[4] * scale - off;
  C rw = end_w - g.start_w, rh = end_h - g.start_h;
  if (!aligned) {
    rw = std::max(rw, C(1));
    rh = std::max(rh, C(1));
  }
  g.bin_h = rh / C(ph);
  g.bin_w = rw / C(pw);
  g.grid_h = sampling_ratio > 0 ? sampling_ratio : int64_t(std::ceil(rh / C(ph)));
  g.grid_w = sampling_ratio > 0 ? sampling_ratio : int64_t(std::ceil(rw / C(pw)));
  g.count = C(std::max<int64_t>(g.grid_h * g.grid_w, 1));
  return g;
}


// Calls f(bin index, corner indices, weights) for each sample of each bin inside the map.
template <class C, class F>
void for_each_sample(const RoiGeom<C>& g, int64_t ph, int64_t pw, int64_t H, int64_t W, F&& f) {
  for (int64_t py = 0; py < ph; ++py)
    for (int64_t px = 0; px < pw; ++px)
      for (int64_t iy = 0; iy < g.grid_h; ++iy) {
        const C y = g.start_h + C(py) * g.bin_h + (C(iy) + C(0.5)) * g.bin_h / C(g.grid_h);
        for (int64_t ix = 0; ix < g.grid_w; ++ix) {
          const C x = g.start_w + C(px) * g.bin_w + (C(ix) + C(0.5)) * g.bin_w / C(g.grid_w);
          int64_t idx[4];
          C w[4];
          if (roi_bilinear(y, x, H, W, idx, w)) f(py * pw + px, idx, w);
        }
      }
}

// The geometry of every roi, checking batch indices against N.
template <class C, class T>
std::vector<RoiGeom<C>> roi_geoms(const T* rp, int64_t K, int64_t N, const RoiArgs& a) {
  std::vector<RoiGeom<C>> geo;
  geo.reserve(size_t(K));
  for (int64_t k = 0; k < K; ++k) {
    C roi[5];
    for (int j = 0; j < 5; ++j) roi[j] = C(rp[k * 5 + j]);
    geo.push_back(roi_geom<C>(roi, C(a.scale), a.ph, a.pw, a.sampling_ratio, a.aligned));
    PACER_CHECK(geo.back().batch >= 0 && geo.back().batch < N, "roi {} has batch index {}, expected 0 <= index < {}",
                k, geo.back().batch, N);
  }
  return geo;
}

void roi_align_kernel(OpCall& c) {
  const Tensor x = materialize(c.in(0)), r = materialize(c.in(1));
  const RoiArgs a = roi_args(c);
  const int64_t N = x.size(0), Cn = x.size(1), H = x.size(2), W = x.size(3), K = r.size(0);
  dispatch_floating(x.dtype(), "roi_align", [&]<class T>() {
    using C = compute_t<T>;
    const T* in = static_cast<const T*>(x.data());
    T* out = static_cast<T*>(c.out(0).data());
    const std::vector<RoiGeom<C>> geo = roi_geoms<C>(static_cast<const T*>(r.data()), K, N, a);
    // One (roi, channel) plane per task.
    parallel_for(0, K * Cn, 1, [&](int64_t t0, int64_t t1) {
      std::vector<C> acc(size_t(a.ph * a.pw));
      for (int64_t t = t0; t < t1; ++t) {
        const RoiGeom<C>& g = geo[size_t(t / Cn)];
        std::fill(acc.begin(), acc.end(), C(0));
        const T* plane = in + (g.batch * Cn + t % Cn) * H * W;
        for_each_sample<C>(g, a.ph, a.pw, H, W, [&](int64_t bin, const int64_t* idx, const C* w) {
          acc[size_t(bin)] += w[0] * C(plane[idx[0]]) + w[1] * C(plane[idx[1]]) + w[2] * C(plane[idx[2]]) +
                              w[3] * C(plane[idx[3]]);
        });
        T* o = out + t * a.ph * a.pw;
        for (int64_t b = 0; b < a.ph * a.pw; ++b) o[b] = store_cast<T>(acc[size_t(b)] / g.count);
      }
    });
  });
}

void roi_align_backward_kernel(OpCall& c) {
  const Tensor gy = materialize(c.in(0)), r = materialize(c.in(1));
  const RoiArgs a = roi_args(c);
  const Shape& is = c.attrs.shape("input_size");
  const int64_t N = is[0], Cn = is[1], H = is[2], W = is[3], K = r.size(0);
  dispatch_floating(gy.dtype(), "roi_align_backward", [&]<class T>() {
    using C = compute_t<T>;
    const T* g = static_cast<const T*>(gy.data());
    const T* rp = static_cast<const T*>(r.data());
    std::vector<C> acc(size_t(N * Cn * H * W), C(0));
    const std::vector<RoiGeom<C>> geo = roi_geoms<C>(rp, K, N, a);
    // Channels in parallel: each thread owns whole planes, so no two threads add to one place.
    parallel_for(0, Cn, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t ch = c0; ch < c1; ++ch)
        for (int64_t k = 0; k < K; ++k) {
          C* plane = acc.data() + (geo[size_t(k)].batch * Cn + ch) * H * W;
          const T* gk = g + (k * Cn + ch) * a.ph * a.pw;
          for_each_sample<C>(geo[size_t(k)], a.ph, a.pw, H, W, [&](int64_t bin, const int64_t* idx, const C* w) {
            const C v = C(gk[bin]);
            for (int j = 0; j < 4; ++j) plane[idx[j]] += v * w[j] / geo[size_t(k)].count;
          });
        }
    });
    T* out = static_cast<T*>(c.out(0).data());
    for (size_t i = 0; i < acc.size(); ++i) out[i] = store_cast<T>(acc[i]);
  });
}

}  // namespace

PACER_KERNEL(nms, CPU, nms_kernel);
PACER_KERNEL(batched_nms, CPU, batched_nms_kernel);
PACER_KERNEL(roi_align, CPU, roi_align_kernel);
PACER_KERNEL(roi_align_backward, CPU, roi_align_backward_kernel);

}  // namespace pacer::ops::cpu
