#pragma once
/// Image augmentation for classification (the torchvision recipe ResNet-50 trains with):
/// random-resized crop, horizontal flip, bilinear resize, eval resize + center crop, and
/// normalization into f32 CHW. All on u8 HWC images (data/jpeg.h).
///
/// Randomness comes from Philox keyed by (seed, epoch, sample index), not from a shared
/// generator, so a sample's augmentation does not depend on which thread handles it, in
/// what order, or on which rank: runs with any number of loader threads are identical.

#include <array>
#include <cstdint>

#include "core/philox.h"
#include "core/tensor.h"
#include "data/jpeg.h"

namespace pacer::data {

/// A rectangle of an image, in pixels.
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
  bool operator==(const CropBox&) const = default;
};

/// The random numbers of one sample in one epoch: block(k) is 4 independent 32-bit words.
/// Blocks 0..9 drive the random-resized crop's tries, block 15 the flip.
class SampleRng {
 public:
  SampleRng(uint64_t seed, uint64_t epoch, uint64_t index) : seed_(seed), epoch_(epoch), index_(index) {}
  Philox4 block(uint32_t k) const {
    // A key distinct from shuffled_indices' (which uses the seed itself), so the two streams
    // never share a counter.
    return philox_block(seed_ ^ 0x6A09E667F3BCC909ull, epoch_, index_ * 16 + k);
  }

 private:
  uint64_t seed_, epoch_, index_;
};

/// torchvision's RandomResizedCrop ranges. ResNet-50 in MLPerf v0.6 used scale (0.05, 1).
struct RandomResizedCropParams {
  double min_scale = 0.05, max_scale = 1.0;          // fraction of the image's area
  double min_ratio = 3.0 / 4.0, max_ratio = 4.0 / 3.0;  // width / height, drawn uniformly in log space
};

/// torchvision's RandomResizedCrop.get_params: up to 10 tries of (area fraction, log aspect
/// ratio); the first box that fits the height x width image is placed uniformly at random;
/// after 10 misses, the largest centred box whose ratio is clamped into the range.
CropBox random_resized_crop_box(int64_t height, int64_t width, const SampleRng& rng,
                                const RandomResizedCropParams& params = {});

/// True with probability p (drawn from the rng's flip block).
bool random_flip(const SampleRng& rng, double p = 0.5);

/// Bilinear resize of `box` of `src` to out_h x out_w (pixel centres aligned, as
/// align_corners=False; no antialiasing), mirrored left-right when `flip`.
Image resize_bilinear(const Image& src, const CropBox& box, int64_t out_h, int64_t out_w, bool flip = false);
/// The whole image resized.
Image resize_bilinear(const Image& src, int64_t out_h, int64_t out_w);

/// torchvision's Resize(int): the short side becomes `size`, the long side size * long / short
/// (truncated), keeping the aspect ratio.
Image resize_short_side(const Image& src, int64_t size);
/// The centred out_h x out_w box of an image (offsets rounded as torchvision's CenterCrop).
CropBox center_crop_box(int64_t height, int64_t width, int64_t out_h, int64_t out_w);
Image crop(const Image& src, const CropBox& box);

/// Training view: random-resized crop to size x size, then flip with probability 1/2.
Image train_transform(const Image& src, int64_t size, const SampleRng& rng, const RandomResizedCropParams& params = {});
/// Evaluation view: short side to `resize`, then the centred crop x crop (resize >= crop).
Image eval_transform(const Image& src, int64_t resize, int64_t crop);

inline constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};

/// Writes (pixel / 255 - mean[c]) / std[c] as CHW floats to out (3 * height * width of them).
/// The image must have 3 channels.
void normalize_to_chw(const Image& img, float* out, const std::array<float, 3>& mean = kImageNetMean,
                      const std::array<float, 3>& std = kImageNetStd);
/// The same into a new [3, H, W] f32 tensor.
Tensor to_normalized_tensor(const Image& img, const std::array<float, 3>& mean = kImageNetMean,
                            const std::array<float, 3>& std = kImageNetStd);

}  // namespace pacer::data
