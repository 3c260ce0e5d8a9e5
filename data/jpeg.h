#pragma once
/// JPEG decoding and encoding with libjpeg-turbo. Images are u8, height x width x channels
/// (HWC), rows packed. libjpeg's headers stay in jpeg.cpp (DESIGN §10).

#include <cstdint>
#include <string>
#include <vector>

namespace pacer::data {

/// An 8-bit image, HWC, rows packed: pixel (y, x) channel c is pixels[(y * width + x) * channels + c].
struct Image {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;

  Image() = default;
  Image(int64_t h, int64_t w, int64_t c) : height(h), width(w), channels(c), pixels(size_t(h * w * c)) {}
  uint8_t* row(int64_t y) { return pixels.data() + y * width * channels; }
  const uint8_t* row(int64_t y) const { return pixels.data() + y * width * channels; }
};

/// Size and colour model of a JPEG, read from its header only.
struct JpegHeader {
  int64_t height = 0, width = 0;
  int channels = 0;  // 1 (grey), 3 (YCbCr / RGB) or 4 (CMYK / YCCK)
};

/// The DCT-domain scale denominator (1, 2, 4 or 8) decode_jpeg uses for an image of
/// `height` x `width` when the caller needs its short side to stay >= min_short_side: the
/// largest d with ceil(min(h, w) / d) >= min_short_side. min_short_side <= 0 means 1 (full size).
int jpeg_scale_denominator(int64_t height, int64_t width, int64_t min_short_side);

/// Reads the header of a JPEG held in memory. `name` (a path) is used in error messages.
JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& name);

/// Decodes a JPEG held in memory to RGB (3 channels; grey images are expanded to RGB).
/// With min_short_side > 0 libjpeg scales by 1/jpeg_scale_denominator(...) while decoding
/// (in the DCT domain: a 1/8 decode costs a fraction of a full one), so the result's short
/// side is still >= min_short_side (or the full image when that is smaller).
/// Throws pacer::Error naming `name` for a corrupt or truncated file, and for CMYK/YCCK
/// JPEGs (not supported). Never ends the process.
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name, int64_t min_short_side = 0);

/// Reads a whole file into memory (pacer::Error naming the path when it cannot be read).
std::vector<uint8_t> read_file_bytes(const std::string& path);

/// read_file_bytes + decode_jpeg.
Image read_jpeg(const std::string& path, int64_t min_short_side = 0);

/// Encodes a 1-channel (grey) or 3-channel (RGB) image as a baseline JPEG of `quality`
/// (1..100) with 4:2:0 chroma subsampling for RGB.
std::vector<uint8_t> encode_jpeg(const Image& image, int quality = 95);

/// Writes bytes to `path` (pacer::Error naming the path on failure).
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace pacer::data
