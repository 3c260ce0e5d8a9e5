// Philox4x32-10 (core/philox.h) and the random factories built on it. The known-answer
// vectors are Random123's (kat_vectors, philox4x32 10 rounds), so an implementation that is
// merely self-consistent cannot pass; CUDA kernels must reproduce the same streams.
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include "core/philox.h"
#include "core/thread_pool.h"

namespace pacer::test {

namespace {

// Random123 gives the key as two words (k0, k1); philox4x32_10 takes them as one uint64_t
// whose low word is k0 (it splits key into uint32_t(key), uint32_t(key >> 32)).
Philox4 philox(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3) {
  return philox4x32_10((uint64_t(k1) << 32) | k0, c0, c1, c2, c3);
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.sizes() == b.sizes() && a.is_contiguous() && b.is_contiguous() &&
         std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}

}  // namespace

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors") {
  Philox4 r = philox(0, 0, 0, 0, 0, 0);
  CHECK(r.v[0] == 0x6627e8d5u);
  CHECK(r.v[1] == 0xe169c58du);
  CHECK(r.v[2] == 0xbc57ac4cu);
  CHECK(r.v[3] == 0x9b00dbd8u);

  r = philox(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  CHECK(r.v[0] == 0x408f276du);
  CHECK(r.v[1] == 0x41c83b0eu);
  CHECK(r.v[2] == 0xa20bc7c6u);
  CHECK(r.v[3] == 0x6d5451fdu);

  // The third vector (digits of pi) has distinct words everywhere, so it also catches a
  // swapped key or counter word that the two symmetric vectors above cannot.
  r = philox(0xa4093822u, 0x299f31d0u, 0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u);
  CHECK(r.v[0] == 0xd16cfe09u);
  CHECK(r.v[1] == 0x94fdccebu);
  CHECK(r.v[2] == 0x5001e420u);
  CHECK(r.v[3] == 0x24126ea1u);
}

TEST_CASE("philox_block lays out (block, offset) as the counter") {
  const uint64_t seed = 0x0123456789abcdefull, offset = 0x1122334455667788ull, block = 0x99aabbccddeeff00ull;
  Philox4 a = philox_block(seed, offset, block);
  Philox4 b = philox4x32_10(seed, uint32_t(block), uint32_t(block >> 32), uint32_t(offset), uint32_t(offset >> 32));
  CHECK(std::memcmp(a.v, b.v, sizeof a.v) == 0);
  // Neighbouring blocks and offsets give different numbers.
  CHECK(philox_block(seed, offset, block + 1).v[0] != a.v[0]);
  CHECK(philox_block(seed, offset + 1, block).v[0] != a.v[0]);
  // Uniforms are 24-bit fractions in [0, 1); the open-at-0 variant is in (0, 1].
  CHECK(uniform_from_bits(0) == 0.0f);
  CHECK(uniform_from_bits(0xffffffffu) == 1.0f - std::ldexp(1.0f, -24));
  CHECK(uniform_open0(0) == std::ldexp(1.0f, -24));
  CHECK(uniform_open0(0xffffffffu) == 1.0f);
}

TEST_CASE("rand and randn equal the serial Philox stream element by element") {
  // 50000 elements span many 4096-element grains, so the kernel runs split over the pool.
  Generator g(1234);
  for (int which = 0; which < 2; ++which) {
    const auto [seed, offset] = std::pair<uint64_t, uint64_t>{g.seed(), g.offset()};
    Tensor t = which == 0 ? rand({50000}, {}, &g) : randn({50000}, {}, &g);
    CHECK(g.offset() == offset + 1);  // one draw reserves one offset
    const float* p = t.data_ptr<float>();
    int mismatches = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const float want = which == 0 ? philox_uniform(seed, offset, uint64_t(i)) : philox_normal(seed, offset, uint64_t(i));
      mismatches += std::memcmp(&want, &p[i], sizeof want) != 0;
    }
    CAPTURE(which);
    CHECK(mismatches == 0);
  }
}

