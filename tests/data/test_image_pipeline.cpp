// The ImageNet-style image pipeline: JPEG decode/encode (with DCT downscaling and clear
// errors), ImageFolder scanning, augmentation, and the multi-threaded loader (determinism
// across thread counts, resume, corrupt files skipped or fatal in strict mode).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

// After <cstdio> and <cstddef>: jpeglib.h uses FILE and size_t without including them.
#include <jpeglib.h>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include "core/cuda/runtime.h"
#include "data/image_folder.h"
#include "data/image_loader.h"
#include "data/image_transforms.h"
#include "data/jpeg.h"
#include "tests/test_util.h"

namespace pacer {

using namespace data;
using test::error_of;
namespace fs = std::filesystem;

namespace {

// A fresh temporary folder, removed with its contents at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("pacer_test_" + std::to_string(::getpid()) + "_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& s) const { return (path / s).string(); }
};

// A smooth colour image (gradients + a soft blob): JPEG keeps such content accurately.
Image smooth_image(int64_t h, int64_t w, int seed = 0) {
  Image img(h, w, 3);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const double u = double(x) / double(w), v = double(y) / double(h);
      const double blob = std::exp(-((u - 0.5) * (u - 0.5) + (v - 0.4) * (v - 0.4)) * 8.0);
      uint8_t* p = img.row(y) + x * 3;
      p[0] = uint8_t(std::lround(40 + 150 * u + seed % 30));
      p[1] = uint8_t(std::lround(30 + 120 * v + 60 * blob));
      p[2] = uint8_t(std::lround(200 - 140 * blob));
    }
  }
  return img;
}

double psnr(const Image& a, const Image& b) {
  REQUIRE(a.pixels.size() == b.pixels.size());
  double se = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const double d = double(a.pixels[i]) - double(b.pixels[i]);
    se += d * d;
  }
  const double mse = se / double(a.pixels.size());
  return mse == 0 ? 99.0 : 10.0 * std::log10(255.0 * 255.0 / mse);
}

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = uint8_t(philox_block(seed, 0, i).v[0]);
  return out;
}

// A CMYK JPEG made with libjpeg directly (encode_jpeg only writes grey and RGB).
std::vector<uint8_t> cmyk_jpeg(int h, int w) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = JDIMENSION(w);
  c.image_height = JDIMENSION(h);
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_start_compress(&c, TRUE);
  std::vector<uint8_t> row(size_t(w) * 4, 100);
  while (c.next_scanline < c.image_height) {
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::vector<uint8_t> out(buf, buf + size);
  std::free(buf);
  return out;
}

// root/<class>/<i>.jpg for classes "cat", "ant", "bee" (so the sorted order differs from
// creation order), images of varied sizes; `bad` adds one random-bytes file and one
// truncated JPEG to class "bee".
void write_folder(const std::string& root, int per_class, bool bad) {
  const char* classes[] = {"cat", "ant", "bee"};
  int n = 0;
  for (const char* c : classes) {
    fs::create_directories(fs::path(root) / c);
    for (int i = 0; i < per_class; ++i, ++n) {
      Image img = smooth_image(40 + (n * 7) % 50, 50 + (n * 13) % 60, n);
      write_file_bytes((fs::path(root) / c / (std::to_string(i) + ".jpg")).string(), encode_jpeg(img, 90));
    }
  }
  if (bad) {
    write_file_bytes(root + "/bee/corrupt.jpg", random_bytes(3000, 7));
    std::vector<uint8_t> good = encode_jpeg(smooth_image(64, 64), 90);
    good.resize(good.size() / 2);
    write_file_bytes(root + "/bee/truncated.jpg", good);
  }
}

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

std::vector<ImageBatch> run_epoch(ImageLoader& loader, int64_t epoch, int64_t first = 0) {
  std::vector<ImageBatch> out;
  loader.start_epoch(epoch, first);
  ImageBatch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

void check_same_batches(const std::vector<ImageBatch>& a, const std::vector<ImageBatch>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].index == b[i].index);
    CHECK(a[i].indices == b[i].indices);
    CHECK(a[i].labels.to_vector<int64_t>() == b[i].labels.to_vector<int64_t>());
    CHECK(a[i].images.sizes() == b[i].images.sizes());
    CHECK(values(a[i].images) == values(b[i].images));
  }
}

}  // namespace

