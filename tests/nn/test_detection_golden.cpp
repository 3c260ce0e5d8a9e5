// Detection ops against torchvision 0.14 (tests/golden/detection.safetensors, written by
// tests/golden/make_detection_golden.py): roi_align forward and input gradient (aligned
// and not, sampling_ratio 2 and adaptive), nms and batched_nms kept indices, box_iou,
// clip_boxes_to_image, BoxCoder encode / decode, one anchor level and SSD coding.
// (Lives with the nn tests because it reads the file with nn::load_safetensors.)
#include <cmath>
#include <map>
#include <string>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include "nn/safetensors.h"
#include "ops/api_detection.h"

namespace pacer {

namespace {

const std::map<std::string, Tensor>& golden() {
  static const std::map<std::string, Tensor> g = [] {
    std::map<std::string, Tensor> m;
    for (auto& [name, t] : nn::load_safetensors(std::string(PACER_GOLDEN_DIR) + "/detection.safetensors"))
      m[name] = t;
    return m;
  }();
  return g;
}

const Tensor& G(const std::string& name) {
  auto it = golden().find(name);
  REQUIRE_MESSAGE(it != golden().end(), "golden tensor " << name << " missing");
  return it->second;
}

void check_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  INFO(what);
  REQUIRE_MESSAGE(got.sizes() == want.sizes(),
                  what << ": shape " << fmt::format("{}", got.sizes()) << " vs " << fmt::format("{}", want.sizes()));
  auto a = got.to(DType::F64).to_vector<double>(), b = want.to(DType::F64).to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]) / (1 + std::fabs(b[i])));
  CHECK_MESSAGE(worst <= tol, what << ": max error " << worst << " > " << tol);
}

void check_equal_i64(const Tensor& got, const Tensor& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.dtype() == DType::I64);
  CHECK(got.to_vector<int64_t>() == want.to_vector<int64_t>());
}

}  // namespace

TEST_CASE("detection golden: roi_align forward and input gradient match torchvision") {
  const Tensor& x = G("roi_align.input");
  const Tensor& rois = G("roi_align.rois");
  const Tensor& gy = G("roi_align.grad_output");
  for (bool aligned : {true, false})
    for (int64_t sr : {2, -1}) {
      const std::string key = fmt::format("roi_align.aligned{}_sr{}", int(aligned), sr);
      Tensor xi = clone(x);
      xi.set_requires_grad();
      Tensor y = roi_align(xi, rois, {4, 3}, 0.5, sr, aligned);
      check_close(y, G(key + ".output"), 1e-12, key + ".output");
      sum(y * gy).backward();
      check_close(xi.grad(), G(key + ".grad_input"), 1e-12, key + ".grad_input");
      // f32 within f32 rounding.
      check_close(roi_align(cast(x, DType::F32), cast(rois, DType::F32), {4, 3}, 0.5, sr, aligned),
                  G(key + ".output"), 1e-5, key + ".output f32");
    }
}

TEST_CASE("detection golden: nms and batched_nms keep torchvision's indices") {
  const Tensor &boxes = G("nms.boxes"), &scores = G("nms.scores"), &classes = G("nms.classes");
  for (const char* thr : {"0.3", "0.5", "0.7"}) {
    const double t = std::stod(thr);
    check_equal_i64(nms(boxes, scores, t), G(std::string("nms.keep_") + thr), std::string("nms ") + thr);
    check_equal_i64(batched_nms(boxes, scores, classes, t), G(std::string("batched_nms.keep_") + thr),
                    std::string("batched_nms ") + thr);
    // top_k keeps the first k of the same list.
    Tensor all = G(std::string("batched_nms.keep_") + thr);
    check_equal_i64(batched_nms(boxes, scores, classes, t, -INFINITY, 5), slice(all, 0, 0, 5),
                    std::string("batched_nms top_k ") + thr);
  }
}

TEST_CASE("detection golden: box_iou, clip_boxes_to_image, BoxCoder, anchors and SSD coding") {
  check_close(box_iou(G("box_iou.a"), G("box_iou.b")), G("box_iou.iou"), 1e-12, "box_iou");
  check_close(clip_boxes_to_image(G("clip.boxes"), 12, 15), G("clip.clipped"), 0, "clip_boxes_to_image");
  check_close(box_coder_encode(G("box_coder.reference"), G("box_coder.proposals")), G("box_coder.encoded"), 1e-12,
              "box_coder_encode");
  check_close(box_coder_decode(G("box_coder.rel_codes"), G("box_coder.proposals")), G("box_coder.decoded"), 1e-12,
              "box_coder_decode");
  Tensor anchors = anchors_for_level({32, 45, 64}, {0.5, 1.0, 2.0}, {16, 8}, {5, 4});
  CHECK(anchors.dtype() == DType::F32);
  check_close(anchors, G("anchors.level"), 0, "anchors_for_level");
  check_close(ssd_encode(G("ssd.boxes"), G("ssd.dboxes")), G("ssd.encoded"), 1e-12, "ssd_encode");
  check_close(ssd_decode(G("ssd.loc"), G("ssd.dboxes")), G("ssd.decoded"), 1e-12, "ssd_decode");
}

}  // namespace pacer
