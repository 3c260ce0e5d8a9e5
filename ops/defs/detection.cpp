// Detection ops (torchvision semantics). Primitive: nms and batched_nms (kDynamicShape:
// the kernel allocates the kept indices), roi_align and its adjoint roi_align_backward
// (ops/cpu/detection.cpp). Box arithmetic (box_iou, SSD and BoxCoder coding, clipping) is
// written with public ops, so it is differentiable through them; anchors are computed on
// the host (constants).
#include <cmath>

#include "ops/api_detection.h"
#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

void check_boxes(const Tensor& b, const char* what) {
  PACER_CHECK(b.defined(), "expected {} [N, 4], got an undefined tensor", what);
  PACER_CHECK(b.dim() == 2 && b.size(1) == 4, "expected {} [N, 4], got shape {}", what, b.sizes());
  check_floating(b, what);
}

void infer_nms(OpCall& c, bool batched) {
  const Tensor& b = c.in(0);
  check_boxes(b, "boxes");
  const Tensor& s = c.in(1);
  PACER_CHECK(s.defined() && s.dim() == 1 && s.size(0) == b.size(0), "expected scores [{}], got {}", b.size(0),
              s.defined() ? fmt::format("shape {}", s.sizes()) : std::string("an undefined tensor"));
  check_floating(s, "scores");
  if (batched) {
    const Tensor& k = c.in(2);
    PACER_CHECK(k.defined() && k.dim() == 1 && k.size(0) == b.size(0), "expected classes [{}], got {}", b.size(0),
                k.defined() ? fmt::format("shape {}", k.sizes()) : std::string("an undefined tensor"));
    PACER_CHECK(k.dtype() == DType::I64 || k.dtype() == DType::I32, "expected int64 or int32 classes, got {}",
                k.dtype());
  }
  c.output_meta = {{Shape{-1}, DType::I64, c.device}};
}

// Shared checks of roi_align and roi_align_backward; rois are cast to the feature dtype.
void check_roi_attrs(OpCall& c) {
  const Tensor& r = c.in(1);
  PACER_CHECK(r.defined() && r.dim() == 2 && r.size(1) == 5, "expected rois [K, 5] (batch index, x1, y1, x2, y2), got {}",
              r.defined() ? fmt::format("shape {}", r.sizes()) : std::string("an undefined tensor"));
  check_floating(r, "rois");
  const Shape& os = c.attrs.shape("output_size");
  PACER_CHECK(os.size() == 2 && os[0] > 0 && os[1] > 0, "expected a positive output size [ph, pw], got {}", os);
  PACER_CHECK(c.attrs.f("spatial_scale") > 0, "expected a positive spatial_scale, got {}", c.attrs.f("spatial_scale"));
  cast_inputs(c, c.in(0).dtype(), 1, 1);
}

}  // namespace

PACER_OP(nms) {
  OpDef d;
  d.name = "nms";
  d.tags = kDynamicShape;
  d.not_differentiable = true;
  d.infer = [](OpCall& c) { infer_nms(c, false); };
  return d;
}

PACER_OP(batched_nms) {
  OpDef d;
  d.name = "batched_nms";
  d.tags = kDynamicShape;
  d.not_differentiable = true;
  d.infer = [](OpCall& c) { infer_nms(c, true); };
  return d;
}

PACER_OP(roi_align) {
  OpDef d;
  d.name = "roi_align";
  d.infer = [](OpCall& c) {
    const Tensor& x = c.in(0);
    PACER_CHECK(x.dim() == 4, "expected a 4-d input [N, C, H, W], got shape {}", x.sizes());
    check_floating(x, "input");
    check_roi_attrs(c);
    const Shape& os = c.attrs.shape("output_size");
    c.output_meta = {{Shape{c.in(1).size(0), x.size(1), os[0], os[1]}, x.dtype(), c.device}};
  };
  // Linear in the input; no gradient for the rois (as torchvision).
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    return {roi_align_backward(g.grad(), g.inputs[1], g.input_meta[0].sizes, g.attrs.f("spatial_scale"),
                               g.attrs.i("sampling_ratio"), g.attrs.b("aligned")),
            Tensor()};
  };
  d.save_inputs = 0b10;
  return d;
}

