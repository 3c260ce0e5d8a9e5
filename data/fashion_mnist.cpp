#include "data/fashion_mnist.h"

#include <filesystem>

#include "data/idx.h"
#include "ops/api.h"

namespace pacer::data {

namespace {

std::string find_file(const std::string& dir, const std::string& stem) {
  for (const char* ext : {".gz", ""}) {
    std::string p = dir + "/" + stem + ext;
    if (std::filesystem::exists(p)) return p;
  }
  PACER_FAIL("Fashion-MNIST: '{}/{}[.gz]' not found; install Debian's dataset-fashion-mnist (tools/setup.sh) or "
             "pass --data DIR",
             dir, stem);
}

}  // namespace

ImageClassificationSet load_fashion_mnist(const std::string& dir, const std::string& split, int64_t limit) {
  PACER_CHECK(split == "train" || split == "test", "Fashion-MNIST: split must be 'train' or 'test', got '{}'", split);
  const std::string prefix = split == "train" ? "train" : "t10k";
  Tensor images = read_idx(find_file(dir, prefix + "-images-idx3-ubyte"));
  Tensor labels = read_idx(find_file(dir, prefix + "-labels-idx1-ubyte"));
  PACER_CHECK(images.dim() == 3 && images.size(1) == 28 && images.size(2) == 28 && images.dtype() == DType::U8,
              "Fashion-MNIST: expected uint8 images of shape [N, 28, 28], got {} {}", images.dtype(), images.sizes());
  PACER_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0),
              "Fashion-MNIST: expected {} labels, got shape {}", images.size(0), labels.sizes());
  if (limit > 0 && limit < images.size(0)) {
    images = slice(images, 0, 0, limit);
    labels = slice(labels, 0, 0, limit);
  }
  constexpr double kMean = 0.2860, kStd = 0.3530;  // Fashion-MNIST training-set statistics
  Tensor x = (cast(reshape(images, {-1, 784}), DType::F32) * (1.0 / 255.0) - kMean) * (1.0 / kStd);
  Tensor y = cast(labels, DType::I64);
  int64_t bad = sum(logical_or(lt(y, wrap(0)), ge(y, wrap(10)))).item<int64_t>();
  PACER_CHECK(bad == 0, "Fashion-MNIST: {} labels are outside [0, 10)", bad);
  return {contiguous(x), contiguous(y)};
}

}  // namespace pacer::data
