#include "data/image_transforms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace pacer::data {

namespace {

// Uniform in [0, 1) with 53 bits, from two words.
double uniform01(uint32_t hi, uint32_t lo) { return double((uint64_t(hi) << 21) ^ (lo >> 11)) * 0x1p-53; }

// Uniform integer in [0, n) (n <= 2^32; the multiply-shift bias is below 2^-32 * n).
int64_t uniform_int(uint32_t word, int64_t n) { return int64_t((uint64_t(word) * uint64_t(n)) >> 32); }

// Python's round(): halves go to the even neighbour (nearbyint in the default rounding mode).
int64_t round_half_even(double x) { return int64_t(std::nearbyint(x)); }

}  // namespace

CropBox random_resized_crop_box(int64_t height, int64_t width, const SampleRng& rng,
                                const RandomResizedCropParams& p) {
  PACER_CHECK(height > 0 && width > 0, "random_resized_crop: expected a non-empty image, got {}x{}", height, width);
  PACER_CHECK(0 < p.min_scale && p.min_scale <= p.max_scale && p.max_scale <= 1.0,
              "random_resized_crop: expected 0 < min_scale <= max_scale <= 1, got ({}, {})", p.min_scale, p.max_scale);
  PACER_CHECK(0 < p.min_ratio && p.min_ratio <= p.max_ratio,
              "random_resized_crop: expected 0 < min_ratio <= max_ratio, got ({}, {})", p.min_ratio, p.max_ratio);
  const double area = double(height) * double(width);
  const double log_lo = std::log(p.min_ratio), log_hi = std::log(p.max_ratio);
  for (uint32_t attempt = 0; attempt < 10; ++attempt) {
    const Philox4 r = rng.block(attempt);
    const double target_area = area * (p.min_scale + (p.max_scale - p.min_scale) * uniform01(r.v[0], r.v[1]));
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * uniform_from_bits(r.v[1]));
    const int64_t w = round_half_even(std::sqrt(target_area * aspect));
    const int64_t h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      return {uniform_int(r.v[2], height - h + 1), uniform_int(r.v[3], width - w + 1), h, w};
    }
  }
  // Fallback: the whole image, cut to the nearest allowed aspect ratio, centred.
  const double in_ratio = double(width) / double(height);
  int64_t w = width, h = height;
  if (in_ratio < p.min_ratio) {
    h = round_half_even(double(w) / p.min_ratio);
  } else if (in_ratio > p.max_ratio) {
    w = round_half_even(double(h) * p.max_ratio);
  }
  h = std::clamp<int64_t>(h, 1, height);
  w = std::clamp<int64_t>(w, 1, width);
  return {(height - h) / 2, (width - w) / 2, h, w};
}

bool random_flip(const SampleRng& rng, double p) {
  const Philox4 r = rng.block(15);
  return uniform01(r.v[0], r.v[1]) < p;
}

Image resize_bilinear(const Image& src, const CropBox& box, int64_t out_h, int64_t out_w, bool flip) {
  PACER_CHECK(out_h > 0 && out_w > 0, "resize_bilinear: expected a positive output size, got {}x{}", out_h, out_w);
  PACER_CHECK(box.height > 0 && box.width > 0 && box.top >= 0 && box.left >= 0 && box.top + box.height <= src.height &&
                  box.left + box.width <= src.width,
              "resize_bilinear: box (top {}, left {}, {}x{}) does not lie inside the {}x{} image", box.top, box.left,
              box.height, box.width, src.height, src.width);
  const int64_t c = src.channels;
  // Per output column: the two source columns and the weight of the right one (the
  // horizontal taps are the same for every row, so they are computed once).
  const size_t n = static_cast<size_t>(out_w);
  std::vector<int64_t> x0(n), x1(n);
  std::vector<float> wx(n);
  const double sx = double(box.width) / double(out_w), sy = double(box.height) / double(out_h);
  for (int64_t x = 0; x < out_w; ++x) {
    const double f = std::max(0.0, (double(x) + 0.5) * sx - 0.5);
    const int64_t i = std::min<int64_t>(int64_t(f), box.width - 1);
    const size_t o = size_t(flip ? out_w - 1 - x : x);
    x0[o] = (box.left + i) * c;
    x1[o] = (box.left + std::min(i + 1, box.width - 1)) * c;
    wx[o] = float(f - double(i));
  }
  Image out(out_h, out_w, c);
  for (int64_t y = 0; y < out_h; ++y) {
    const double f = std::max(0.0, (double(y) + 0.5) * sy - 0.5);
    const int64_t i = std::min<int64_t>(int64_t(f), box.height - 1);
    const float wy = float(f - double(i));
    const uint8_t* r0 = src.row(box.top + i);
    const uint8_t* r1 = src.row(box.top + std::min(i + 1, box.height - 1));
    uint8_t* o = out.row(y);
    for (int64_t x = 0; x < out_w; ++x) {
      const float w1 = wx[size_t(x)], w0 = 1.0f - w1;
      const uint8_t *a = r0 + x0[size_t(x)], *b = r0 + x1[size_t(x)], *d = r1 + x0[size_t(x)], *e = r1 + x1[size_t(x)];
      for (int64_t k = 0; k < c; ++k) {
        const float top = w0 * float(a[k]) + w1 * float(b[k]);
        const float bottom = w0 * float(d[k]) + w1 * float(e[k]);
        o[x * c + k] = uint8_t(top + wy * (bottom - top) + 0.5f);
      }
    }
  }
  return out;
}

