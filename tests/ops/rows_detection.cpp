// Op-table rows of the detection ops (ops/api_detection.h): box_iou, SSD and BoxCoder
// coding, clip_boxes_to_image, anchors, nms, batched_nms, roi_align and its backward, with
// naive f64 references (torchvision's rules written out per element).
#include <algorithm>
#include <cmath>
#include <numeric>

#include <doctest/doctest.h>

#include "ops/api_detection.h"
#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

// n boxes (x1, y1, x2, y2): corners in [lo, hi), sizes in [wlo, whi).
Tensor boxes(int64_t n, uint64_t seed, double lo = 0, double hi = 10, double wlo = 1, double whi = 6) {
  NoGradGuard no_grad;
  Tensor xy = uniform({n, 2}, lo, hi, seed);
  Tensor wh = uniform({n, 2}, wlo, whi, seed + 1000);
  return contiguous(cat({xy, xy + wh}, 1));
}

// Default boxes (cx, cy, w, h) with positive sizes.
Tensor cxcywh(int64_t n, uint64_t seed) {
  NoGradGuard no_grad;
  return contiguous(cat({uniform({n, 2}, 0, 10, seed), uniform({n, 2}, 1, 5, seed + 1000)}, 1));
}

double at(const ref::Arr& a, int64_t i, int64_t j) { return a.v[size_t(i * a.sizes[1] + j)]; }

ref::Arr iou_ref(const ref::Arr& a, const ref::Arr& b) {
  const int64_t n = a.sizes[0], m = b.sizes[0];
  ref::Arr r{{n, m}, {}};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) {
      const double w = std::max(0.0, std::min(at(a, i, 2), at(b, j, 2)) - std::max(at(a, i, 0), at(b, j, 0)));
      const double h = std::max(0.0, std::min(at(a, i, 3), at(b, j, 3)) - std::max(at(a, i, 1), at(b, j, 1)));
      const double area_a = (at(a, i, 2) - at(a, i, 0)) * (at(a, i, 3) - at(a, i, 1));
      const double area_b = (at(b, j, 2) - at(b, j, 0)) * (at(b, j, 3) - at(b, j, 1));
      r.v.push_back(w * h / (area_a + area_b - w * h));
    }
  return r;
}

// Greedy NMS per class (cls empty: one class); keeps score > score_thr; result sorted by
// score descending (ties by index), at most top_k.
ref::Arr nms_ref(const ref::Arr& b, const ref::Arr& s, const std::vector<double>& cls, double thr,
                 double score_thr = -INFINITY, int64_t top_k = -1) {
  const int64_t n = b.sizes[0];
  std::vector<int64_t> order;
  for (int64_t i = 0; i < n; ++i)
    if (s.v[size_t(i)] > score_thr) order.push_back(i);
  // selection sort by (score desc, index asc)
  for (size_t i = 0; i < order.size(); ++i)
    for (size_t j = i + 1; j < order.size(); ++j) {
      const double si = s.v[size_t(order[i])], sj = s.v[size_t(order[j])];
      if (sj > si || (sj == si && order[j] < order[i])) std::swap(order[i], order[j]);
    }
  std::vector<int64_t> keep;
  for (int64_t i : order) {
    bool drop = false;
    for (int64_t k : keep) {
      if (!cls.empty() && cls[size_t(k)] != cls[size_t(i)]) continue;
      ref::Arr bi{{1, 4}, {b.v.begin() + i * 4, b.v.begin() + i * 4 + 4}};
      ref::Arr bk{{1, 4}, {b.v.begin() + k * 4, b.v.begin() + k * 4 + 4}};
      if (iou_ref(bk, bi).v[0] > thr) drop = true;
    }
    if (!drop) keep.push_back(i);
  }
  if (top_k >= 0 && int64_t(keep.size()) > top_k) keep.resize(size_t(top_k));
  ref::Arr r{{int64_t(keep.size())}, {}};
  for (int64_t k : keep) r.v.push_back(double(k));
  return r;
}

// floor() of non-negative values through an int64 round trip (only to build inputs).
Tensor floor_nonneg(const Tensor& x) { return cast(cast(x, DType::I64), x.dtype()); }

