#include "core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/scratch.h"

namespace pacer {

namespace {

thread_local bool t_in_parallel = false;
thread_local bool t_serial_chunks = false;  // SerialChunks

int default_threads() {
  if (const char* env = std::getenv("PACER_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v >= 1 && v <= 1024) return int(v);
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? int(hc) : 1;
}

// Workers sleep on a condition variable between jobs; a job is split into one chunk per
// thread and the caller runs chunk 0 itself, so a 2-thread pool wakes one worker.
class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return size_; }

  void resize(int n) {
    stop();
    size_ = std::max(1, n);
    quit_ = false;
    // Workers start at the current generation, so a finished job is never run again.
    const uint64_t now = generation_;
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i, now] { work(i, now); });
  }

  void run(int64_t begin, int64_t end, int64_t chunks, const std::function<void(int64_t, int64_t)>& fn) {
    std::unique_lock<std::mutex> call_lock(call_mutex_);  // one job at a time
    const int64_t len = end - begin;
    {
      std::lock_guard<std::mutex> g(m_);
      job_ = &fn;
      begin_ = begin;
      len_ = len;
      chunks_ = chunks;
      region_ = ScratchRegion::current();  // the chunks serve scratch as the caller would
      pending_ = int(chunks - 1);
      error_ = nullptr;
      ++generation_;
    }
    cv_.notify_all();
    run_chunk(0);
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run_chunk(int64_t c) {
    const int64_t b = begin_ + len_ * c / chunks_;
    const int64_t e = begin_ + len_ * (c + 1) / chunks_;
    t_in_parallel = true;
    ScratchRegion* const own_region = ScratchRegion::current();
    ScratchRegion::set_current(region_);
    try {
      if (b < e) (*job_)(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> g(m_);
      if (!error_) error_ = std::current_exception();
    }
    ScratchRegion::set_current(own_region);
    t_in_parallel = false;
  }

  void work(int id, uint64_t seen) {
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return quit_ || generation_ != seen; });
        if (quit_) return;
        seen = generation_;
        if (id >= chunks_) continue;
      }
      run_chunk(id);
      std::lock_guard<std::mutex> g(m_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> g(m_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_, m_;
  std::condition_variable cv_, done_cv_;
  bool quit_ = false;
  uint64_t generation_ = 0;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t begin_ = 0, len_ = 0, chunks_ = 1;
  ScratchRegion* region_ = nullptr;
  int pending_ = 0;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  PACER_CHECK(n >= 1, "set_num_threads: expected at least 1 thread, got {}", n);
  PACER_CHECK(!t_in_parallel, "set_num_threads: cannot resize the pool from inside a parallel region");
  pool().resize(n);
}

bool in_parallel_region() { return t_in_parallel; }

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (begin >= end) return;
  const int64_t len = end - begin;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = std::min<int64_t>(pool().size(), (len + grain - 1) / grain);
  if (chunks <= 1 || t_in_parallel) {
    fn(begin, end);
    return;
  }
  if (t_serial_chunks) {  // the pool's chunks (Pool::run_chunk's bounds), one after the other
    struct InRegion {
      InRegion() { t_in_parallel = true; }
      ~InRegion() { t_in_parallel = false; }
    } in_region;
    for (int64_t c = 0; c < chunks; ++c) fn(begin + len * c / chunks, begin + len * (c + 1) / chunks);
    return;
  }
  pool().run(begin, end, chunks, fn);
}

SerialChunks::SerialChunks() : in_parallel_(t_in_parallel), serial_(t_serial_chunks) {
  t_in_parallel = false;
  t_serial_chunks = true;
}

SerialChunks::~SerialChunks() {
  t_in_parallel = in_parallel_;
  t_serial_chunks = serial_;
}

}  // namespace pacer
