#pragma once
/// CUDA streams and events without CUDA headers: handles are opaque pointers (a
/// cudaStream_t / cudaEvent_t underneath) so that public headers stay light (DESIGN §10).

#include <cstdint>

namespace pacer::cuda {

/// A stream on one device. The default-constructed Stream is the legacy default stream of
/// device 0; Streams made by Stream::create own their cudaStream_t and are never destroyed
/// (as in PyTorch, the allocator may still hold blocks recorded on them).
class Stream {
 public:
  Stream() = default;
  Stream(void* handle, int device) : handle_(handle), device_(device) {}
  /// A new non-blocking stream on `device` (priority: lower is more urgent; 0 = default).
  static Stream create(int device, int priority = 0);

  /// The cudaStream_t, as void*.
  void* handle() const { return handle_; }
  int device() const { return device_; }
  /// Blocks the host until all work queued on the stream is done.
  void synchronize() const;
  /// True when all work queued so far is done.
  bool query() const;

  friend bool operator==(const Stream& a, const Stream& b) {
    return a.handle_ == b.handle_ && a.device_ == b.device_;
  }

 private:
  void* handle_ = nullptr;
  int device_ = 0;
};

/// The calling thread's current stream on `device` (the current device when -1). Pacer's
/// kernels, copies and allocations queue on it.
Stream current_stream(int device = -1);
/// Makes `s` the calling thread's current stream on its device.
void set_current_stream(const Stream& s);

/// Makes a stream current for a scope.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& s);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream previous_;
};

/// A CUDA event: records a point in a stream; other streams or the host can wait for it.
class Event {
 public:
  /// `timing`: the event can measure elapsed time (slightly costlier to record).
  explicit Event(bool timing = false);
  ~Event();
  Event(Event&& o) noexcept;
  Event& operator=(Event&& o) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void record(const Stream& s);
  void record() { record(current_stream()); }
  /// Makes `s` wait (on the device, not the host) until the recorded work is done.
  void wait(const Stream& s) const;
  void synchronize() const;
  bool query() const;
  /// Milliseconds from `start` to this event; both recorded with timing on.
  float elapsed_ms(const Event& start) const;

 private:
  void create_if_needed(int device);
  void* handle_ = nullptr;
  int device_ = -1;
  bool timing_ = false;
};

}  // namespace pacer::cuda
