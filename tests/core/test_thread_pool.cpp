// The core thread pool (core/thread_pool.h): the one owner of CPU parallelism. These tests
// use the pool at its configured size and only resize it where the test is about resizing,
// because every op of the process shares it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include "core/thread_pool.h"

namespace pacer::test {

namespace {

struct Call {
  int64_t begin, end;
  std::thread::id thread;
  bool in_region;
};

// Runs parallel_for and returns its calls sorted by begin.
std::vector<Call> record_calls(int64_t begin, int64_t end, int64_t grain) {
  std::mutex m;
  std::vector<Call> calls;
  parallel_for(begin, end, grain, [&](int64_t b, int64_t e) {
    std::lock_guard<std::mutex> g(m);
    calls.push_back({b, e, std::this_thread::get_id(), in_parallel_region()});
  });
  std::sort(calls.begin(), calls.end(), [](const Call& a, const Call& b) { return a.begin < b.begin; });
  return calls;
}

// A type unrelated to std::exception, to prove the original object is rethrown.
struct CustomError {
  int code;
};

}  // namespace

TEST_CASE("parallel_for covers the range exactly once with disjoint chunks") {
  REQUIRE(num_threads() >= 1);
  for (auto [begin, end, grain] : {std::tuple<int64_t, int64_t, int64_t>{0, 100003, 1000},
                                   {-50, 50, 1},
                                   {7, 8, 1},
                                   {1000, 5000, 0}}) {
    CAPTURE(begin);
    CAPTURE(end);
    CAPTURE(grain);
    std::vector<std::atomic<int>> hits(size_t(end - begin));
    parallel_for(begin, end, grain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[size_t(i - begin)].fetch_add(1);
    });
    int wrong = 0;
    for (auto& h : hits) wrong += h.load() != 1;
    CHECK(wrong == 0);

    std::vector<Call> calls = record_calls(begin, end, grain);
    REQUIRE(!calls.empty());
    CHECK(calls.front().begin == begin);
    CHECK(calls.back().end == end);
    CHECK(int64_t(calls.size()) <= num_threads());
    for (size_t i = 0; i < calls.size(); ++i) {
      CHECK(calls[i].begin < calls[i].end);                          // no empty chunks
      if (i > 0) CHECK(calls[i].begin == calls[i - 1].end);         // disjoint, no gaps
    }
  }
  int called = 0;
  parallel_for(5, 5, 1, [&](int64_t, int64_t) { ++called; });   // empty range
  parallel_for(9, 3, 1, [&](int64_t, int64_t) { ++called; });   // reversed range
  CHECK(called == 0);
}

TEST_CASE("parallel_for: a range within one grain runs inline in a single call") {
  const auto me = std::this_thread::get_id();
  std::vector<Call> calls = record_calls(0, 10, 100);
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].begin == 0);
  CHECK(calls[0].end == 10);
  CHECK(calls[0].thread == me);
  calls = record_calls(0, 100, 100);  // exactly one grain
  CHECK(calls.size() == 1);

  if (num_threads() >= 2) {
    // Two grains on a pool of two or more: two chunks, the caller runs the first, a worker
    // the second, and both know they are in a parallel region.
    calls = record_calls(0, 2000, 1000);
    REQUIRE(calls.size() == 2);
    CHECK(calls[0].end == 1000);
    CHECK(calls[0].thread == me);
    CHECK(calls[1].thread != me);
    CHECK(calls[0].in_region);
    CHECK(calls[1].in_region);
  }
  CHECK_FALSE(in_parallel_region());
}

// The documented split: at most num_threads() near-equal chunks and never more than
// ceil(len / grain) of them.
TEST_CASE("parallel_for: chunk count is bounded by threads and by len / grain") {
  for (auto [len, grain] : {std::pair<int64_t, int64_t>{1500, 1000}, {2999, 1000}, {10, 4}, {5, 100}}) {
    CAPTURE(len);
    CAPTURE(grain);
    std::vector<Call> calls = record_calls(0, len, grain);
    const int64_t max_chunks = std::min<int64_t>(num_threads(), (len + grain - 1) / grain);
    CHECK(int64_t(calls.size()) <= max_chunks);
    for (const Call& c : calls) CHECK(c.end - c.begin >= len / int64_t(calls.size()));
  }
}

TEST_CASE("nested parallel_for runs inline on the calling thread") {
  std::atomic<int> inner_calls{0}, wrong{0};
  std::atomic<int64_t> covered{0};
  parallel_for(0, 4, 1, [&](int64_t b, int64_t e) {
    const auto outer_thread = std::this_thread::get_id();
    const bool region = in_parallel_region();
    parallel_for(0, 1000, 1, [&](int64_t ib, int64_t ie) {
      inner_calls.fetch_add(1);
      covered.fetch_add(ie - ib);
      // Inside a real parallel region the inner loop must not split or change threads.
      if (region && (ib != 0 || ie != 1000 || std::this_thread::get_id() != outer_thread)) wrong.fetch_add(1);
    });
    (void)b;
    (void)e;
  });
  CHECK(wrong == 0);
  CHECK(covered == 1000 * int64_t(inner_calls.load()));
  if (num_threads() >= 2) CHECK(inner_calls == std::min(4, num_threads()));  // one per outer chunk
}

