// The stream-aware caching allocator. Sizes are rounded (512 B below 1 MiB, 2 MiB above) so
// that repeated training steps hit the same size classes; a cached block serves a request
// when it was allocated on the same stream and is at most 1/8 larger than needed (blocks
// are not split: simple, and enough for steps whose shapes repeat).
#include "core/cuda/caching_allocator.h"

#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "core/allocator.h"
#include "core/cuda/check.h"
#include "core/cuda/runtime.h"

namespace pacer::cuda {

namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;
constexpr int kMaxDevices = 64;

size_t round_size(size_t n) {
  if (n <= kSmallLimit) return (n + kSmallRound - 1) / kSmallRound * kSmallRound;
  return (n + kLargeRound - 1) / kLargeRound * kLargeRound;
}

std::string human(size_t bytes) {
  if (bytes >= (size_t(1) << 30)) return fmt::format("{:.2f} GiB", double(bytes) / double(size_t(1) << 30));
  if (bytes >= (size_t(1) << 20)) return fmt::format("{:.2f} MiB", double(bytes) / double(size_t(1) << 20));
  return fmt::format("{} bytes", bytes);
}

struct Block {
  void* ptr = nullptr;
  size_t size = 0;
  cudaStream_t stream = nullptr;        // the allocating stream; reuse is limited to it
  std::vector<cudaStream_t> used_on;    // other streams announced by record_stream
  std::vector<cudaEvent_t> pending;     // recorded at free on `used_on`; reuse waits for them
};

struct BlockOrder {
  bool operator()(const Block* a, const Block* b) const {
    if (a->stream != b->stream) return std::less<cudaStream_t>()(a->stream, b->stream);
    if (a->size != b->size) return a->size < b->size;
    return std::less<void*>()(a->ptr, b->ptr);
  }
};

// Makes `device` current for a scope without ever throwing (deallocate runs in destructors,
// possibly during static teardown after the CUDA runtime has shut down).
class QuietDeviceGuard {
 public:
  explicit QuietDeviceGuard(int device) {
    int cur = -1;
    if (cudaGetDevice(&cur) == cudaSuccess && cur != device && cudaSetDevice(device) == cudaSuccess) previous_ = cur;
    (void)cudaGetLastError();
  }
  ~QuietDeviceGuard() {
    if (previous_ >= 0) (void)cudaSetDevice(previous_);
  }
  QuietDeviceGuard(const QuietDeviceGuard&) = delete;
  QuietDeviceGuard& operator=(const QuietDeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

bool env_debug() {
  const char* v = std::getenv("PACER_CUDA_ALLOC_DEBUG");
  return v && *v && std::strcmp(v, "0") != 0;
}

class DevicePool final : public Allocator {
 public:
  explicit DevicePool(int device) : device_(device) {}

  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    DeviceGuard g(device_);
    const cudaStream_t stream = static_cast<cudaStream_t>(current_stream(device_).handle());
    const size_t size = round_size(nbytes);
    std::lock_guard<std::mutex> lock(m_);
    ++stats_.num_allocs;
    reclaim_pending();
    Block* b = nullptr;
    if (!caching_disabled()) {
      Block key{nullptr, size, stream, {}, {}};
      auto it = free_.lower_bound(&key);
      if (it != free_.end() && (*it)->stream == stream && (*it)->size <= size + size / 8) {
        b = *it;
        free_.erase(it);
      }
    }
    if (!b) b = malloc_block(size, stream);
    live_.emplace(b->ptr, b);
    stats_.allocated += b->size;
    if (stats_.allocated > stats_.peak_allocated) stats_.peak_allocated = stats_.allocated;
    return b->ptr;
  }

  void deallocate(void* p, size_t) override {
    if (!p) return;
    std::lock_guard<std::mutex> lock(m_);
    auto it = live_.find(p);
    if (it == live_.end()) return;  // not ours: nothing sensible to do in a destructor path
    Block* b = it->second;
    live_.erase(it);
    stats_.allocated -= b->size;
    if (caching_disabled()) {
      QuietDeviceGuard g(device_);
      release(b);
      return;
    }
    if (!b->used_on.empty()) {
      // Other streams may still read the block: remember where their work ends.
      QuietDeviceGuard g(device_);
      for (cudaStream_t s : b->used_on) {
        cudaEvent_t e = nullptr;
        if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) == cudaSuccess && cudaEventRecord(e, s) == cudaSuccess) {
          b->pending.push_back(e);
        } else {
          (void)cudaGetLastError();
          (void)cudaDeviceSynchronize();  // cannot track it: wait for everything instead
        }
      }
      b->used_on.clear();
      if (!b->pending.empty()) {
        pending_.push_back(b);
        return;
      }
    }
    free_.insert(b);
  }

  void record_stream(const void* p, cudaStream_t s) {
    std::lock_guard<std::mutex> lock(m_);
    Block* b = nullptr;
    auto it = live_.find(const_cast<void*>(p));
    if (it != live_.end()) {
      b = it->second;
    } else {
      // A view's data pointer lies inside its block: find the block that holds it.
      const char* q = static_cast<const char*>(p);
      for (const auto& [base, blk] : live_) {
        const char* lo = static_cast<const char*>(base);
        if (q >= lo && q < lo + blk->size) {
          b = blk;
          break;
        }
      }
    }
    PACER_CHECK(b != nullptr, "record_stream: {} is not in a live block of the cuda:{} allocator", p, device_);
    if (s == b->stream) return;
    for (cudaStream_t u : b->used_on)
      if (u == s) return;
    b->used_on.push_back(s);
  }

