// Pinned host blocks, cached by exact (rounded) size. A block returns to the cache when its
// tensor dies, but is handed out again only after the copies recorded on it have finished,
// because an asynchronous copy may still be reading or writing it.
#include "core/cuda/pinned.h"

#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/cuda/check.h"
#include "core/cuda/runtime.h"
#include "core/cuda/stream.h"

namespace pacer::cuda {

namespace {

struct PinnedBlock {
  void* ptr = nullptr;
  size_t size = 0;
  std::vector<cudaEvent_t> uses;
};

class PinnedPool {
 public:
  void* allocate(size_t nbytes) {
    const size_t size = std::max<size_t>(512, (nbytes + 511) / 512 * 512);
    std::lock_guard<std::mutex> lock(m_);
    for (auto it = free_.lower_bound(size); it != free_.end() && it->first == size; ++it) {
      PinnedBlock* b = it->second;
      if (!uses_done(b)) continue;
      free_.erase(it);
      live_[b->ptr] = b;
      return b->ptr;
    }
    void* p = nullptr;
    PACER_CUDA_CHECK(cudaHostAlloc(&p, size, cudaHostAllocDefault));
    auto* b = new PinnedBlock{p, size, {}};
    live_[p] = b;
    all_[p] = b;
    return p;
  }

  void release(void* p) {
    std::lock_guard<std::mutex> lock(m_);
    auto it = live_.find(p);
    if (it == live_.end()) return;
    free_.emplace(it->second->size, it->second);
    live_.erase(it);
  }

  // Called with the stream's device current (the event must live on the stream's device).
  void record(const void* p, cudaStream_t s) {
    std::lock_guard<std::mutex> lock(m_);
    PinnedBlock* b = find(p);
    if (!b) return;
    // Drop the events of finished uses, so a long-lived pinned buffer copied every step does
    // not pile up events.
    for (auto it = b->uses.begin(); it != b->uses.end();) {
      if (cudaEventQuery(*it) == cudaErrorNotReady) {
        (void)cudaGetLastError();
        ++it;
      } else {
        (void)cudaGetLastError();
        (void)cudaEventDestroy(*it);
        it = b->uses.erase(it);
      }
    }
    cudaEvent_t e = nullptr;
    PACER_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    const cudaError_t st = cudaEventRecord(e, s);
    if (st != cudaSuccess) {
      (void)cudaEventDestroy(e);
      PACER_CUDA_CHECK(st);
    }
    b->uses.push_back(e);
  }

  bool contains(const void* p) {
    std::lock_guard<std::mutex> lock(m_);
    return find(p) != nullptr;
  }

 private:
  // The block whose bytes hold p (p may point inside a block, e.g. a view's data).
  PinnedBlock* find(const void* p) {
    auto it = all_.upper_bound(const_cast<void*>(p));
    if (it == all_.begin()) return nullptr;
    --it;
    PinnedBlock* b = it->second;
    const char* base = static_cast<const char*>(b->ptr);
    return static_cast<const char*>(p) < base + b->size ? b : nullptr;
  }

  static bool uses_done(PinnedBlock* b) {
    for (cudaEvent_t e : b->uses) {
      if (cudaEventQuery(e) == cudaErrorNotReady) {
        (void)cudaGetLastError();
        return false;
      }
    }
    for (cudaEvent_t e : b->uses) (void)cudaEventDestroy(e);
    b->uses.clear();
    return true;
  }

  std::mutex m_;
  std::multimap<size_t, PinnedBlock*> free_;
  std::unordered_map<void*, PinnedBlock*> live_;
  std::map<void*, PinnedBlock*> all_;
};

PinnedPool& pinned_pool() {
  static auto* p = new PinnedPool;  // never destroyed: tensors may die during static teardown
  return *p;
}

}  // namespace

Tensor pinned_empty(const Shape& sizes, DType dtype) {
  PACER_CHECK(device_count() > 0, "pinned memory needs a CUDA device, and none is visible");
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  const size_t nbytes = size_t(n) * element_size(dtype);
  void* p = nbytes ? pinned_pool().allocate(nbytes) : nullptr;
  return from_blob(p, sizes, dtype, [](void* q) {
    if (q) pinned_pool().release(q);
  });
}

Tensor pin_memory(const Tensor& t) {
  PACER_CHECK(t.is_cpu(), "pin_memory: expected a CPU tensor, got one on {}", t.device());
  PACER_CHECK(t.is_contiguous(), "pin_memory: expected a contiguous tensor (call contiguous() first)");
  Tensor out = pinned_empty(t.sizes(), t.dtype());
  if (out.nbytes()) std::memcpy(out.data(), t.data(), out.nbytes());
  return out;
}

bool is_pinned(const void* ptr) { return ptr && pinned_pool().contains(ptr); }

void record_pinned_use(const void* ptr, const Stream& stream) {
  DeviceGuard g(stream.device());
  pinned_pool().record(ptr, static_cast<cudaStream_t>(stream.handle()));
}

}  // namespace pacer::cuda
