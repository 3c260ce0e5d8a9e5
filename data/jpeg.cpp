#include "data/jpeg.h"

// jpeglib.h needs FILE and size_t declared first.
#include <cstdio>
#include <cstdlib>
#include <csetjmp>
#include <fstream>

#include <jerror.h>
#include <jpeglib.h>

#include "core/error.h"

namespace pacer::data {

namespace {

// libjpeg reports a fatal error by calling error_exit, whose default prints and ends the
// process. Ours formats the message and longjmps back to the setjmp in the step that called
// into libjpeg; that step returns false and C++ code throws. The jump only crosses libjpeg's
// C frames, and each step function holds nothing with a destructor, so no C++ object is
// skipped.
struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (level < 0) are otherwise silent. "Premature end of JPEG file" is one: libjpeg
// pads a truncated file with grey and carries on, which would feed a half-grey image to
// training, so it is made fatal. Other corrupt-data warnings (extraneous bytes before a
// marker, seen in a few ImageNet files) decode fine and are only counted.
void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  if (cinfo->err->msg_code == JWRN_JPEG_EOF) on_error(cinfo);
  cinfo->err->num_warnings++;
}

void install_error_manager(ErrorManager& err) {
  jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  err.message[0] = '\0';
}

struct Decoder {
  jpeg_decompress_struct cinfo{};
  ErrorManager err{};
  bool created = false;
  Decoder() = default;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  ~Decoder() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

// Each step wraps libjpeg calls in its own setjmp; it returns false when libjpeg failed
// (the message is in d.err.message).
bool step_header(Decoder& d, const uint8_t* data, size_t size) {
  d.cinfo.err = &d.err.pub;
  install_error_manager(d.err);
  if (setjmp(d.err.jump)) return false;
  jpeg_create_decompress(&d.cinfo);
  d.created = true;
  jpeg_mem_src(&d.cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&d.cinfo, TRUE);
  return true;
}

bool step_start(Decoder& d) {
  if (setjmp(d.err.jump)) return false;
  jpeg_start_decompress(&d.cinfo);
  return true;
}

bool step_scanlines(Decoder& d, uint8_t* out, size_t row_bytes) {
  if (setjmp(d.err.jump)) return false;
  while (d.cinfo.output_scanline < d.cinfo.output_height) {
    JSAMPROW rows[16];
    const JDIMENSION first = d.cinfo.output_scanline;
    const JDIMENSION n = std::min<JDIMENSION>(16, d.cinfo.output_height - first);
    for (JDIMENSION r = 0; r < n; ++r) rows[r] = out + size_t(first + r) * row_bytes;
    jpeg_read_scanlines(&d.cinfo, rows, n);
  }
  jpeg_finish_decompress(&d.cinfo);
  return true;
}

[[noreturn]] void fail(const std::string& name, const ErrorManager& err) {
  PACER_FAIL("JPEG '{}': cannot decode: {}", name, err.message);
}

void open_header(Decoder& d, const uint8_t* data, size_t size, const std::string& name) {
  PACER_CHECK(data != nullptr && size > 0, "JPEG '{}': expected JPEG bytes, got an empty file", name);
  // libjpeg's memory source takes an unsigned long length; real images are far smaller.
  PACER_CHECK(size < (size_t(1) << 32), "JPEG '{}': file of {} bytes is too large", name, size);
  if (!step_header(d, data, size)) fail(name, d.err);
}

}  // namespace

int jpeg_scale_denominator(int64_t height, int64_t width, int64_t min_short_side) {
  if (min_short_side <= 0) return 1;
  const int64_t short_side = std::min(height, width);
  for (int d : {8, 4, 2}) {
    if ((short_side + d - 1) / d >= min_short_side) return d;  // libjpeg rounds scaled sizes up
  }
  return 1;
}

JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& name) {
  Decoder d;
  open_header(d, data, size, name);
  return {int64_t(d.cinfo.image_height), int64_t(d.cinfo.image_width), d.cinfo.num_components};
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name, int64_t min_short_side) {
  Decoder d;
  open_header(d, data, size, name);
  const J_COLOR_SPACE cs = d.cinfo.jpeg_color_space;
  PACER_CHECK(cs != JCS_CMYK && cs != JCS_YCCK,
              "JPEG '{}': CMYK/YCCK JPEGs are not supported (expected greyscale or colour); convert it to RGB", name);
  PACER_CHECK(cs == JCS_GRAYSCALE || cs == JCS_YCbCr || cs == JCS_RGB,
              "JPEG '{}': unsupported colour space {} with {} components (expected greyscale, YCbCr or RGB)", name,
              int(cs), d.cinfo.num_components);
  d.cinfo.out_color_space = JCS_RGB;  // libjpeg-turbo expands greyscale to RGB itself
  d.cinfo.scale_num = 1;
  d.cinfo.scale_denom =
      unsigned(jpeg_scale_denominator(int64_t(d.cinfo.image_height), int64_t(d.cinfo.image_width), min_short_side));
  if (!step_start(d)) fail(name, d.err);
  PACER_CHECK(d.cinfo.output_components == 3, "JPEG '{}': expected 3 output components, libjpeg gave {}", name,
              d.cinfo.output_components);
  Image img(int64_t(d.cinfo.output_height), int64_t(d.cinfo.output_width), 3);
  if (!step_scanlines(d, img.pixels.data(), size_t(img.width) * 3)) fail(name, d.err);
  return img;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  PACER_CHECK(f.good(), "cannot open '{}' for reading", path);
  const std::streamoff n = f.tellg();
  PACER_CHECK(n >= 0, "cannot read the size of '{}'", path);
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(bytes.data()), n);
  PACER_CHECK(f.gcount() == n, "'{}': expected {} bytes, read {}", path, n, int64_t(f.gcount()));
  return bytes;
}