TEST_CASE("JPEG: RGB and grey round trips decode close to the original") {
  Image img = smooth_image(48, 64);
  std::vector<uint8_t> bytes = encode_jpeg(img, 95);
  CHECK(bytes.size() > 100);
  JpegHeader h = read_jpeg_header(bytes.data(), bytes.size(), "mem");
  CHECK(h.height == 48);
  CHECK(h.width == 64);
  CHECK(h.channels == 3);
  Image back = decode_jpeg(bytes.data(), bytes.size(), "mem");
  CHECK(back.height == 48);
  CHECK(back.width == 64);
  CHECK(back.channels == 3);
  CHECK(psnr(img, back) > 35.0);
  // Lower quality loses more.
  std::vector<uint8_t> low = encode_jpeg(img, 10);
  CHECK(low.size() < bytes.size());
  CHECK(psnr(img, decode_jpeg(low.data(), low.size(), "mem")) < psnr(img, back));

  Image grey(20, 30, 1);
  for (size_t i = 0; i < grey.pixels.size(); ++i) grey.pixels[i] = uint8_t(60 + (i % 30) * 4);
  std::vector<uint8_t> gb = encode_jpeg(grey, 95);
  CHECK(read_jpeg_header(gb.data(), gb.size(), "g").channels == 1);
  Image rgb = decode_jpeg(gb.data(), gb.size(), "g");
  REQUIRE(rgb.channels == 3);
  Image expanded(20, 30, 3);
  bool equal_channels = true;
  for (int64_t i = 0; i < 20 * 30; ++i) {
    const uint8_t* p = rgb.pixels.data() + i * 3;
    equal_channels = equal_channels && p[0] == p[1] && p[1] == p[2];
    for (int c = 0; c < 3; ++c) expanded.pixels[size_t(i * 3 + c)] = grey.pixels[size_t(i)];
  }
  CHECK(equal_channels);
  CHECK(psnr(expanded, rgb) > 35.0);

  CHECK(error_of([&] { encode_jpeg(Image(4, 4, 2)); }).find("expected a 1-channel (grey) or 3-channel (RGB) image, got 2") !=
        std::string::npos);
  CHECK(error_of([&] { encode_jpeg(img, 0); }).find("quality in [1, 100], got 0") != std::string::npos);
}

TEST_CASE("JPEG: DCT-domain downscaling keeps the short side at least the requested size") {
  CHECK(jpeg_scale_denominator(200, 256, 0) == 1);
  CHECK(jpeg_scale_denominator(200, 256, 25) == 8);
  CHECK(jpeg_scale_denominator(200, 256, 26) == 4);
  CHECK(jpeg_scale_denominator(200, 256, 50) == 4);
  CHECK(jpeg_scale_denominator(200, 256, 51) == 2);
  CHECK(jpeg_scale_denominator(200, 256, 100) == 2);
  CHECK(jpeg_scale_denominator(200, 256, 101) == 1);
  CHECK(jpeg_scale_denominator(200, 256, 500) == 1);
  CHECK(jpeg_scale_denominator(201, 256, 26) == 8);  // ceil(201 / 8) = 26

  Image img = smooth_image(201, 256);
  std::vector<uint8_t> bytes = encode_jpeg(img, 95);
  struct Case {
    int64_t min_side, h, w;
  };
  for (Case c : {Case{0, 201, 256}, Case{26, 26, 32}, Case{50, 51, 64}, Case{100, 101, 128}, Case{150, 201, 256},
                 Case{1000, 201, 256}}) {
    CAPTURE(c.min_side);
    Image d = decode_jpeg(bytes.data(), bytes.size(), "mem", c.min_side);
    CHECK(d.height == c.h);
    CHECK(d.width == c.w);
    CHECK(std::min(d.height, d.width) >= std::min<int64_t>(c.min_side, 201));
  }
  // The 1/4 decode looks like the full image shrunk.
  Image quarter = decode_jpeg(bytes.data(), bytes.size(), "mem", 50);
  CHECK(psnr(resize_bilinear(img, quarter.height, quarter.width), quarter) > 25.0);
}