TEST_CASE("exceptions thrown in chunks reach the caller as the same type") {
  // Thrown from the last chunk (a worker's when the pool has several threads) ...
  CHECK_THROWS_WITH_AS(parallel_for(0, 2000, 1,
                                    [](int64_t, int64_t e) {
                                      if (e == 2000) throw std::out_of_range("boom at the end");
                                    }),
                       "boom at the end", std::out_of_range);
  // ... and from the first (the caller's own chunk).
  CHECK_THROWS_AS(parallel_for(0, 2000, 1,
                               [](int64_t b, int64_t) {
                                 if (b == 0) throw Error("first chunk");
                               }),
                  Error);
  int code = 0;
  try {
    parallel_for(0, 2000, 1, [](int64_t, int64_t) { throw CustomError{42}; });
  } catch (const CustomError& e) {
    code = e.code;
  }
  CHECK(code == 42);
  // The pool still works after a failed job.
  std::atomic<int64_t> sum{0};
  parallel_for(0, 1000, 1, [&](int64_t b, int64_t e) { sum.fetch_add(e - b); });
  CHECK(sum == 1000);
  CHECK_FALSE(in_parallel_region());
}

TEST_CASE("set_num_threads rejects bad counts and calls from a parallel region") {
  const int before = num_threads();
  CHECK_THROWS_WITH_AS(set_num_threads(0), doctest::Contains("at least 1 thread"), Error);
  CHECK_THROWS_AS(set_num_threads(-3), Error);
  CHECK(num_threads() == before);
  if (before >= 2) {
    // The check fires before any resize, so this leaves the pool as it was.
    CHECK_THROWS_WITH_AS(parallel_for(0, 2, 1, [](int64_t, int64_t) { set_num_threads(1); }),
                         doctest::Contains("inside a parallel region"), Error);
    CHECK(num_threads() == before);
  }
}

// Regression test (was a bug): Pool::resize (core/thread_pool.cpp) starts new workers with seen = 0 while generation_
// keeps the count of past jobs, and chunks_ / begin_ / len_ keep the last job's values. After
// any pooled job, growing the pool (set_num_threads(n >= 2), including restoring the count)
// wakes worker 1 at once and it runs run_chunk(1) of the finished job with job_ == nullptr:
// a segfault (reproduced: parallel_for, set_num_threads(1), set_num_threads(2), sleep ->
// SIGSEGV). Workers should start with seen = generation_.
TEST_CASE("set_num_threads(1) makes parallel_for serial and restoring the count works") {
  const int original = num_threads();
  record_calls(0, 4000, 1);  // a pooled job first, as in any real program
  set_num_threads(1);
  CHECK(num_threads() == 1);
  std::vector<Call> calls = record_calls(0, 100000, 1);
  REQUIRE(calls.size() == 1);  // serial: one inline call over the whole range
  CHECK(calls[0].begin == 0);
  CHECK(calls[0].end == 100000);
  CHECK(calls[0].thread == std::this_thread::get_id());
  CHECK_FALSE(calls[0].in_region);

  set_num_threads(std::max(original, 2));
  // Give fresh workers time to wake: the bug needs them to run before the next job.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  calls = record_calls(0, 4000, 1);
  CHECK(calls.size() == size_t(std::max(original, 2)));
  set_num_threads(original);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(num_threads() == original);
  CHECK(record_calls(0, 4000, 1).back().end == 4000);
}

TEST_CASE("SerialChunks: the pool's chunks, one after the other on the calling thread, nested calls inline") {
  const int original = num_threads();
  set_num_threads(3);
  const std::vector<Call> pooled = record_calls(5, 105, 7);
  std::vector<Call> serial;
  {
    const SerialChunks scope;
    CHECK_FALSE(in_parallel_region());
    serial = record_calls(5, 105, 7);
    // Inside a chunk a nested parallel_for runs inline, as on the pool.
    int nested_calls = 0;
    parallel_for(0, 10, 1, [&](int64_t, int64_t) {
      parallel_for(0, 100, 1, [&](int64_t b, int64_t e) {
        ++nested_calls;
        CHECK(b == 0);
        CHECK(e == 100);
      });
    });
    CHECK(nested_calls == 3);
  }
  CHECK_FALSE(in_parallel_region());
  REQUIRE(pooled.size() == 3);
  REQUIRE(serial.size() == pooled.size());
  for (size_t i = 0; i < serial.size(); ++i) {
    CHECK(serial[i].begin == pooled[i].begin);
    CHECK(serial[i].end == pooled[i].end);
    CHECK(serial[i].thread == std::this_thread::get_id());
    CHECK(serial[i].in_region);
  }
  // Within a pool chunk (the graph executor's pairs), SerialChunks starts a fresh serial scope.
  std::vector<std::vector<Call>> lanes(2);
  parallel_for(0, 2, 1, [&](int64_t b, int64_t e) {
    for (int64_t lane = b; lane < e; ++lane) {
      const SerialChunks scope;
      lanes[size_t(lane)] = record_calls(0, 30, 1);
    }
  });
  for (const auto& lane : lanes) CHECK(lane.size() == 3);
  set_num_threads(original);
}

}  // namespace pacer::test
