// The image loader's pinned staging: batches land in pinned host memory and reach the GPU
// unchanged through the asynchronous copy.
#include <unistd.h>

#include <filesystem>

#include <doctest/doctest.h>

#include "core/cuda/pinned.h"
#include "data/image_loader.h"
#include "data/jpeg.h"
#include "ops/api.h"

namespace pacer::test {

TEST_CASE("cuda loader: pin_memory batches are pinned, equal the pageable ones, and copy to the GPU") {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("pacer_test_" + std::to_string(::getpid()) + "_pinned");
  fs::remove_all(root);
  for (int c = 0; c < 2; ++c) {
    fs::create_directories(root / std::to_string(c));
    for (int i = 0; i < 5; ++i) {
      data::Image img(30 + 4 * i, 36, 3);
      for (size_t k = 0; k < img.pixels.size(); ++k) img.pixels[k] = uint8_t((k * 7 + size_t(i) * 31 + size_t(c) * 90) % 251);
      data::write_file_bytes((root / std::to_string(c) / (std::to_string(i) + ".jpg")).string(), data::encode_jpeg(img));
    }
  }
  const data::ImageFolder folder = data::scan_image_folder(root.string());
  data::ImageLoaderOptions o;
  o.batch = 3;
  o.size = 16;
  o.threads = 2;
  data::ImageLoader pageable(folder, o);
  o.pin_memory = true;
  data::ImageLoader pinned(folder, o);
  pageable.start_epoch(0);
  pinned.start_epoch(0);
  data::ImageBatch a, b;
  int batches = 0;
  while (pageable.next(a)) {
    REQUIRE(pinned.next(b));
    CHECK(cuda::is_pinned(b.images.data()));
    CHECK(cuda::is_pinned(b.labels.data()));
    CHECK(!cuda::is_pinned(a.images.data()));
    CHECK(a.images.to_vector<float>() == b.images.to_vector<float>());
    CHECK(a.labels.to_vector<int64_t>() == b.labels.to_vector<int64_t>());
    const Tensor on_gpu = b.images.to(Device{DeviceType::CUDA, 0});
    CHECK(on_gpu.to(kCPU).to_vector<float>() == a.images.to_vector<float>());
    ++batches;
  }
  CHECK(!pinned.next(b));
  CHECK(batches == 4);
  std::error_code ec;
  fs::remove_all(root, ec);
}

}  // namespace pacer::test