TEST_CASE("JPEG: corrupt, truncated, empty and CMYK files are errors naming the file") {
  std::vector<uint8_t> junk = random_bytes(2000, 3);
  std::string e = error_of([&] { decode_jpeg(junk.data(), junk.size(), "junk.jpg"); });
  CHECK(e.find("JPEG 'junk.jpg': cannot decode") != std::string::npos);

  std::vector<uint8_t> good = encode_jpeg(smooth_image(64, 80), 90);
  std::vector<uint8_t> half(good.begin(), good.begin() + long(good.size() / 2));
  e = error_of([&] { decode_jpeg(half.data(), half.size(), "half.jpg"); });
  CHECK(e.find("JPEG 'half.jpg': cannot decode") != std::string::npos);
  CHECK(e.find("Premature end of JPEG file") != std::string::npos);
  // Cut inside the header too.
  std::vector<uint8_t> head(good.begin(), good.begin() + 20);
  CHECK(error_of([&] { decode_jpeg(head.data(), head.size(), "head.jpg"); }).find("JPEG 'head.jpg'") !=
        std::string::npos);
  CHECK(error_of([&] { decode_jpeg(nullptr, 0, "empty.jpg"); }).find("JPEG 'empty.jpg': expected JPEG bytes") !=
        std::string::npos);

  std::vector<uint8_t> cmyk = cmyk_jpeg(16, 16);
  CHECK(read_jpeg_header(cmyk.data(), cmyk.size(), "c").channels == 4);
  CHECK(error_of([&] { decode_jpeg(cmyk.data(), cmyk.size(), "cmyk.jpg"); })
            .find("JPEG 'cmyk.jpg': CMYK/YCCK JPEGs are not supported") != std::string::npos);

  CHECK(error_of([] { read_jpeg("/nonexistent/x.jpg"); }).find("cannot open '/nonexistent/x.jpg'") !=
        std::string::npos);
  // The decoder still works after all those failures.
  CHECK(decode_jpeg(good.data(), good.size(), "ok").width == 80);
}

TEST_CASE("ImageFolder: classes sorted by name, files sorted, nested and upper-case extensions") {
  TempDir dir("folder");
  for (const char* c : {"zebra", "apple", "mango"}) fs::create_directories(fs::path(dir.path) / c);
  std::vector<uint8_t> jpg = encode_jpeg(smooth_image(8, 8), 80);
  write_file_bytes(dir / "zebra/b.jpg", jpg);
  write_file_bytes(dir / "zebra/a.JPEG", jpg);
  write_file_bytes(dir / "zebra/notes.txt", {1, 2, 3});
  write_file_bytes(dir / "apple/x.jpeg", jpg);
  fs::create_directories(dir.path / "mango" / "sub");
  write_file_bytes(dir / "mango/sub/m.jpg", jpg);
  write_file_bytes(dir / "stray.jpg", jpg);  // files directly under root are not samples

  ImageFolder f = scan_image_folder(dir.path.string());
  CHECK(f.classes == std::vector<std::string>{"apple", "mango", "zebra"});
  REQUIRE(f.size() == 4);
  CHECK(f.files[0] == dir / "apple/x.jpeg");
  CHECK(f.files[1] == dir / "mango/sub/m.jpg");
  CHECK(f.files[2] == dir / "zebra/a.JPEG");
  CHECK(f.files[3] == dir / "zebra/b.jpg");
  CHECK(f.labels == std::vector<int64_t>{0, 1, 2, 2});

  fs::create_directories(dir.path / "empty_class");
  CHECK(error_of([&] { scan_image_folder(dir.path.string()); }).find("1 class folder(s) hold no .jpg/.jpeg files: 'empty_class'") !=
        std::string::npos);
  CHECK(error_of([&] { scan_image_folder(dir / "missing"); }).find("is not a folder") != std::string::npos);
  TempDir bare("folder_bare");
  CHECK(error_of([&] { scan_image_folder(bare.path.string()); }).find("has no class folders") != std::string::npos);
}

