// `pacer prepare <dataset>`: converts a data set into the on-disk layout a workload reads.
// fashion-mnist -> an ImageFolder JPEG tree, so the ImageNet pipeline (decode, augment,
// loader) can be exercised end to end on a data set Debian ships.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "data/fashion_mnist.h"
#include "data/idx.h"
#include "data/jpeg.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "tools/json_line.h"

namespace pacer::cli {

namespace {

namespace fs = std::filesystem;

std::string find_idx(const std::string& dir, const std::string& stem) {
  for (const char* ext : {".gz", ""}) {
    const std::string p = dir + "/" + stem + ext;
    if (fs::exists(p)) return p;
  }
  PACER_FAIL("Fashion-MNIST: '{}/{}[.gz]' not found; install Debian's dataset-fashion-mnist (tools/setup.sh) or "
             "pass --data DIR",
             dir, stem);
}

// Writes one split as out/<split>/<label>/<index>.jpg; returns the number of images written.
// Indices are zero-padded so that the sorted file order (ImageFolder's) is the IDX order.
int64_t write_split(const std::string& data_dir, const std::string& prefix, const fs::path& out, int64_t limit,
                    int quality, bool quiet) {
  Tensor images = data::read_idx(find_idx(data_dir, prefix + "-images-idx3-ubyte"));
  Tensor labels = data::read_idx(find_idx(data_dir, prefix + "-labels-idx1-ubyte"));
  PACER_CHECK(images.dtype() == DType::U8 && images.dim() == 3 && images.is_contiguous(),
              "Fashion-MNIST: expected contiguous uint8 images [N, H, W], got {} {}", images.dtype(), images.sizes());
  PACER_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0), "Fashion-MNIST: expected {} labels, got shape {}",
              images.size(0), labels.sizes());
  const int64_t n = limit > 0 ? std::min(limit, images.size(0)) : images.size(0);
  const int64_t h = images.size(1), w = images.size(2);
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  for (int c = 0; c < 10; ++c) fs::create_directories(out / std::to_string(c));
  const uint8_t* px = images.data_ptr<uint8_t>();
  data::Image img(h, w, 1);
  for (int64_t i = 0; i < n; ++i) {
    PACER_CHECK(y[size_t(i)] >= 0 && y[size_t(i)] < 10, "Fashion-MNIST: label {} of image {} is outside [0, 10)",
                y[size_t(i)], i);
    std::copy_n(px + i * h * w, h * w, img.pixels.data());
    const fs::path file = out / std::to_string(y[size_t(i)]) / fmt::format("{:05}.jpg", i);
    data::write_file_bytes(file.string(), data::encode_jpeg(img, quality));
    if (!quiet && ((i + 1) % 1000 == 0 || i + 1 == n)) {
      std::fprintf(stderr, "\r%s: %lld/%lld images   ", out.string().c_str(), (long long)(i + 1), (long long)n);
      if (i + 1 == n) std::fputc('\n', stderr);
    }
  }
  return n;
}

int prepare_fashion_mnist(const std::vector<std::string>& argv) {
  Parser p("pacer prepare fashion-mnist --out DIR [options]",
           "Writes Fashion-MNIST as an ImageFolder JPEG tree: DIR/train/<class>/<index>.jpg (60k training images) "
           "and DIR/val/<class>/<index>.jpg (10k test images), class folders 0..9, greyscale JPEGs.");
  p.option("out", "DIR", "output folder (created; existing files are overwritten)", "")
      .option("data", "DIR", "folder with the Fashion-MNIST IDX files", data::kFashionMnistDir)
      .option("limit", "N", "write only the first N images of each split (0 = all)", "0")
      .option("quality", "Q", "JPEG quality, 1..100", "95")
      .flag("quiet", "no progress output");
  Args a = p.parse(argv);
  const int64_t limit = a.integer("limit");
  const int64_t quality = a.integer("quality");
  if (limit < 0) throw UsageError("--limit must be >= 0");
  if (quality < 1 || quality > 100) throw UsageError("--quality must be in [1, 100]");
  const fs::path out = a.str("out");
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t train = write_split(a.str("data"), "train", out / "train", limit, int(quality), a.flag("quiet"));
  const int64_t val = write_split(a.str("data"), "t10k", out / "val", limit, int(quality), a.flag("quiet"));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  JsonLine j;
  j.add("dataset", "fashion-mnist")
      .add("out", out.string())
      .add("train_images", train)
      .add("val_images", val)
      .add("classes", int64_t(10))
      .add("wall_s", wall);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace

int run_prepare(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: pacer prepare <dataset> [options]\n\ndatasets:\n"
      "  fashion-mnist  Debian's Fashion-MNIST as an ImageFolder JPEG tree (train/ and val/)\n\n"
      "`pacer prepare <dataset> --help` lists its options.\n";
  if (args.empty()) throw UsageError("expected a dataset\n\n" + usage);
  if (args[0] == "--help" || args[0] == "-h") throw HelpRequested(usage);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "fashion-mnist") return prepare_fashion_mnist(rest);
  throw UsageError("unknown dataset '" + args[0] + "' (available: fashion-mnist)\n\n" + usage);
}

}  // namespace pacer::cli
