#include "core/allocator.h"

#include <cstdlib>
#include <new>

namespace pacer {

namespace {

class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
    void* p = std::aligned_alloc(kCpuAlignment, rounded);
    PACER_CHECK(p != nullptr, "CPU allocator: out of memory allocating {} bytes", nbytes);
    return p;
  }
  void deallocate(void* p, size_t) override { std::free(p); }
};

Allocator* (*g_device_allocators[kNumDeviceTypes])(int) = {nullptr, nullptr};

}  // namespace

Allocator* cpu_allocator() {
  static CpuAllocator a;
  return &a;
}

Allocator* allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
  auto get = g_device_allocators[int(device.type)];
  PACER_CHECK(get != nullptr,
              "device {}: expected a CUDA device, but this Pacer has no usable CUDA backend "
              "(built without CUDA or no GPU visible); use the 'cpu' device",
              device);
  return get(device.index);
}

void register_allocator(DeviceType type, Allocator* (*get)(int)) {
  g_device_allocators[int(type)] = get;
}

}  // namespace pacer