TEST_CASE("random-resized crop: boxes inside the image, torchvision's ranges, deterministic per sample") {
  const int64_t h = 300, w = 400;
  RandomResizedCropParams p;
  double area_sum = 0, area_min = 1, area_max = 0;
  int flips = 0, n = 4000;
  std::set<std::pair<int64_t, int64_t>> corners;
  for (int i = 0; i < n; ++i) {
    SampleRng rng(11, 2, uint64_t(i));
    CropBox b = random_resized_crop_box(h, w, rng, p);
    REQUIRE(b.top >= 0);
    REQUIRE(b.left >= 0);
    REQUIRE(b.height >= 1);
    REQUIRE(b.width >= 1);
    REQUIRE(b.top + b.height <= h);
    REQUIRE(b.left + b.width <= w);
    const double frac = double(b.height * b.width) / double(h * w);
    const double ratio = double(b.width) / double(b.height);
    CHECK(frac >= 0.05 * 0.9);
    CHECK(ratio >= 0.75 * 0.9);
    CHECK(ratio <= 4.0 / 3.0 * 1.1);
    area_sum += frac;
    area_min = std::min(area_min, frac);
    area_max = std::max(area_max, frac);
    flips += random_flip(rng) ? 1 : 0;
    corners.insert({b.top, b.left});
    // The same (seed, epoch, index) gives the same box; so a second call agrees.
    CHECK(random_resized_crop_box(h, w, SampleRng(11, 2, uint64_t(i)), p) == b);
  }
  // Uniform area in [0.05, 1] minus the rejected large boxes: the mean sits near 0.5.
  CHECK(area_sum / n > 0.4);
  CHECK(area_sum / n < 0.6);
  CHECK(area_min < 0.07);
  CHECK(area_max > 0.9);
  CHECK(std::abs(double(flips) / n - 0.5) < 0.04);
  CHECK(corners.size() > size_t(n / 2));  // positions vary
  // Other seeds / epochs draw other boxes.
  int differ = 0;
  for (int i = 0; i < 50; ++i) {
    CropBox a = random_resized_crop_box(h, w, SampleRng(11, 2, uint64_t(i)), p);
    differ += !(a == random_resized_crop_box(h, w, SampleRng(11, 3, uint64_t(i)), p));
    differ += !(a == random_resized_crop_box(h, w, SampleRng(12, 2, uint64_t(i)), p));
  }
  CHECK(differ > 90);
  // A very wide image makes every try miss: the centred fallback clamps the ratio to 4/3.
  CropBox f = random_resized_crop_box(10, 1000, SampleRng(0, 0, 0), p);
  CHECK(f == CropBox{0, (1000 - 13) / 2, 10, 13});
  CHECK(error_of([&] { random_resized_crop_box(0, 5, SampleRng(0, 0, 0), p); }).find("non-empty image") !=
        std::string::npos);
}

