// Kernel scratch (core/scratch.h): from the allocator eagerly, from a region's arena range
// under a ScratchRegion (in the parallel_for chunks it starts too), counted, and from the
// allocator again when the region is full.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include "core/scratch.h"
#include "core/thread_pool.h"

namespace pacer::test {

namespace {

bool inside(const Tensor& t, const Storage& arena, size_t offset, size_t capacity) {
  const char* p = static_cast<const char*>(t.data());
  const char* base = static_cast<const char*>(arena->data()) + offset;
  return p >= base && p + t.nbytes() <= base + capacity;
}

}  // namespace

TEST_CASE("scratch comes from the allocator with no region, and from the region's range under one") {
  const Tensor eager = scratch_empty({3, 5}, DType::F32);
  CHECK(eager.sizes() == Shape{3, 5});
  CHECK(eager.is_contiguous());

  auto arena = make_intrusive<StorageImpl>(size_t(4096), Device(DeviceType::CPU));
  const ScratchCounts before = scratch_counts();
  {
    ScratchRegion region(arena, 1024, 1024);
    const Tensor a = scratch_empty({10}, DType::F32);   // 40 bytes, rounded up to 64
    const Tensor b = scratch_empty({4, 4}, DType::F64);  // 128 bytes
    CHECK(inside(a, arena, 1024, 1024));
    CHECK(inside(b, arena, 1024, 1024));
    CHECK(static_cast<const char*>(b.data()) - static_cast<const char*>(a.data()) == 64);
    CHECK(b.sizes() == Shape{4, 4});
    CHECK(region.requested() == 64 + 128);
    // Past the capacity: the allocator serves it, counted.
    const Tensor big = scratch_empty({1000}, DType::F32);
    CHECK(!inside(big, arena, 0, 4096));
    CHECK(region.overflows() == 1);
    CHECK(region.requested() == 64 + 128 + 4032);  // 4000 rounded up to 64
  }
  CHECK(scratch_counts().from_region - before.from_region == 2);
  CHECK(scratch_counts().overflowed - before.overflowed == 1);
  CHECK(ScratchRegion::current() == nullptr);
  CHECK(!inside(scratch_empty({10}, DType::F32), arena, 0, 4096));
}

TEST_CASE("a counting region serves nothing from an arena and sums what was asked") {
  ScratchRegion counting;
  const Tensor a = scratch_empty({100}, DType::F32);
  const Tensor b = scratch_empty({1}, DType::F16);
  CHECK(a.numel() == 100);
  CHECK(counting.requested() == 448 + 64);
  CHECK(counting.overflows() == 0);
}

TEST_CASE("parallel_for chunks serve scratch from the caller's region, and regions nest") {
  auto arena = make_intrusive<StorageImpl>(size_t(1) << 16, Device(DeviceType::CPU));
  ScratchRegion outer(arena, 0, size_t(1) << 15);
  std::mutex m;
  std::vector<Tensor> got;
  parallel_for(0, 64, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      Tensor t = scratch_empty({16}, DType::F32);
      std::memset(t.data(), int(i), t.nbytes());  // the ranges must not overlap (checked below)
      const std::lock_guard<std::mutex> lock(m);
      got.push_back(t);
    }
  });
  REQUIRE(got.size() == 64);
  std::vector<const char*> starts;
  for (const Tensor& t : got) {
    CHECK(inside(t, arena, 0, size_t(1) << 15));
    starts.push_back(static_cast<const char*>(t.data()));
  }
  std::sort(starts.begin(), starts.end());
  for (size_t i = 1; i < starts.size(); ++i) CHECK(starts[i] - starts[i - 1] >= 64);
  CHECK(outer.requested() == 64 * 64);
  {
    ScratchRegion inner(arena, size_t(1) << 15, size_t(1) << 15);
    CHECK(inside(scratch_empty({4}, DType::F32), arena, size_t(1) << 15, size_t(1) << 15));
    CHECK(outer.requested() == 64 * 64);
  }
  CHECK(inside(scratch_empty({4}, DType::F32), arena, 0, size_t(1) << 15));
}

TEST_CASE("a region must be a range of a CPU arena") {
  auto arena = make_intrusive<StorageImpl>(size_t(256), Device(DeviceType::CPU));
  CHECK_THROWS_WITH_AS(ScratchRegion(arena, 128, 256), doctest::Contains("expected a range of a CPU arena"), Error);
}

}  // namespace pacer::test
