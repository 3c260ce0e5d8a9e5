#include "core/allocator.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

namespace pacer {

namespace {

std::atomic<size_t> g_allocated{0};
std::atomic<size_t> g_peak{0};

void note_allocated(size_t nbytes) {
  const size_t now = g_allocated.fetch_add(nbytes, std::memory_order_relaxed) + nbytes;
  size_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

// Large blocks are cached and reused: glibc returns them to the OS (munmap) on free, and
// every fresh mmap costs a page fault per 4 KiB on first touch, which would make a 64 MiB
// elementwise op several times slower than the memory allows. Small blocks go to malloc.
class CpuAllocator final : public Allocator {
 public:
  ~CpuAllocator() override {
    for (auto& [size, p] : cache_) std::free(p);
  }

  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    void* p = take(nbytes);
    note_allocated(nbytes);
    return p;
  }

  void deallocate(void* p, size_t nbytes) override {
    if (p == nullptr) return;
    g_allocated.fetch_sub(nbytes, std::memory_order_relaxed);
    give_back(p, nbytes);
  }

 private:
  void* take(size_t nbytes) {
    const size_t rounded = round(nbytes);
    if (rounded >= kCacheFrom) {
      std::lock_guard<std::mutex> g(m_);
      // Best fit, wasting at most 1/8: a network's many slightly different sizes (im2col
      // buffers, activations) then share blocks instead of each faulting in fresh pages.
      auto it = cache_.lower_bound(rounded);
      if (it != cache_.end() && it->first <= rounded + rounded / 8) {
        void* p = it->second;
        const size_t size = it->first;
        cache_.erase(it);
        cached_bytes_ -= size;
        if (size != rounded) oversized_[p] = size;
        return p;
      }
    }
    void* p = std::aligned_alloc(kCpuAlignment, rounded);
    if (!p && rounded >= kCacheFrom) {  // give the cache back to the system and retry
      release_cache();
      p = std::aligned_alloc(kCpuAlignment, rounded);
    }
    PACER_CHECK(p != nullptr, "CPU allocator: out of memory allocating {} bytes", nbytes);
    return p;
  }

  void give_back(void* p, size_t nbytes) {
    size_t rounded = round(nbytes);
    if (rounded >= kCacheFrom) {
      std::lock_guard<std::mutex> g(m_);
      if (auto o = oversized_.find(p); o != oversized_.end()) {  // a larger cached block
        rounded = o->second;
        oversized_.erase(o);
      }
      if (cached_bytes_ + rounded <= kCacheLimit) {
        cache_.emplace(rounded, p);
        cached_bytes_ += rounded;
        return;
      }
    }
    std::free(p);
  }

  static constexpr size_t kCacheFrom = size_t(1) << 16;     // 64 KiB (glibc mmaps from 128 KiB)
  static constexpr size_t kCacheLimit = size_t(1) << 31;    // 2 GiB kept at most
  static size_t round(size_t n) {
    // Buckets: 4 KiB up to 1 MiB, 64 KiB above; training loops, whose shapes repeat every
    // step, then find their sizes again.
    const size_t unit = n >= (size_t(1) << 20) ? (size_t(1) << 16) : (n >= kCacheFrom ? 4096 : kCpuAlignment);
    return (n + unit - 1) / unit * unit;
  }
  void release_cache() {
    std::lock_guard<std::mutex> g(m_);
    for (auto& [size, p] : cache_) std::free(p);
    cache_.clear();
    cached_bytes_ = 0;
  }

  std::mutex m_;
  std::multimap<size_t, void*> cache_;
  std::unordered_map<void*, size_t> oversized_;  // handed-out blocks larger than their request
  size_t cached_bytes_ = 0;
};

Allocator* (*g_device_allocators[kNumDeviceTypes])(int) = {nullptr, nullptr};

}  // namespace

Allocator* cpu_allocator() {
  static CpuAllocator a;
  return &a;
}

MemoryStats cpu_memory_stats() {
  return {g_allocated.load(std::memory_order_relaxed), g_peak.load(std::memory_order_relaxed)};
}

void reset_cpu_peak_memory() { g_peak.store(g_allocated.load(std::memory_order_relaxed), std::memory_order_relaxed); }

Allocator* allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
  auto get = g_device_allocators[int(device.type)];
  PACER_CHECK(get != nullptr,
              "{} was asked for, but this Pacer was built without its CUDA backend (or pacer_core_cuda is not "
              "loaded); use the 'cpu' device",
              device);
  return get(device.index);
}

void register_allocator(DeviceType type, Allocator* (*get)(int)) {
  g_device_allocators[int(type)] = get;
}

}  // namespace pacer