TEST_CASE("resize, flip, eval crop and normalization") {
  Image img = smooth_image(30, 40);
  Image same = resize_bilinear(img, 30, 40);
  CHECK(same.pixels == img.pixels);
  Image flipped = resize_bilinear(img, CropBox{0, 0, 30, 40}, 30, 40, true);
  bool mirrored = true;
  for (int64_t y = 0; y < 30; ++y)
    for (int64_t x = 0; x < 40; ++x)
      for (int c = 0; c < 3; ++c) mirrored = mirrored && flipped.row(y)[x * 3 + c] == img.row(y)[(39 - x) * 3 + c];
  CHECK(mirrored);
  // Downscaling by exactly 2 averages 2x2 blocks (pixel centres aligned).
  Image checker(4, 4, 3);
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c) checker.row(y)[x * 3 + c] = uint8_t(((x + y) % 2) * 200);
  Image half = resize_bilinear(checker, 2, 2);
  for (uint8_t v : half.pixels) CHECK(int(v) == 100);
  // A crop box resizes only its region.
  Image c = crop(img, CropBox{5, 7, 10, 12});
  CHECK(resize_bilinear(img, CropBox{5, 7, 10, 12}, 10, 12).pixels == c.pixels);

  Image r = resize_short_side(smooth_image(300, 450), 256);
  CHECK(r.height == 256);
  CHECK(r.width == 384);
  Image t = resize_short_side(smooth_image(451, 300), 256);
  CHECK(t.width == 256);
  CHECK(t.height == 256 * 451 / 300);
  CHECK(center_crop_box(256, 384, 224, 224) == CropBox{16, 80, 224, 224});
  CHECK(center_crop_box(5, 6, 2, 2) == CropBox{2, 2, 2, 2});  // round(1.5) = 2, round(2.0) = 2
  Image e = eval_transform(smooth_image(300, 450), 256, 224);
  CHECK(e.height == 224);
  CHECK(e.width == 224);
  Image tr = train_transform(smooth_image(300, 450), 64, SampleRng(1, 0, 5));
  CHECK(tr.height == 64);
  CHECK(tr.width == 64);

  Image px(1, 2, 3);
  px.pixels = {0, 128, 255, 255, 0, 128};
  Tensor n = to_normalized_tensor(px);
  CHECK(n.sizes() == Shape{3, 1, 2});
  std::vector<float> v = values(n);
  CHECK(v[0] == doctest::Approx((0.0 - 0.485) / 0.229).epsilon(1e-5));  // R of pixel 0
  CHECK(v[1] == doctest::Approx((1.0 - 0.485) / 0.229).epsilon(1e-5));  // R of pixel 1
  CHECK(v[2] == doctest::Approx((128 / 255.0 - 0.456) / 0.224).epsilon(1e-5));
  CHECK(v[5] == doctest::Approx((128 / 255.0 - 0.406) / 0.225).epsilon(1e-5));
  CHECK(error_of([] { to_normalized_tensor(Image(2, 2, 1)); }).find("expected an RGB image (3 channels), got 1") !=
        std::string::npos);
}

TEST_CASE("ImageLoader: batches identical with 1 and 2 threads, corrupt files skipped and counted") {
  TempDir dir("loader");
  write_folder(dir.path.string(), 5, true);
  ImageFolder f = scan_image_folder(dir.path.string());
  REQUIRE(f.size() == 17);
  CHECK(f.classes == std::vector<std::string>{"ant", "bee", "cat"});
  ImageLoaderOptions o;
  o.batch = 4;
  o.size = 24;
  o.seed = 5;
  o.threads = 1;
  ImageLoader one(f, o);
  o.threads = 2;
  o.prefetch = 3;
  ImageLoader two(f, o);
  CHECK(one.batches_per_epoch() == 5);
  o.threads = 4;
  o.prefetch = 1;
  ImageLoader four(f, o);
  std::vector<ImageBatch> a = run_epoch(one, 1), b = run_epoch(two, 1);
  check_same_batches(a, b);
  check_same_batches(a, run_epoch(four, 1));
  CHECK(one.skipped() == 2);
  CHECK(two.skipped() == 2);
  CHECK(four.skipped() == 2);
  int64_t total = 0, skipped = 0;
  std::set<int64_t> seen;
  for (const ImageBatch& x : a) {
    CHECK(x.images.dtype() == DType::F32);
    CHECK(x.images.size(1) == 3);
    CHECK(x.images.size(2) == 24);
    CHECK(x.images.size(0) == x.labels.numel());
    CHECK(x.epoch == 1);
    total += x.labels.numel();
    skipped += x.skipped;
    const std::vector<float> got = values(x.images);
    const size_t plane = 3 * 24 * 24;
    for (size_t i = 0; i < x.indices.size(); ++i) {
      const int64_t idx = x.indices[i];
      seen.insert(idx);
      CHECK(x.labels.to_vector<int64_t>()[i] == f.labels[size_t(idx)]);
      // Each row is the sample's own augmentation, computed here without the loader.
      Image view = train_transform(read_jpeg(f.files[size_t(idx)], 24), 24, SampleRng(5, 1, uint64_t(idx)));
      CHECK(values(to_normalized_tensor(view)) == std::vector<float>(got.begin() + long(i * plane),
                                                                     got.begin() + long((i + 1) * plane)));
    }
  }
  CHECK(total == 15);
  CHECK(skipped == 2);
  CHECK(seen.size() == 15);
  // The order is shuffled_indices(n, seed, epoch), so another epoch differs.
  std::vector<ImageBatch> c = run_epoch(one, 2);
  CHECK(c[0].indices != a[0].indices);
  CHECK(one.skipped() == 4);
}

