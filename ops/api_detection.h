#pragma once
/// Detection ops of the SSD and Mask R-CNN workloads (torchvision semantics). Boxes are
/// [..., 4] in (x1, y1, x2, y2) unless said otherwise; no "+1" in widths (torchvision's
/// TO_REMOVE = 0). Box arithmetic (IoU, box coding, clipping) is written with public ops,
/// so it is differentiable through them; nms / batched_nms and roi_align are primitive ops
/// with CPU kernels (ops/cpu/detection.cpp).

#include <cmath>
#include <vector>

#include "core/tensor.h"

namespace pacer {

// --- box arithmetic (composites) ----------------------------------------------------
/// (x2 - x1) * (y2 - y1) of boxes [..., 4].
Tensor box_area(const Tensor& boxes);
/// Pairwise IoU of a [N, 4] and b [M, 4]: [N, M] (torchvision.ops.box_iou).
Tensor box_iou(const Tensor& a, const Tensor& b);
/// Boxes [..., 4] with x clamped to [0, width] and y to [0, height]
/// (torchvision.ops.clip_boxes_to_image).
Tensor clip_boxes_to_image(const Tensor& boxes, double height, double width);

/// SSD box coding against default boxes given as (cx, cy, w, h) (broadcast against the
/// boxes): code = ((cx - dcx) / (dw * v_xy), (cy - dcy) / (dh * v_xy),
/// log(w / dw) / v_wh, log(h / dh) / v_wh) of the xyxy boxes, variances (0.1, 0.1, 0.2, 0.2).
Tensor ssd_encode(const Tensor& boxes_xyxy, const Tensor& default_boxes_cxcywh, double variance_xy = 0.1,
                  double variance_wh = 0.2);
/// The inverse: codes [..., 4] to xyxy boxes.
Tensor ssd_decode(const Tensor& codes, const Tensor& default_boxes_cxcywh, double variance_xy = 0.1,
                  double variance_wh = 0.2);

/// torchvision.models.detection._utils.BoxCoder.
struct BoxCoderWeights {
  double wx = 10, wy = 10, ww = 5, wh = 5;
};
/// log(1000 / 16), the clamp of dw and dh before exp in box_coder_decode.
inline const double kBboxXformClip = std::log(1000.0 / 16.0);
/// BoxCoder.encode_single: the regression targets [N, 4] of reference (ground-truth)
/// boxes [N, 4] against proposals [N, 4].
Tensor box_coder_encode(const Tensor& reference_boxes, const Tensor& proposals, BoxCoderWeights weights = {});
/// BoxCoder.decode_single: rel_codes [N, 4 * K] applied to boxes [N, 4] -> [N, 4 * K]
/// (dw, dh clamped to at most `clip` before exp).
Tensor box_coder_decode(const Tensor& rel_codes, const Tensor& boxes, BoxCoderWeights weights = {},
                        double clip = kBboxXformClip);

/// Anchors of one feature-map level, torchvision's AnchorGenerator rule: for each aspect
/// ratio r (outer) and size s (inner), h_ratio = sqrt(r), w_ratio = 1 / h_ratio,
/// ws = w_ratio * s, hs = h_ratio * s, base anchor = round((-ws, -hs, ws, hs) / 2)
/// (round half to even), computed in `dtype`'s arithmetic (f32 by default, as torchvision
/// for f32 feature maps). Then for each cell (y, x) of the [feature_h, feature_w] grid in
/// row-major order, base anchors shifted by (x * stride_w, y * stride_h, x * stride_w,
/// y * stride_h): [feature_h * feature_w * A, 4], cell-major.
Tensor anchors_for_level(const std::vector<double>& sizes, const std::vector<double>& aspect_ratios,
                         const Shape& stride, const Shape& feature_size, DType dtype = DType::F32);

// --- primitives ------------------------------------------------------------------------
/// Greedy non-maximum suppression (torchvision.ops.nms): indices (int64) of the kept boxes
/// in decreasing score order; a box is dropped when its IoU with a kept, higher-scored box
/// is > iou_threshold. Equal scores keep their input order. Not differentiable.
Tensor nms(const Tensor& boxes, const Tensor& scores, double iou_threshold);
/// nms within each class (torchvision.ops.batched_nms): boxes of different classes never
/// suppress each other. Boxes with score <= score_threshold are dropped first; the kept
/// indices come sorted by score, descending, at most top_k of them (top_k < 0: all).
Tensor batched_nms(const Tensor& boxes, const Tensor& scores, const Tensor& classes, double iou_threshold,
                   double score_threshold = -INFINITY, int64_t top_k = -1);

/// torchvision.ops.roi_align: input [N, C, H, W], rois [K, 5] = (batch index, x1, y1, x2,
/// y2) in input coordinates before spatial_scale -> [K, C, ph, pw]. Each bin averages
/// bilinear samples on a sampling_ratio x sampling_ratio grid (sampling_ratio <= 0:
/// ceil(roi_size / bin count) per axis); aligned shifts the scaled box by -0.5 pixel,
/// otherwise rois are at least 1 x 1. Differentiable w.r.t. input (not rois).
Tensor roi_align(const Tensor& input, const Tensor& rois, const Shape& output_size, double spatial_scale = 1.0,
                 int64_t sampling_ratio = -1, bool aligned = false);
/// The gradient of roi_align w.r.t. its input: grad [K, C, ph, pw] -> input_size [N, C, H, W].
Tensor roi_align_backward(const Tensor& grad, const Tensor& rois, const Shape& input_size, double spatial_scale,
                          int64_t sampling_ratio, bool aligned);

}  // namespace pacer