// Boxes that overlap in clusters (so that nms suppresses some) with distinct scores.
std::vector<Tensor> nms_inputs(int64_t n, uint64_t seed) {
  NoGradGuard no_grad;
  Tensor centers = floor_nonneg(uniform({n, 2}, 0, 3, seed));
  Tensor jitter = uniform({n, 2}, 0, 1.5, seed + 1);
  Tensor xy = centers * 4.0 + jitter;
  Tensor wh = uniform({n, 2}, 2, 4, seed + 2);
  Tensor s = uniform({n}, 0, 1, seed + 3);
  return {contiguous(cat({xy, xy + wh}, 1)), s};
}


// torchvision's bilinear_interpolate (out of [-1, H] x [-1, W]: no contribution).
struct Sample {
  int64_t idx[4];
  double w[4];
  bool inside;
};

Sample sample_at(double y, double x, int64_t H, int64_t W) {
  Sample s{};
  s.inside = !(y < -1.0 || y > double(H) || x < -1.0 || x > double(W));
  if (!s.inside) return s;
  y = std::max(y, 0.0);
  x = std::max(x, 0.0);
  const int64_t y0 = std::min<int64_t>(int64_t(std::floor(y)), H - 1), x0 = std::min<int64_t>(int64_t(std::floor(x)), W - 1);
  const int64_t y1 = std::min<int64_t>(y0 + 1, H - 1), x1 = std::min<int64_t>(x0 + 1, W - 1);
  const double ly = y0 == H - 1 ? 0.0 : y - double(y0), lx = x0 == W - 1 ? 0.0 : x - double(x0);
  const int64_t ys[2] = {y0, y1}, xs[2] = {x0, x1};
  const double wy[2] = {1 - ly, ly}, wx[2] = {1 - lx, lx};
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) {
      s.idx[a * 2 + b] = ys[a] * W + xs[b];
      s.w[a * 2 + b] = wy[a] * wx[b];
    }
  return s;
}

struct RoiCfg {
  int64_t ph, pw;
  double scale;
  int64_t sr;
  bool aligned;
};

// Visits every (roi, bin, sample) of roi_align: f(k, bin, sample, 1 / count).
void roi_samples(const ref::Arr& rois, int64_t H, int64_t W, const RoiCfg& c,
                 const std::function<void(int64_t, int64_t, int64_t, const Sample&, double)>& f) {
  for (int64_t k = 0; k < rois.sizes[0]; ++k) {
    const double off = c.aligned ? 0.5 : 0.0;
    const int64_t batch = int64_t(at(rois, k, 0));
    const double x1 = at(rois, k, 1) * c.scale - off, y1 = at(rois, k, 2) * c.scale - off;
    double rw = at(rois, k, 3) * c.scale - off - x1, rh = at(rois, k, 4) * c.scale - off - y1;
    if (!c.aligned) {
      rw = std::max(rw, 1.0);
      rh = std::max(rh, 1.0);
    }
    const int64_t gh = c.sr > 0 ? c.sr : int64_t(std::ceil(rh / double(c.ph)));
    const int64_t gw = c.sr > 0 ? c.sr : int64_t(std::ceil(rw / double(c.pw)));
    const double inv = 1.0 / double(std::max<int64_t>(gh * gw, 1));
    for (int64_t py = 0; py < c.ph; ++py)
      for (int64_t px = 0; px < c.pw; ++px)
        for (int64_t iy = 0; iy < gh; ++iy)
          for (int64_t ix = 0; ix < gw; ++ix) {
            const double y = y1 + (double(py) + (double(iy) + 0.5) / double(gh)) * rh / double(c.ph);
            const double x = x1 + (double(px) + (double(ix) + 0.5) / double(gw)) * rw / double(c.pw);
            f(k, batch, py * c.pw + px, sample_at(y, x, H, W), inv);
          }
  }
}