  void retain(cudaStream_t s, bool on) {
    std::lock_guard<std::mutex> lock(m_);
    if (on) {
      retained_.insert(s);
    } else if (auto it = retained_.find(s); it != retained_.end()) {
      retained_.erase(it);
    }
  }

  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(m_);
    return stats_;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(m_);
    stats_.peak_allocated = stats_.allocated;
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(m_);
    DeviceGuard g(device_);
    release_free_blocks();
  }

 private:
  Block* malloc_block(size_t size, cudaStream_t stream) {
    void* ptr = nullptr;
    cudaError_t st = cudaMalloc(&ptr, size);
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    if (st == cudaErrorMemoryAllocation && (cudaStreamIsCapturing(stream, &capturing) != cudaSuccess ||
                                            capturing != cudaStreamCaptureStatusNone)) {
      // Being captured into a CUDA graph: waiting on other streams and freeing blocks is not
      // allowed now. Fail: the capture is dropped and the step runs without the graph.
      (void)cudaGetLastError();
    } else if (st == cudaErrorMemoryAllocation) {
      // Out of memory: wait for the cross-stream uses of freed blocks, give the whole cache
      // back to the driver and try once more.
      (void)cudaGetLastError();
      for (Block* p : pending_)
        for (cudaEvent_t e : p->pending) (void)cudaEventSynchronize(e);
      (void)cudaGetLastError();
      reclaim_pending();
      release_free_blocks();
      st = cudaMalloc(&ptr, size);
    }
    if (st != cudaSuccess) {
      (void)cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      (void)cudaMemGetInfo(&free_b, &total_b);
      (void)cudaGetLastError();
      PACER_FAIL("CUDA out of memory on cuda:{}: tried to allocate {}; Pacer holds {} in tensors and {} reserved; the "
                 "device has {} free of {} ({})",
                 device_, human(size), human(stats_.allocated), human(stats_.reserved), human(free_b), human(total_b),
                 cudaGetErrorString(st));
    }
    ++stats_.num_cuda_mallocs;
    stats_.reserved += size;
    return new Block{ptr, size, stream, {}, {}};
  }

  void release(Block* b) {
    for (cudaEvent_t e : b->pending) (void)cudaEventDestroy(e);
    (void)cudaFree(b->ptr);  // frees are best effort: a failing free must not throw mid-teardown
    (void)cudaGetLastError();
    stats_.reserved -= b->size;
    delete b;
  }

  void release_free_blocks() {
    for (auto it = free_.begin(); it != free_.end();) {
      if (retained_.count((*it)->stream)) {
        ++it;
        continue;
      }
      release(*it);
      it = free_.erase(it);
    }
  }

  // Blocks whose cross-stream uses have finished become reusable.
  void reclaim_pending() {
    for (auto it = pending_.begin(); it != pending_.end();) {
      Block* b = *it;
      bool done = true;
      for (cudaEvent_t e : b->pending) {
        cudaError_t st = cudaEventQuery(e);
        if (st == cudaErrorNotReady) {
          (void)cudaGetLastError();
          done = false;
          break;
        }
      }
      if (!done) {
        ++it;
        continue;
      }
      for (cudaEvent_t e : b->pending) (void)cudaEventDestroy(e);
      b->pending.clear();
      free_.insert(b);
      it = pending_.erase(it);
    }
  }

  const int device_;
  std::mutex m_;
  std::set<Block*, BlockOrder> free_;
  std::unordered_map<void*, Block*> live_;
  std::deque<Block*> pending_;
  std::multiset<cudaStream_t> retained_;  // streams whose free blocks a CUDA graph addresses
  MemoryStats stats_;
};

DevicePool* pool(int index) {
  // Pools live for the whole process (never destroyed): tensors freed during static
  // destruction must still find their pool.
  static std::once_flag once;
  static DevicePool* pools[kMaxDevices] = {};
  std::call_once(once, [] {
    const int n = device_count();
    for (int i = 0; i < n && i < kMaxDevices; ++i) pools[i] = new DevicePool(i);
  });
  check_device(index);
  return pools[index];
}

Allocator* cuda_allocator(int index) { return pool(index); }

// Announces the CUDA allocator to core when this library loads.
const bool g_registered = [] {
  register_allocator(DeviceType::CUDA, &cuda_allocator);
  return true;
}();

}  // namespace

bool caching_disabled() {
  static const bool off = env_debug();
  return off;
}

MemoryStats memory_stats(int index) { return pool(index < 0 ? current_device() : index)->stats(); }
void reset_peak_memory_stats(int index) { pool(index < 0 ? current_device() : index)->reset_peak(); }

void empty_cache() {
  for (int i = 0; i < device_count(); ++i) pool(i)->empty_cache();
}

void record_stream(const void* ptr, const Stream& stream) {
  pool(stream.device())->record_stream(ptr, static_cast<cudaStream_t>(stream.handle()));
}

void retain_stream_blocks(const Stream& stream) {
  pool(stream.device())->retain(static_cast<cudaStream_t>(stream.handle()), true);
}
void release_stream_blocks(const Stream& stream) {
  pool(stream.device())->retain(static_cast<cudaStream_t>(stream.handle()), false);
}

void* raw_alloc(size_t nbytes) { return pool(current_device())->allocate(nbytes); }

void raw_free(void* ptr) {
  if (ptr) pool(current_device())->deallocate(ptr, 0);
}

}  // namespace pacer::cuda
