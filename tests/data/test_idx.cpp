// IDX reading: round trips (plain and gzip) and clear errors for missing, truncated and
// corrupt files.
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include "data/fashion_mnist.h"
#include "data/idx.h"
#include "data/sampler.h"
#include "tests/test_util.h"

namespace pacer {

using test::error_of;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("pacer_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

}  // namespace

TEST_CASE("IDX: round trip of u8, i32, f32 and f64 tensors") {
  const std::string path = temp_path("rt.idx");
  for (DType dt : {DType::U8, DType::I32, DType::F32, DType::F64}) {
    Tensor t = cast(arange(24) * 3 - (dt == DType::U8 ? 0 : 20), dt);
    t = reshape(t, {2, 3, 4});
    data::write_idx(path, t);
    Tensor back = data::read_idx(path);
    CHECK(back.dtype() == dt);
    CHECK(back.sizes() == Shape{2, 3, 4});
    CHECK(back.to_vector<double>() == t.to_vector<double>());
  }
  std::remove(path.c_str());
}

TEST_CASE("IDX: gzip-compressed files are read transparently") {
  const std::string plain = temp_path("plain.idx"), gz = temp_path("c.idx.gz");
  Tensor t = reshape(cast(arange(10), DType::U8), {2, 5});
  data::write_idx(plain, t);
  std::ifstream in(plain, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  gzFile f = gzopen(gz.c_str(), "wb");
  REQUIRE(f != nullptr);
  gzwrite(f, bytes.data(), unsigned(bytes.size()));
  gzclose(f);
  CHECK(data::read_idx(gz).to_vector<int64_t>() == t.to_vector<int64_t>());
  std::remove(plain.c_str());
  std::remove(gz.c_str());
}

TEST_CASE("IDX: missing, truncated and corrupt files give clear errors") {
  CHECK(error_of([] { data::read_idx("/nonexistent/file.idx"); }).find("cannot open '/nonexistent/file.idx'") !=
        std::string::npos);
  const std::string path = temp_path("bad.idx");
  write_bytes(path, {0, 0});
  CHECK(error_of([&] { data::read_idx(path); }).find("truncated: expected a 4-byte IDX header") != std::string::npos);
  write_bytes(path, {0x1f, 0x00, 8, 1, 0, 0, 0, 1, 5});
  CHECK(error_of([&] { data::read_idx(path); }).find("not an IDX file: expected magic bytes 00 00") != std::string::npos);
  write_bytes(path, {0, 0, 0x42, 1, 0, 0, 0, 1, 5});
  CHECK(error_of([&] { data::read_idx(path); }).find("unknown element type 0x42") != std::string::npos);
  write_bytes(path, {0, 0, 8, 0});
  CHECK(error_of([&] { data::read_idx(path); }).find("declares 0 dimensions, expected 1 to 8") != std::string::npos);
  write_bytes(path, {0, 0, 8, 2, 0, 0, 0, 2});
  CHECK(error_of([&] { data::read_idx(path); }).find("truncated inside its header") != std::string::npos);
  write_bytes(path, {0, 0, 8, 1, 0, 0, 0, 10, 1, 2, 3});
  CHECK(error_of([&] { data::read_idx(path); }).find("truncated: shape [10] needs 10 bytes") != std::string::npos);
  write_bytes(path, {0, 0, 8, 2, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff});
  CHECK(error_of([&] { data::read_idx(path); }).find("implausible size") != std::string::npos);
  std::remove(path.c_str());
  CHECK(error_of([] { data::load_fashion_mnist("/nonexistent", "train"); }).find("not found") != std::string::npos);
  CHECK(error_of([] { data::load_fashion_mnist("/nonexistent", "validation"); }).find("split must be 'train' or 'test'") !=
        std::string::npos);
}

TEST_CASE("sampler: a permutation fixed by (seed, epoch)") {
  auto a = data::shuffled_indices(1000, 7, 0), b = data::shuffled_indices(1000, 7, 0), c = data::shuffled_indices(1000, 7, 1);
  CHECK(a == b);
  CHECK(a != c);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) CHECK(sorted[size_t(i)] == i);
  auto batches = data::make_batches(a, 64);
  CHECK(batches.size() == 16);
  CHECK(batches.back().numel() == 1000 - 15 * 64);
  CHECK(data::make_batches(a, 64, true).size() == 15);
}

}  // namespace pacer
