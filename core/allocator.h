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

/// The allocator for `device`; throws a clear error for a device this build cannot serve.
Allocator* allocator_for(Device device);

/// Registered by the CUDA backend when it is built and a device is present.
void register_allocator(DeviceType type, Allocator* (*get)(int index));

}  // namespace pacer
