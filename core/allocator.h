#pragma once
/// Allocators hand out raw bytes for Storage. The CPU allocator aligns every block to
/// 64 bytes (a cache line, and the widest vector load) so kernels may use aligned loads.

#include <cstddef>

#include "core/device.h"

namespace pacer {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* p, size_t nbytes) = 0;
};

inline constexpr size_t kCpuAlignment = 64;

/// The process-wide CPU allocator.
Allocator* cpu_allocator();

/// Bytes the CPU allocator has handed out (as requested) and not taken back, and the most
/// at any moment since the last reset_cpu_peak_memory(): eager vs planned peak memory.
struct MemoryStats {
  size_t allocated = 0;
  size_t peak = 0;
};
MemoryStats cpu_memory_stats();
/// Starts a new peak measurement at the current allocation.
void reset_cpu_peak_memory();

/// The allocator for `device`; throws a clear error for a device this build cannot serve.
Allocator* allocator_for(Device device);

/// Registered by the CUDA backend when it is built and a device is present.
void register_allocator(DeviceType type, Allocator* (*get)(int index));

}  // namespace pacer