Image read_jpeg(const std::string& path, int64_t min_short_side) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_jpeg(bytes.data(), bytes.size(), path, min_short_side);
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  PACER_CHECK(f.good(), "cannot open '{}' for writing", path);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  f.close();
  PACER_CHECK(!f.fail(), "writing {} bytes to '{}' failed", bytes.size(), path);
}

namespace {

struct Encoder {
  jpeg_compress_struct cinfo{};
  ErrorManager err{};
  bool created = false;
  unsigned char* buffer = nullptr;  // malloc'ed by libjpeg's memory destination
  unsigned long size = 0;
  Encoder() = default;
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;
  ~Encoder() {
    if (created) jpeg_destroy_compress(&cinfo);
    std::free(buffer);
  }
};

bool step_encode(Encoder& e, const Image& image, int quality) {
  e.cinfo.err = &e.err.pub;
  install_error_manager(e.err);
  if (setjmp(e.err.jump)) return false;
  jpeg_create_compress(&e.cinfo);
  e.created = true;
  jpeg_mem_dest(&e.cinfo, &e.buffer, &e.size);
  e.cinfo.image_width = JDIMENSION(image.width);
  e.cinfo.image_height = JDIMENSION(image.height);
  e.cinfo.input_components = int(image.channels);
  e.cinfo.in_color_space = image.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&e.cinfo);
  jpeg_set_quality(&e.cinfo, quality, TRUE);
  jpeg_start_compress(&e.cinfo, TRUE);
  while (e.cinfo.next_scanline < e.cinfo.image_height) {
    // libjpeg's API takes non-const rows but only reads them.
    JSAMPROW row = const_cast<uint8_t*>(image.row(int64_t(e.cinfo.next_scanline)));
    jpeg_write_scanlines(&e.cinfo, &row, 1);
  }
  jpeg_finish_compress(&e.cinfo);
  return true;
}

}  // namespace

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
  PACER_CHECK(image.channels == 1 || image.channels == 3,
              "encode_jpeg: expected a 1-channel (grey) or 3-channel (RGB) image, got {} channels", image.channels);
  PACER_CHECK(image.height > 0 && image.width > 0 && image.height <= 65500 && image.width <= 65500,
              "encode_jpeg: expected sizes in [1, 65500], got {}x{}", image.height, image.width);
  PACER_CHECK(int64_t(image.pixels.size()) == image.height * image.width * image.channels,
              "encode_jpeg: expected {} bytes of pixels for {}x{}x{}, got {}", image.height * image.width * image.channels,
              image.height, image.width, image.channels, image.pixels.size());
  PACER_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: expected quality in [1, 100], got {}", quality);
  Encoder e;
  if (!step_encode(e, image, quality)) PACER_FAIL("encode_jpeg: libjpeg failed: {}", e.err.message);
  return std::vector<uint8_t>(e.buffer, e.buffer + e.size);
}

}  // namespace pacer::data