// Spreads each output gradient over the bilinear sample weights (the adjoint of roi_align).
PACER_OP(roi_align_backward) {
  OpDef d;
  d.name = "roi_align_backward";
  d.not_differentiable = true;
  d.infer = [](OpCall& c) {
    const Tensor& gy = c.in(0);
    PACER_CHECK(gy.dim() == 4, "expected a 4-d gradient [K, C, ph, pw], got shape {}", gy.sizes());
    check_floating(gy, "gradient");
    check_roi_attrs(c);
    const Shape& in = c.attrs.shape("input_size");
    const Shape& os = c.attrs.shape("output_size");
    PACER_CHECK(in.size() == 4, "expected a 4-d input size [N, C, H, W], got {}", in);
    const Shape want{c.in(1).size(0), in[1], os[0], os[1]};
    PACER_CHECK(gy.sizes() == want, "expected a gradient of shape {}, got {}", want, gy.sizes());
    c.output_meta = {{in, gy.dtype(), c.device}};
  };
  return d;
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

namespace {

Tensor col(const Tensor& x, int64_t i) { return narrow(x, -1, i, 1); }

void check_last4(const Tensor& t, const char* fn, const char* what) {
  PACER_CHECK(t.defined(), "{}: expected {} [..., 4], got an undefined tensor", fn, what);
  PACER_CHECK(t.dim() >= 1 && t.size(-1) == 4, "{}: expected {} [..., 4], got shape {}", fn, what, t.sizes());
  PACER_CHECK(is_floating(t.dtype()), "{}: expected floating {}, got {}", fn, what, t.dtype());
}

void check_n4(const Tensor& t, const char* fn, const char* what) {
  PACER_CHECK(t.defined(), "{}: expected {} [N, 4], got an undefined tensor", fn, what);
  PACER_CHECK(t.dim() == 2 && t.size(1) == 4, "{}: expected {} [N, 4], got shape {}", fn, what, t.sizes());
  PACER_CHECK(is_floating(t.dtype()), "{}: expected floating {}, got {}", fn, what, t.dtype());
}

}  // namespace

Tensor box_area(const Tensor& boxes) {
  check_last4(boxes, "box_area", "boxes");
  return squeeze((col(boxes, 2) - col(boxes, 0)) * (col(boxes, 3) - col(boxes, 1)), -1);
}

Tensor box_iou(const Tensor& a, const Tensor& b) {
  check_n4(a, "box_iou", "boxes a");
  check_n4(b, "box_iou", "boxes b");
  Tensor area1 = box_area(a), area2 = box_area(b);
  Tensor lt = maximum(unsqueeze(narrow(a, 1, 0, 2), 1), narrow(b, 1, 0, 2));  // [N, M, 2]
  Tensor rb = minimum(unsqueeze(narrow(a, 1, 2, 2), 1), narrow(b, 1, 2, 2));
  Tensor wh = clamp(rb - lt, Scalar(0), std::nullopt);
  Tensor inter = select(wh, 2, 0) * select(wh, 2, 1);
  return inter / (unsqueeze(area1, 1) + area2 - inter);
}

Tensor clip_boxes_to_image(const Tensor& boxes, double height, double width) {
  check_last4(boxes, "clip_boxes_to_image", "boxes");
  PACER_CHECK(height >= 0 && width >= 0, "clip_boxes_to_image: expected a non-negative image size, got {}x{}", height,
              width);
  const Scalar zero(0), h(height), w(width);
  return cat({clamp(col(boxes, 0), zero, w), clamp(col(boxes, 1), zero, h), clamp(col(boxes, 2), zero, w),
              clamp(col(boxes, 3), zero, h)},
             -1);
}

Tensor ssd_encode(const Tensor& boxes_xyxy, const Tensor& default_boxes, double variance_xy, double variance_wh) {
  check_last4(boxes_xyxy, "ssd_encode", "boxes");
  check_last4(default_boxes, "ssd_encode", "default boxes");
  PACER_CHECK(variance_xy > 0 && variance_wh > 0, "ssd_encode: expected positive variances, got {} and {}",
              variance_xy, variance_wh);
  Tensor w = col(boxes_xyxy, 2) - col(boxes_xyxy, 0), h = col(boxes_xyxy, 3) - col(boxes_xyxy, 1);
  Tensor cx = (col(boxes_xyxy, 0) + col(boxes_xyxy, 2)) * 0.5, cy = (col(boxes_xyxy, 1) + col(boxes_xyxy, 3)) * 0.5;
  Tensor dcx = col(default_boxes, 0), dcy = col(default_boxes, 1), dw = col(default_boxes, 2),
         dh = col(default_boxes, 3);
  return cat({(cx - dcx) / (dw * variance_xy), (cy - dcy) / (dh * variance_xy), log(w / dw) / variance_wh,
              log(h / dh) / variance_wh},
             -1);
}

Tensor ssd_decode(const Tensor& codes, const Tensor& default_boxes, double variance_xy, double variance_wh) {
  check_last4(codes, "ssd_decode", "codes");
  check_last4(default_boxes, "ssd_decode", "default boxes");
  PACER_CHECK(variance_xy > 0 && variance_wh > 0, "ssd_decode: expected positive variances, got {} and {}",
              variance_xy, variance_wh);
  Tensor dcx = col(default_boxes, 0), dcy = col(default_boxes, 1), dw = col(default_boxes, 2),
         dh = col(default_boxes, 3);
  Tensor cx = col(codes, 0) * variance_xy * dw + dcx, cy = col(codes, 1) * variance_xy * dh + dcy;
  Tensor w = exp(col(codes, 2) * variance_wh) * dw, h = exp(col(codes, 3) * variance_wh) * dh;
  return cat({cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5}, -1);
}

Tensor box_coder_encode(const Tensor& reference_boxes, const Tensor& proposals, BoxCoderWeights wt) {
  check_n4(reference_boxes, "box_coder_encode", "reference boxes");
  check_n4(proposals, "box_coder_encode", "proposals");
  PACER_CHECK(reference_boxes.size(0) == proposals.size(0),
              "box_coder_encode: expected as many reference boxes as proposals, got {} and {}",
              reference_boxes.size(0), proposals.size(0));
  const Tensor &g = reference_boxes, &p = proposals;
  Tensor ex_w = col(p, 2) - col(p, 0), ex_h = col(p, 3) - col(p, 1);
  Tensor ex_cx = col(p, 0) + ex_w * 0.5, ex_cy = col(p, 1) + ex_h * 0.5;
  Tensor gt_w = col(g, 2) - col(g, 0), gt_h = col(g, 3) - col(g, 1);
  Tensor gt_cx = col(g, 0) + gt_w * 0.5, gt_cy = col(g, 1) + gt_h * 0.5;
  return cat({(gt_cx - ex_cx) * wt.wx / ex_w, (gt_cy - ex_cy) * wt.wy / ex_h, log(gt_w / ex_w) * wt.ww,
              log(gt_h / ex_h) * wt.wh},
             -1);
}

Tensor box_coder_decode(const Tensor& rel_codes, const Tensor& boxes, BoxCoderWeights wt, double clip) {
  check_n4(boxes, "box_coder_decode", "boxes");
  PACER_CHECK(rel_codes.defined() && rel_codes.dim() == 2 && rel_codes.size(1) % 4 == 0 && rel_codes.size(1) > 0 &&
                  rel_codes.size(0) == boxes.size(0),
              "box_coder_decode: expected rel_codes [{}, 4 * K], got {}", boxes.size(0),
              rel_codes.defined() ? fmt::format("shape {}", rel_codes.sizes()) : std::string("an undefined tensor"));
  PACER_CHECK(is_floating(rel_codes.dtype()), "box_coder_decode: expected floating rel_codes, got {}",
              rel_codes.dtype());
  const Tensor b = rel_codes.dtype() == boxes.dtype() ? boxes : cast(boxes, rel_codes.dtype());
  const int64_t n4 = rel_codes.size(1);
  Tensor widths = col(b, 2) - col(b, 0), heights = col(b, 3) - col(b, 1);  // [N, 1]
  Tensor ctr_x = col(b, 0) + widths * 0.5, ctr_y = col(b, 1) + heights * 0.5;
  Tensor dx = slice(rel_codes, 1, 0, n4, 4) / wt.wx, dy = slice(rel_codes, 1, 1, n4, 4) / wt.wy;
  Tensor dw = clamp(slice(rel_codes, 1, 2, n4, 4) / wt.ww, std::nullopt, Scalar(clip));
  Tensor dh = clamp(slice(rel_codes, 1, 3, n4, 4) / wt.wh, std::nullopt, Scalar(clip));
  Tensor px = dx * widths + ctr_x, py = dy * heights + ctr_y;
  Tensor hw = exp(dw) * widths * 0.5, hh = exp(dh) * heights * 0.5;  // [N, K]
  return flatten(stack({px - hw, py - hh, px + hw, py + hh}, 2), 1);
}

Tensor anchors_for_level(const std::vector<double>& sizes, const std::vector<double>& aspect_ratios,
                         const Shape& stride, const Shape& feature_size, DType dtype) {
  PACER_CHECK(!sizes.empty() && !aspect_ratios.empty(), "anchors_for_level: expected sizes and aspect ratios");
  PACER_CHECK(stride.size() == 2 && feature_size.size() == 2 && stride[0] > 0 && stride[1] > 0 &&
                  feature_size[0] >= 0 && feature_size[1] >= 0,
              "anchors_for_level: expected positive strides [sh, sw] and a feature size [fh, fw], got {} and {}",
              stride, feature_size);
  PACER_CHECK(dtype == DType::F32 || dtype == DType::F64, "anchors_for_level: expected float32 or float64, got {}",
              dtype);
  for (double r : aspect_ratios) PACER_CHECK(r > 0, "anchors_for_level: expected positive aspect ratios, got {}", r);
  std::vector<double> out;
  auto build = [&]<class F>() {
    std::vector<F> base;  // A x 4
    for (double r : aspect_ratios) {
      const F hr = std::sqrt(F(r)), wr = F(1) / hr;
      for (double s : sizes) {
        const F ws = wr * F(s), hs = hr * F(s);
        for (F v : {-ws, -hs, ws, hs}) base.push_back(std::nearbyint(v / F(2)));  // half to even
      }
    }
    for (int64_t y = 0; y < feature_size[0]; ++y)
      for (int64_t x = 0; x < feature_size[1]; ++x) {
        const F sx = F(x * stride[1]), sy = F(y * stride[0]);
        for (size_t k = 0; k < base.size(); k += 4)
          for (F v : {sx + base[k], sy + base[k + 1], sx + base[k + 2], sy + base[k + 3]}) out.push_back(double(v));
      }
  };
  if (dtype == DType::F32) build.template operator()<float>();
  else build.template operator()<double>();
  const int64_t a = int64_t(sizes.size() * aspect_ratios.size());
  return from_vector(out, {feature_size[0] * feature_size[1] * a, 4}, {.dtype = dtype});
}

Tensor nms(const Tensor& boxes, const Tensor& scores, double iou_threshold) {
  return call1(op_nms(), {boxes, scores}, {{"iou_threshold", iou_threshold}});
}

Tensor batched_nms(const Tensor& boxes, const Tensor& scores, const Tensor& classes, double iou_threshold,
                   double score_threshold, int64_t top_k) {
  return call1(op_batched_nms(), {boxes, scores, classes},
               {{"iou_threshold", iou_threshold}, {"score_threshold", score_threshold}, {"top_k", top_k}});
}

Tensor roi_align(const Tensor& input, const Tensor& rois, const Shape& output_size, double spatial_scale,
                 int64_t sampling_ratio, bool aligned) {
  return call1(op_roi_align(), {input, rois},
               {{"output_size", output_size},
                {"spatial_scale", spatial_scale},
                {"sampling_ratio", sampling_ratio},
                {"aligned", aligned}});
}

Tensor roi_align_backward(const Tensor& grad, const Tensor& rois, const Shape& input_size, double spatial_scale,
                          int64_t sampling_ratio, bool aligned) {
  return call1(op_roi_align_backward(), {grad, rois},
               {{"input_size", input_size},
                {"output_size", Shape{grad.defined() && grad.dim() == 4 ? grad.size(2) : 0,
                                      grad.defined() && grad.dim() == 4 ? grad.size(3) : 0}},
                {"spatial_scale", spatial_scale},
                {"sampling_ratio", sampling_ratio},
                {"aligned", aligned}});
}

}  // namespace pacer