ref::Arr roi_align_ref(const ref::Arr& x, const ref::Arr& rois, const RoiCfg& c) {
  const int64_t C = x.sizes[1], H = x.sizes[2], W = x.sizes[3], K = rois.sizes[0];
  ref::Arr r{{K, C, c.ph, c.pw}, std::vector<double>(size_t(K * C * c.ph * c.pw), 0.0)};
  roi_samples(rois, H, W, c, [&](int64_t k, int64_t n, int64_t bin, const Sample& s, double inv) {
    if (!s.inside) return;
    for (int64_t ch = 0; ch < C; ++ch)
      for (int j = 0; j < 4; ++j)
        r.v[size_t((k * C + ch) * c.ph * c.pw + bin)] += s.w[j] * x.v[size_t((n * C + ch) * H * W + s.idx[j])] * inv;
  });
  return r;
}

ref::Arr roi_align_backward_ref(const ref::Arr& gy, const ref::Arr& rois, const Shape& in, const RoiCfg& c) {
  const int64_t C = in[1], H = in[2], W = in[3];
  ref::Arr r{in, std::vector<double>(size_t(shape_numel(in)), 0.0)};
  roi_samples(rois, H, W, c, [&](int64_t k, int64_t n, int64_t bin, const Sample& s, double inv) {
    if (!s.inside) return;
    for (int64_t ch = 0; ch < C; ++ch)
      for (int j = 0; j < 4; ++j)
        r.v[size_t((n * C + ch) * H * W + s.idx[j])] += s.w[j] * gy.v[size_t((k * C + ch) * c.ph * c.pw + bin)] * inv;
  });
  return r;
}

// Rois on a 2 x 3 x 7 x 9 map: inside, partly outside (beyond W and above -1), tiny, in
// batch 1; coordinates chosen so that no sample lands on a pixel boundary.
Tensor rois_f64() {
  return from_vector(std::vector<double>{0, 1.3, 0.7, 6.1, 5.2,     //
                                         1, 2.2, 1.1, 11.3, 6.6,    //
                                         0, -1.65, -0.8, 3.1, 2.9,   //
                                         1, 4.05, 3.15, 4.45, 3.3,  //
                                         1, 0.35, 2.4, 8.1, 7.7},
                     {5, 5});
}

}  // namespace

