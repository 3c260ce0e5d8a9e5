#include "core/cuda/stream.h"

#include <array>

#include "core/cuda/check.h"
#include "core/cuda/runtime.h"

namespace pacer::cuda {

namespace {

constexpr int kMaxDevices = 64;

// Per thread, per device: the current stream. nullptr is CUDA's legacy default stream, which
// is also what a fresh thread starts with (as in PyTorch).
thread_local std::array<cudaStream_t, kMaxDevices> t_current{};

cudaStream_t raw(const Stream& s) { return static_cast<cudaStream_t>(s.handle()); }

}  // namespace

Stream Stream::create(int device, int priority) {
  DeviceGuard g(device);
  cudaStream_t s = nullptr;
  PACER_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority));
  return Stream(s, device);
}

void Stream::synchronize() const {
  DeviceGuard g(device_);
  PACER_CUDA_CHECK(cudaStreamSynchronize(raw(*this)));
}

bool Stream::query() const {
  DeviceGuard g(device_);
  cudaError_t st = cudaStreamQuery(raw(*this));
  if (st == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  PACER_CUDA_CHECK(st);
  return true;
}

Stream current_stream(int device) {
  if (device < 0) device = current_device();
  PACER_CHECK(device < kMaxDevices, "cuda:{}: Pacer supports at most {} devices", device, kMaxDevices);
  return Stream(t_current[size_t(device)], device);
}

void set_current_stream(const Stream& s) {
  PACER_CHECK(s.device() >= 0 && s.device() < kMaxDevices, "set_current_stream: bad device index {}", s.device());
  t_current[size_t(s.device())] = raw(s);
}

StreamGuard::StreamGuard(const Stream& s) : previous_(current_stream(s.device())) { set_current_stream(s); }
StreamGuard::~StreamGuard() { t_current[size_t(previous_.device())] = raw(previous_); }

Event::Event(bool timing) : timing_(timing) {}

Event::~Event() {
  if (handle_) (void)cudaEventDestroy(static_cast<cudaEvent_t>(handle_));  // no throw from destructors
}

Event::Event(Event&& o) noexcept : handle_(o.handle_), device_(o.device_), timing_(o.timing_) { o.handle_ = nullptr; }

Event& Event::operator=(Event&& o) noexcept {
  if (this != &o) {
    if (handle_) (void)cudaEventDestroy(static_cast<cudaEvent_t>(handle_));
    handle_ = o.handle_;
    device_ = o.device_;
    timing_ = o.timing_;
    o.handle_ = nullptr;
  }
  return *this;
}

void Event::create_if_needed(int device) {
  if (handle_) {
    PACER_CHECK(device == device_, "Event: recorded on cuda:{} before, now on cuda:{}; use one event per device",
                device_, device);
    return;
  }
  DeviceGuard g(device);
  cudaEvent_t e = nullptr;
  PACER_CUDA_CHECK(cudaEventCreateWithFlags(&e, timing_ ? cudaEventDefault : cudaEventDisableTiming));
  handle_ = e;
  device_ = device;
}

void Event::record(const Stream& s) {
  create_if_needed(s.device());
  DeviceGuard g(s.device());
  PACER_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(handle_), raw(s)));
}

void Event::wait(const Stream& s) const {
  if (!handle_) return;  // nothing recorded: nothing to wait for
  DeviceGuard g(s.device());
  PACER_CUDA_CHECK(cudaStreamWaitEvent(raw(s), static_cast<cudaEvent_t>(handle_), 0));
}

void Event::synchronize() const {
  if (handle_) PACER_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(handle_)));
}

bool Event::query() const {
  if (!handle_) return true;
  cudaError_t st = cudaEventQuery(static_cast<cudaEvent_t>(handle_));
  if (st == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  PACER_CUDA_CHECK(st);
  return true;
}

float Event::elapsed_ms(const Event& start) const {
  PACER_CHECK(handle_ && start.handle_, "Event::elapsed_ms: both events must be recorded first");
  PACER_CHECK(timing_ && start.timing_, "Event::elapsed_ms: both events must be created with timing=true");
  float ms = 0;
  PACER_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.handle_), static_cast<cudaEvent_t>(handle_)));
  return ms;
}

}  // namespace pacer::cuda
