// The CPU allocator: 64-byte alignment for every size, reuse of cached large blocks, and
// a clear error (not a crash) when memory runs out.
#include <cstdint>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

namespace pacer {

TEST_CASE("CPU allocations are 64-byte aligned for small, medium and cached sizes") {
  for (int64_t n : {1, 3, 17, 1000, 20000, 70000, 300000, 2000000}) {
    for (DType dt : {DType::U8, DType::F16, DType::F32, DType::F64}) {
      Tensor t = empty({n}, {.dtype = dt});
      CHECK(reinterpret_cast<uintptr_t>(t.data()) % kCpuAlignment == 0);
    }
  }
}

TEST_CASE("a reused large block holds exactly what the new tensor writes") {
  void* first = nullptr;
  {
    Tensor a = full({1 << 20}, 7.0);
    first = a.data();
  }
  Tensor b = zeros({1 << 20});
  // The block is normally reused from the cache; either way its contents are the new ones.
  MESSAGE("block reused: " << (b.data() == first));
  CHECK(sum(b).item<double>() == 0.0);
  Tensor c = full({1 << 20}, 2.0);
  CHECK(sum(c).item<double>() == double(1 << 21));
}

TEST_CASE("running out of memory is a pacer::Error naming the size") {
  bool threw = false;
  try {
    empty({int64_t(1) << 50}, {.dtype = DType::F64});
  } catch (const Error& e) {
    threw = true;
    CHECK(std::string(e.what()).find("out of memory allocating") != std::string::npos);
  }
  CHECK(threw);
}

}  // namespace pacer