Image resize_bilinear(const Image& src, int64_t out_h, int64_t out_w) {
  return resize_bilinear(src, CropBox{0, 0, src.height, src.width}, out_h, out_w);
}

Image resize_short_side(const Image& src, int64_t size) {
  PACER_CHECK(size > 0, "resize_short_side: expected a positive size, got {}", size);
  PACER_CHECK(src.height > 0 && src.width > 0, "resize_short_side: expected a non-empty image, got {}x{}", src.height,
              src.width);
  if (src.height <= src.width) return resize_bilinear(src, size, std::max<int64_t>(1, size * src.width / src.height));
  return resize_bilinear(src, std::max<int64_t>(1, size * src.height / src.width), size);
}

CropBox center_crop_box(int64_t height, int64_t width, int64_t out_h, int64_t out_w) {
  PACER_CHECK(0 < out_h && out_h <= height && 0 < out_w && out_w <= width,
              "center_crop: expected a crop of at most the image's size {}x{}, got {}x{}", height, width, out_h, out_w);
  return {round_half_even(double(height - out_h) / 2.0), round_half_even(double(width - out_w) / 2.0), out_h, out_w};
}

Image crop(const Image& src, const CropBox& b) {
  PACER_CHECK(b.height > 0 && b.width > 0 && b.top >= 0 && b.left >= 0 && b.top + b.height <= src.height &&
                  b.left + b.width <= src.width,
              "crop: box (top {}, left {}, {}x{}) does not lie inside the {}x{} image", b.top, b.left, b.height, b.width,
              src.height, src.width);
  Image out(b.height, b.width, src.channels);
  const size_t row_bytes = size_t(b.width * src.channels);
  for (int64_t y = 0; y < b.height; ++y) {
    std::copy_n(src.row(b.top + y) + b.left * src.channels, row_bytes, out.row(y));
  }
  return out;
}

Image train_transform(const Image& src, int64_t size, const SampleRng& rng, const RandomResizedCropParams& params) {
  const CropBox box = random_resized_crop_box(src.height, src.width, rng, params);
  return resize_bilinear(src, box, size, size, random_flip(rng));
}

Image eval_transform(const Image& src, int64_t resize, int64_t crop_size) {
  PACER_CHECK(resize >= crop_size, "eval_transform: expected resize >= crop, got resize {} and crop {}", resize,
              crop_size);
  Image r = resize_short_side(src, resize);
  return crop(r, center_crop_box(r.height, r.width, crop_size, crop_size));
}

void normalize_to_chw(const Image& img, float* out, const std::array<float, 3>& mean, const std::array<float, 3>& std) {
  PACER_CHECK(img.channels == 3, "normalize: expected an RGB image (3 channels), got {} channels", img.channels);
  // One table per channel: 256 entries replace a divide per pixel.
  float lut[3][256];
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) lut[c][v] = (float(v) / 255.0f - mean[size_t(c)]) / std[size_t(c)];
  }
  const int64_t plane = img.height * img.width;
  const uint8_t* p = img.pixels.data();
  for (int64_t i = 0; i < plane; ++i) {
    out[i] = lut[0][p[3 * i]];
    out[plane + i] = lut[1][p[3 * i + 1]];
    out[2 * plane + i] = lut[2][p[3 * i + 2]];
  }
}

Tensor to_normalized_tensor(const Image& img, const std::array<float, 3>& mean, const std::array<float, 3>& std) {
  Tensor t = empty({3, img.height, img.width});
  normalize_to_chw(img, t.data_ptr<float>(), mean, std);
  return t;
}

}  // namespace pacer::data