std::vector<OpCase> detection_rows() {
  std::vector<OpCase> rows;

  rows.push_back(make_row(
      "box_iou", {"maximum", "minimum", "clamp"}, [] { return std::vector<Tensor>{boxes(5, 401), boxes(4, 402)}; },
      [](const std::vector<Tensor>& in) { return box_iou(in[0], in[1]); },
      [](const std::vector<ref::Arr>& in) { return iou_ref(in[0], in[1]); },
      {{[] { box_iou(ones({3, 3}), ones({2, 4})); }, "box_iou: expected boxes a [N, 4], got shape [3, 3]"},
       {[] { box_iou(ones({3, 4}), ones({4})); }, "box_iou: expected boxes b [N, 4], got shape [4]"},
       {[] { box_iou(ones({3, 4}, {.dtype = DType::I64}), ones({2, 4})); }, "box_iou: expected floating boxes a"}}));
  rows.back().tol_bf16 = 6e-2;

  rows.push_back(make_row(
      "ssd_encode", {"log", "div", "cat"}, [] { return std::vector<Tensor>{boxes(6, 403), cxcywh(6, 404)}; },
      [](const std::vector<Tensor>& in) { return ssd_encode(in[0], in[1]); },
      [](const std::vector<ref::Arr>& in) {
        ref::Arr r{{6, 4}, {}};
        for (int64_t i = 0; i < 6; ++i) {
          const double x1 = at(in[0], i, 0), y1 = at(in[0], i, 1), x2 = at(in[0], i, 2), y2 = at(in[0], i, 3);
          const double dcx = at(in[1], i, 0), dcy = at(in[1], i, 1), dw = at(in[1], i, 2), dh = at(in[1], i, 3);
          for (double v : {((x1 + x2) / 2 - dcx) / dw * 10, ((y1 + y2) / 2 - dcy) / dh * 10,
                           std::log((x2 - x1) / dw) * 5, std::log((y2 - y1) / dh) * 5})
            r.v.push_back(v);
        }
        return r;
      },
      {{[] { ssd_encode(ones({3, 5}), ones({3, 4})); }, "ssd_encode: expected boxes [..., 4], got shape [3, 5]"},
       {[] { ssd_encode(ones({3, 4}), ones({3, 4}), 0.0); }, "ssd_encode: expected positive variances"}}));
  rows.back().tol_f16 = 2e-2;
  rows.back().tol_bf16 = 1e-1;

  rows.push_back(make_row(
      "ssd_decode", {"exp", "cat"}, [] { return std::vector<Tensor>{uniform({6, 4}, -1, 1, 405), cxcywh(6, 406)}; },
      [](const std::vector<Tensor>& in) { return ssd_decode(in[0], in[1]); },
      [](const std::vector<ref::Arr>& in) {
        ref::Arr r{{6, 4}, {}};
        for (int64_t i = 0; i < 6; ++i) {
          const double dcx = at(in[1], i, 0), dcy = at(in[1], i, 1), dw = at(in[1], i, 2), dh = at(in[1], i, 3);
          const double cx = at(in[0], i, 0) * 0.1 * dw + dcx, cy = at(in[0], i, 1) * 0.1 * dh + dcy;
          const double w = std::exp(at(in[0], i, 2) * 0.2) * dw, h = std::exp(at(in[0], i, 3) * 0.2) * dh;
          for (double v : {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2}) r.v.push_back(v);
        }
        return r;
      },
      {{[] { ssd_decode(ones({3, 4}), ones({3, 3})); }, "ssd_decode: expected default boxes [..., 4], got shape [3, 3]"},
       {[] { ssd_decode(ones({3, 4}), ones({3, 4}), 0.1, -1.0); }, "ssd_decode: expected positive variances"}}));

  rows.push_back(make_row(
      "box_coder_encode", {"log", "div", "cat"}, [] { return std::vector<Tensor>{boxes(7, 407), boxes(7, 408)}; },
      [](const std::vector<Tensor>& in) { return box_coder_encode(in[0], in[1]); },
      [](const std::vector<ref::Arr>& in) {
        ref::Arr r{{7, 4}, {}};
        for (int64_t i = 0; i < 7; ++i) {
          const double gw = at(in[0], i, 2) - at(in[0], i, 0), gh = at(in[0], i, 3) - at(in[0], i, 1);
          const double pw = at(in[1], i, 2) - at(in[1], i, 0), ph = at(in[1], i, 3) - at(in[1], i, 1);
          const double gcx = at(in[0], i, 0) + gw / 2, gcy = at(in[0], i, 1) + gh / 2;
          const double pcx = at(in[1], i, 0) + pw / 2, pcy = at(in[1], i, 1) + ph / 2;
          for (double v : {10 * (gcx - pcx) / pw, 10 * (gcy - pcy) / ph, 5 * std::log(gw / pw), 5 * std::log(gh / ph)})
            r.v.push_back(v);
        }
        return r;
      },
      {{[] { box_coder_encode(ones({3, 4}), ones({2, 4})); }, "box_coder_encode: expected as many reference boxes"},
       {[] { box_coder_encode(ones({3}), ones({3, 4})); }, "box_coder_encode: expected reference boxes [N, 4]"}}));
  rows.back().tol_f16 = 2e-2;
  rows.back().tol_bf16 = 1e-1;

  rows.push_back(make_row(
      "box_coder_decode_clip", {"exp", "clamp", "cat"},
      [] {
        NoGradGuard no_grad;
        Tensor codes = uniform({5, 8}, -2, 2, 409);
        Tensor big = from_vector(std::vector<double>{25.0, 23.5}, {2});  // dw / 5 = 5, dh / 5 = 4.7 > log(62.5)
        Tensor c = contiguous(codes);
        Tensor v = slice(select(c, 0, 3), 0, 6, 8);
        copy_(v, big);
        return std::vector<Tensor>{c, boxes(5, 410)};
      },
      [](const std::vector<Tensor>& in) { return box_coder_decode(in[0], in[1]); },
      [](const std::vector<ref::Arr>& in) {
        ref::Arr r{{5, 8}, {}};
        const double clip = std::log(1000.0 / 16.0);
        for (int64_t i = 0; i < 5; ++i) {
          const double w = at(in[1], i, 2) - at(in[1], i, 0), h = at(in[1], i, 3) - at(in[1], i, 1);
          const double cx = at(in[1], i, 0) + 0.5 * w, cy = at(in[1], i, 1) + 0.5 * h;
          for (int64_t k = 0; k < 2; ++k) {
            const double dx = at(in[0], i, 4 * k) / 10, dy = at(in[0], i, 4 * k + 1) / 10;
            const double dw = std::min(at(in[0], i, 4 * k + 2) / 5, clip), dh = std::min(at(in[0], i, 4 * k + 3) / 5, clip);
            const double px = dx * w + cx, py = dy * h + cy, pw = std::exp(dw) * w, ph = std::exp(dh) * h;
            for (double v : {px - pw / 2, py - ph / 2, px + pw / 2, py + ph / 2}) r.v.push_back(v);
          }
        }
        return r;
      },
      {{[] { box_coder_decode(ones({3, 6}), ones({3, 4})); }, "box_coder_decode: expected rel_codes [3, 4 * K], got shape [3, 6]"},
       {[] { box_coder_decode(ones({3, 4}), ones({3, 2})); }, "box_coder_decode: expected boxes [N, 4]"}}));
  rows.back().tol_f16 = 2e-2;
  rows.back().tol_bf16 = 1e-1;

  rows.push_back(make_row(
      "clip_boxes_to_image", {"clamp", "cat"}, [] { return std::vector<Tensor>{boxes(8, 411, -5, 9, 1, 7)}; },
      [](const std::vector<Tensor>& in) { return clip_boxes_to_image(in[0], 8.0, 10.0); },
      [](const std::vector<ref::Arr>& in) {
        ref::Arr r = in[0];
        for (size_t i = 0; i < r.v.size(); ++i) r.v[i] = std::clamp(r.v[i], 0.0, i % 2 == 0 ? 10.0 : 8.0);
        return r;
      },
      {{[] { clip_boxes_to_image(ones({3, 2}), 4, 4); }, "clip_boxes_to_image: expected boxes [..., 4]"},
       {[] { clip_boxes_to_image(ones({3, 4}), -1, 4); }, "clip_boxes_to_image: expected a non-negative image size"}}));

  {  // anchors: base anchors as torchvision's AnchorGenerator.generate_anchors prints them
    OpCase c = make_row(
        "anchors_for_level", {}, [] { return std::vector<Tensor>{}; },
        [](const std::vector<Tensor>&) {
          return anchors_for_level({32, 45, 64}, {0.5, 1.0, 2.0}, {16, 8}, {2, 3});
        },
        [](const std::vector<ref::Arr>&) {
          const double base[9][4] = {{-23, -11, 23, 11}, {-32, -16, 32, 16}, {-45, -23, 45, 23},
                                     {-16, -16, 16, 16}, {-22, -22, 22, 22}, {-32, -32, 32, 32},
                                     {-11, -23, 11, 23}, {-16, -32, 16, 32}, {-23, -45, 23, 45}};
          ref::Arr r{{2 * 3 * 9, 4}, {}};
          for (int y = 0; y < 2; ++y)
            for (int x = 0; x < 3; ++x)
              for (const auto& b : base)
                for (int j = 0; j < 4; ++j) r.v.push_back(b[j] + (j % 2 == 0 ? 8.0 * x : 16.0 * y));
          return r;
        },
        {{[] { anchors_for_level({32}, {1.0}, {0, 8}, {2, 2}); }, "anchors_for_level: expected positive strides"},
         {[] { anchors_for_level({}, {1.0}, {8, 8}, {2, 2}); }, "anchors_for_level: expected sizes and aspect ratios"},
         {[] { anchors_for_level({32}, {-1.0}, {8, 8}, {2, 2}); }, "expected positive aspect ratios"}});
    c.grad = false;
    c.tol = 0;
    c.tol_f32 = c.tol_f16 = c.tol_bf16 = 0;
    rows.push_back(c);
  }

  const std::vector<ErrorCase> nms_errors = {
      {[] { nms(ones({3, 3}), ones({3}), 0.5); }, "nms: expected boxes [N, 4], got shape [3, 3]"},
      {[] { nms(ones({3, 4}), ones({2}), 0.5); }, "nms: expected scores [3], got shape [2]"},
      {[] { nms(ones({3, 4}, {.dtype = DType::I64}), ones({3}), 0.5); }, "nms: expected a floating boxes"},
      {[] { nms(Tensor(), ones({3}), 0.5); }, "nms: input 0 is undefined"}};
  {
    OpCase c = make_row(
        "nms", {"nms"}, [] { return nms_inputs(24, 412); },
        [](const std::vector<Tensor>& in) {
          Tensor keep = nms(in[0], in[1], 0.3);
          CHECK(keep.size(0) < in[0].size(0));  // the clusters make it suppress some boxes
          return keep;
        },
        [](const std::vector<ref::Arr>& in) { return nms_ref(in[0], in[1], {}, 0.3); }, nms_errors);
    c.grad = false;
    c.tol = c.tol_f32 = c.tol_f16 = c.tol_bf16 = 0;
    rows.push_back(c);
  }
  {  // ties keep their input order; empty input
    OpCase c = make_row(
        "nms_ties_and_empty", {"nms"},
        [] {
          return std::vector<Tensor>{
              from_vector(std::vector<double>{0, 0, 2, 2, 0, 0, 2, 2, 5, 5, 6, 6, 0.5, 0, 2.5, 2}, {4, 4}),
              from_vector(std::vector<double>{0.5, 0.5, 0.5, 0.75}, {4})};
        },
        [](const std::vector<Tensor>& in) {
          Tensor none = nms(zeros({0, 4}, {.dtype = in[0].dtype()}), zeros({0}, {.dtype = in[1].dtype()}), 0.5);
          CHECK(none.sizes() == Shape{0});
          return nms(in[0], in[1], 0.5);
        },
        [](const std::vector<ref::Arr>&) { return ref::Arr{{2}, {3, 2}}; }, nms_errors);
    c.grad = false;
    c.tol = c.tol_f32 = c.tol_f16 = c.tol_bf16 = 0;
    rows.push_back(c);
  }
  {
    OpCase c = make_row(
        "batched_nms", {"batched_nms"},
        [] {
          auto in = nms_inputs(30, 413);
          std::vector<int64_t> cls;
          for (int64_t i = 0; i < 30; ++i) cls.push_back((i * 7) % 3);
          in.push_back(idx(cls, {30}));
          return in;
        },
        [](const std::vector<Tensor>& in) { return batched_nms(in[0], in[1], in[2], 0.4, 0.1, 12); },
        [](const std::vector<ref::Arr>& in) { return nms_ref(in[0], in[1], in[2].v, 0.4, 0.1, 12); },
        {{[] { batched_nms(ones({3, 4}), ones({3}), ones({3}), 0.5); }, "batched_nms: expected int64 or int32 classes"},
         {[] { batched_nms(ones({3, 4}), ones({3}), idx({0, 1}, {2}), 0.5); }, "batched_nms: expected classes [3], got shape [2]"},
         {[] { batched_nms(ones({3, 4}), ones({3, 1}), idx({0, 1, 1}, {3}), 0.5); }, "batched_nms: expected scores [3]"}});
    c.grad = false;
    c.tol = c.tol_f32 = c.tol_f16 = c.tol_bf16 = 0;
    rows.push_back(c);
  }
  {  // no threshold, no top_k: per-class nms over everything
    OpCase c = make_row(
        "batched_nms_all", {"batched_nms"},
        [] {
          auto in = nms_inputs(20, 414);
          std::vector<int64_t> cls;
          for (int64_t i = 0; i < 20; ++i) cls.push_back(i % 2);
          in.push_back(idx(cls, {20}));
          return in;
        },
        [](const std::vector<Tensor>& in) {
          Tensor keep = batched_nms(in[0], in[1], in[2], 0.2);
          CHECK(keep.size(0) < in[0].size(0));
          CHECK(keep.size(0) > nms(in[0], in[1], 0.2).size(0));  // classes do not suppress each other
          return keep;
        },
        [](const std::vector<ref::Arr>& in) { return nms_ref(in[0], in[1], in[2].v, 0.2); },
        {{[] { batched_nms(ones({3, 4}), ones({3}), Tensor(), 0.5); }, "batched_nms: expected classes [3], got an undefined tensor"}});
    c.grad = false;
    c.tol = c.tol_f32 = c.tol_f16 = c.tol_bf16 = 0;
    rows.push_back(c);
  }

  const std::vector<ErrorCase> roi_errors = {
      {[] { roi_align(ones({3, 4, 4}), ones({1, 5}), {2, 2}); }, "roi_align: expected a 4-d input [N, C, H, W]"},
      {[] { roi_align(ones({1, 1, 4, 4}), ones({1, 4}), {2, 2}); }, "roi_align: expected rois [K, 5]"},
      {[] { roi_align(ones({1, 1, 4, 4}), ones({1, 5}), {0, 2}); }, "roi_align: expected a positive output size"},
      {[] { roi_align(ones({1, 1, 4, 4}), ones({1, 5}), {2, 2}, 0.0); }, "roi_align: expected a positive spatial_scale"},
      {[] { roi_align(ones({1, 1, 4, 4}, {.dtype = DType::I64}), ones({1, 5}), {2, 2}); }, "roi_align: expected a floating input"},
      {[] { roi_align(ones({1, 1, 4, 4}), full({1, 5}, 3.0), {2, 2}); }, "roi_align: roi 0 has batch index 3"}};
  struct RoiRow {
    const char* name;
    RoiCfg cfg;
  };
  for (const RoiRow& rr : {RoiRow{"roi_align_sr2", {3, 2, 1.0, 2, false}},
                           RoiRow{"roi_align_adaptive_aligned", {2, 3, 1.0, -1, true}},
                           RoiRow{"roi_align_scale_half_aligned_sr2", {2, 2, 0.5, 2, true}},
                           RoiRow{"roi_align_adaptive_unaligned_scale", {2, 2, 0.75, 0, false}}}) {
    const RoiCfg cfg = rr.cfg;
    OpCase c = make_row(
        rr.name, {"roi_align", "roi_align_backward"},
        [] { return std::vector<Tensor>{uniform({2, 3, 7, 9}, -1, 1, 415), rois_f64()}; },
        [cfg](const std::vector<Tensor>& in) {
          return roi_align(in[0], in[1], {cfg.ph, cfg.pw}, cfg.scale, cfg.sr, cfg.aligned);
        },
        [cfg](const std::vector<ref::Arr>& in) { return roi_align_ref(in[0], in[1], cfg); }, roi_errors);
    c.grad_mask = 1;  // no gradient for the rois (torchvision's too)
    c.tol_bf16 = 6e-2;
    rows.push_back(c);
  }
  {
    const RoiCfg cfg{3, 2, 1.0, -1, true};
    OpCase c = make_row(
        "roi_align_backward", {"roi_align_backward"},
        [] { return std::vector<Tensor>{uniform({5, 3, 3, 2}, -1, 1, 416), rois_f64()}; },
        [cfg](const std::vector<Tensor>& in) {
          return roi_align_backward(in[0], in[1], {2, 3, 7, 9}, cfg.scale, cfg.sr, cfg.aligned);
        },
        [cfg](const std::vector<ref::Arr>& in) { return roi_align_backward_ref(in[0], in[1], {2, 3, 7, 9}, cfg); },
        {{[] { roi_align_backward(ones({1, 1, 2}), ones({1, 5}), {1, 1, 4, 4}, 1.0, 2, false); },
          "roi_align_backward: expected a 4-d gradient"},
         {[] { roi_align_backward(ones({2, 1, 2, 2}), ones({1, 5}), {1, 1, 4, 4}, 1.0, 2, false); },
          "roi_align_backward: expected a gradient of shape [1, 1, 2, 2], got [2, 1, 2, 2]"},
         {[] { roi_align_backward(ones({1, 1, 2, 2}), ones({1, 5}), {1, 4, 4}, 1.0, 2, false); },
          "roi_align_backward: expected a 4-d input size"}});
    c.grad = false;  // not differentiable; roi_align's gradcheck checks it against finite differences
    c.tol_bf16 = 6e-2;
    rows.push_back(c);
  }
  return rows;
}

}  // namespace pacer::test
