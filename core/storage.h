#pragma once
/// Storage: a ref-counted block of bytes on one device. Views of a tensor share it, and
/// with it the version counter that autograd uses to catch in-place edits of saved tensors.

#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/allocator.h"
#include "core/intrusive_ptr.h"

namespace pacer {

class StorageImpl final : public RefCounted {
 public:
  /// Owns `nbytes` fresh bytes from the device's allocator.
  StorageImpl(size_t nbytes, Device device);
  /// Borrows `data`; `deleter` (may be empty) runs when the last reference goes.
  StorageImpl(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter);
  ~StorageImpl() override;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  /// A number no other storage of this process has had: identifies the storage even after
  /// it is freed and its address reused (graph capture keys tensors by it).
  uint64_t serial() const { return serial_; }

  uint32_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
  std::function<void(void*)> deleter_;
  uint32_t version_ = 0;
  uint64_t serial_;
};

using Storage = IntrusivePtr<StorageImpl>;

}  // namespace pacer