TEST_CASE("ImageLoader: resuming at batch k gives the full run's tail, strict mode names the bad file") {
  TempDir dir("resume");
  write_folder(dir.path.string(), 6, false);
  ImageFolder f = scan_image_folder(dir.path.string());
  ImageLoaderOptions o;
  o.batch = 3;
  o.size = 16;
  o.threads = 2;
  o.seed = 9;
  ImageLoader loader(f, o);
  std::vector<ImageBatch> full = run_epoch(loader, 3);
  REQUIRE(full.size() == 6);
  std::vector<ImageBatch> tail = run_epoch(loader, 3, 4);
  check_same_batches(std::vector<ImageBatch>(full.begin() + 4, full.end()), tail);
  CHECK(run_epoch(loader, 3, 6).empty());
  CHECK(error_of([&] { loader.start_epoch(3, 7); }).find("expected a start batch in [0, 6], got 7") !=
        std::string::npos);
  // Abandoning an epoch mid-way and starting another is fine.
  loader.start_epoch(0);
  ImageBatch one;
  CHECK(loader.next(one));
  std::vector<ImageBatch> again = run_epoch(loader, 3);
  check_same_batches(full, again);

  // Sharding: two ranks see disjoint halves covering every sample.
  ImageLoaderOptions r0 = o, r1 = o;
  r0.world_size = r1.world_size = 2;
  r1.rank = 1;
  std::vector<int64_t> s0 = ImageLoader(f, r0).epoch_order(3), s1 = ImageLoader(f, r1).epoch_order(3);
  std::set<int64_t> all(s0.begin(), s0.end());
  all.insert(s1.begin(), s1.end());
  CHECK(s0.size() == 9);
  CHECK(all.size() == 18);

  // Eval mode: folder order, resize + center crop.
  ImageLoaderOptions ev = o;
  ev.train = false;
  ev.shuffle = false;
  ev.eval_resize = 20;
  ImageLoader eval(f, ev);
  std::vector<ImageBatch> e = run_epoch(eval, 0);
  CHECK(e[0].indices == std::vector<int64_t>{0, 1, 2});
  CHECK(e[0].images.sizes() == Shape{3, 3, 16, 16});

  write_file_bytes(dir / "bee/zz_truncated.jpg", random_bytes(500, 1));
  ImageFolder g = scan_image_folder(dir.path.string());
  ImageLoaderOptions strict = o;
  strict.strict = true;
  strict.shuffle = false;
  ImageLoader sl(g, strict);
  sl.start_epoch(0);
  ImageBatch x;
  std::string err;
  try {
    while (sl.next(x)) {
    }
  } catch (const Error& ex) {
    err = ex.what();
  }
  CHECK(err.find("zz_truncated.jpg': cannot decode") != std::string::npos);
  CHECK(err.find("ImageLoader (strict)") != std::string::npos);
}

TEST_CASE("ImageLoader: pin_memory without a CUDA device is an error saying so") {
  if (cuda::is_available()) return;  // test_gpu checks the pinned batches themselves
  TempDir dir("pin");
  write_folder(dir.path.string(), 1, false);
  ImageLoaderOptions o;
  o.pin_memory = true;
  const std::string err = error_of([&] { ImageLoader loader(scan_image_folder(dir.path.string()), o); });
  CHECK(err.find("pin_memory expects a CUDA device, got 0") != std::string::npos);
}

TEST_CASE("pipeline_images_per_s reports a positive rate") {
  TempDir dir("bench");
  write_folder(dir.path.string(), 3, false);
  const double r = pipeline_images_per_s(dir.path.string(), 2, 4, 20, 16);
  CHECK(r > 0);
  CHECK(std::isfinite(r));
}

}  // namespace pacer
