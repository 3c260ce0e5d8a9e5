#pragma once
/// The CUDA runtime of core (DESIGN §2): device discovery and selection. No CUDA header is
/// included here; every function exists in every build: without the CUDA backend,
/// device_count() is 0 and the others throw a clear error.

#include <cstddef>
#include <cstdint>

namespace pacer::cuda {

/// True when this Pacer was built with its CUDA backend.
bool is_built();
/// Number of visible CUDA devices; 0 when there is no backend, no driver or no GPU (never throws).
int device_count();
/// device_count() > 0.
inline bool is_available() { return device_count() > 0; }

/// The calling thread's current device index.
int current_device();
/// Makes `index` the calling thread's current device; throws when it does not exist.
void set_device(int index);
/// Waits for all work on `index` (the current device when -1).
void synchronize(int index = -1);

/// Throws a clear error unless cuda:index can be used (built, visible, in range).
void check_device(int index);

/// The name and compute capability of a device.
struct DeviceProperties {
  char name[256];
  int major = 0, minor = 0;
  int multiprocessors = 0;
  size_t total_memory = 0;
};
DeviceProperties device_properties(int index);

/// Sets the current device for a scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace pacer::cuda