TEST_CASE("rand/randn drawn serially (inside a parallel region) equal the parallel draw") {
  // Inside a parallel region every nested parallel_for runs inline, which is exactly the
  // one-thread schedule, without resizing the shared pool.
  Generator g(99);
  g.set_state(99, 7);
  Tensor par_u = rand({30000}, {.dtype = f64}, &g);
  Tensor par_n = randn({30001, 3}, {}, &g);
  Tensor ser_u, ser_n;
  g.set_state(99, 7);
  parallel_for(0, 2, 1, [&](int64_t b, int64_t) {
    if (b != 0) return;
    ser_u = rand({30000}, {.dtype = f64}, &g);
    ser_n = randn({30001, 3}, {}, &g);
  });
  CHECK(bitwise_equal(par_u, ser_u));
  CHECK(bitwise_equal(par_n, ser_n));
}

// Regression test (was a bug): growing the pool after a pooled job crashes (see the skipped resize test in
// test_thread_pool.cpp: Pool::resize starts workers with a stale generation). This is the
// direct form of the check above, with set_num_threads(1) against two threads.
TEST_CASE("rand/randn are bitwise independent of set_num_threads (1 vs 2)") {
  const int original = num_threads();
  set_num_threads(2);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  manual_seed(5);
  Tensor u2 = rand({40000}), n2 = randn({40000});
  set_num_threads(1);
  manual_seed(5);
  Tensor u1 = rand({40000}), n1 = randn({40000});
  set_num_threads(original);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(bitwise_equal(u1, u2));
  CHECK(bitwise_equal(n1, n2));
  CHECK(num_threads() == original);
}

TEST_CASE("manual_seed makes draws reproducible and successive draws differ") {
  manual_seed(42);
  CHECK(default_generator().seed() == 42);
  CHECK(default_generator().offset() == 0);
  Tensor a = rand({1000}), b = randn({2, 500}), c = randint(0, 10, {1000});
  manual_seed(42);
  Tensor a2 = rand({1000}), b2 = randn({2, 500}), c2 = randint(0, 10, {1000});
  CHECK(bitwise_equal(a, a2));
  CHECK(bitwise_equal(b, b2));
  CHECK(bitwise_equal(c, c2));
  CHECK_FALSE(bitwise_equal(a, rand({1000})));  // the offset moved on
  manual_seed(43);
  CHECK_FALSE(bitwise_equal(a, rand({1000})));  // another seed, another stream

  // An explicit generator leaves the default one alone.
  const uint64_t before = default_generator().offset();
  Generator g(42);
  CHECK(bitwise_equal(rand({1000}, {}, &g), a));  // same (seed, offset) as the first draw
  CHECK(default_generator().offset() == before);
}

TEST_CASE("random factories: ranges, dtypes and rough moments") {
  Generator g(2024);
  std::vector<double> u = rand({100000}, {.dtype = f64}, &g).to_vector<double>();
  double mean = 0;
  for (double x : u) {
    REQUIRE(x >= 0.0);
    REQUIRE(x < 1.0);
    mean += x;
  }
  CHECK(mean / double(u.size()) == doctest::Approx(0.5).epsilon(0.01));
  std::vector<float> n = randn({100000}, {}, &g).to_vector<float>();
  double m = 0, sq = 0;
  for (float x : n) {
    m += x;
    sq += double(x) * x;
  }
  m /= double(n.size());
  CHECK(std::fabs(m) < 0.02);  // 6 sigma for 1e5 samples is 0.019
  CHECK(sq / double(n.size()) - m * m == doctest::Approx(1.0).epsilon(0.03));
  std::vector<int64_t> k = randint(-3, 4, {10000}, {.dtype = i64}, &g).to_vector<int64_t>();
  int seen[7] = {};
  for (int64_t v : k) {
    REQUIRE(v >= -3);
    REQUIRE(v < 4);
    ++seen[v + 3];
  }
  for (int s : seen) CHECK(s > 1000);  // all seven values appear, roughly evenly
  CHECK(rand({3}, {.dtype = bf16}, &g).dtype() == bf16);
  CHECK_THROWS_AS(rand({3}, {.dtype = i32}), Error);
  CHECK_THROWS_AS(randint(5, 5, {3}), Error);
}

}  // namespace pacer::test
