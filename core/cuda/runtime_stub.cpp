// The CUDA API of a build without the CUDA backend: no devices, and every request for one is
// answered with an error that says so. Code written against pacer::cuda links either way.
#include "core/cuda/caching_allocator.h"
#include "core/cuda/graph.h"
#include "core/cuda/handles.h"
#include "core/cuda/pinned.h"
#include "core/cuda/runtime.h"
#include "core/cuda/stream.h"
#include "core/error.h"

namespace pacer::cuda {

namespace {
[[noreturn]] void not_built(int index = 0) {
  PACER_FAIL("cuda:{} was asked for, but this Pacer was built without its CUDA backend (no nvcc at configure time, "
             "or PACER_CUDA=OFF); use the 'cpu' device",
             index);
}
}  // namespace

bool is_built() { return false; }
int device_count() { return 0; }
void check_device(int index) { not_built(index); }
int current_device() { return 0; }
void set_device(int index) { not_built(index); }
void synchronize(int index) { not_built(index < 0 ? 0 : index); }
DeviceProperties device_properties(int index) { not_built(index); }
DeviceGuard::DeviceGuard(int index) { not_built(index); }
DeviceGuard::~DeviceGuard() = default;

Stream Stream::create(int device, int) { not_built(device); }
void Stream::synchronize() const { not_built(device_); }
bool Stream::query() const { not_built(device_); }
Stream current_stream(int device) { not_built(device < 0 ? 0 : device); }
void set_current_stream(const Stream& s) { not_built(s.device()); }
StreamGuard::StreamGuard(const Stream& s) { not_built(s.device()); }
StreamGuard::~StreamGuard() = default;
Event::Event(bool timing) : timing_(timing) {}
Event::~Event() = default;
Event::Event(Event&& o) noexcept : handle_(o.handle_), device_(o.device_), timing_(o.timing_) {}
Event& Event::operator=(Event&&) noexcept { return *this; }
void Event::record(const Stream& s) { not_built(s.device()); }
void Event::wait(const Stream& s) const { not_built(s.device()); }
void Event::synchronize() const { not_built(); }
bool Event::query() const { not_built(); }
float Event::elapsed_ms(const Event&) const { not_built(); }
void Event::create_if_needed(int device) { not_built(device); }

MemoryStats memory_stats(int index) { not_built(index < 0 ? 0 : index); }
void reset_peak_memory_stats(int index) { not_built(index < 0 ? 0 : index); }
void empty_cache() {}
void record_stream(const void*, const Stream& s) { not_built(s.device()); }
bool caching_disabled() { return false; }
void* raw_alloc(size_t) { not_built(); }
void raw_free(void*) {}

Tensor pinned_empty(const Shape&, DType) { not_built(); }
Tensor pin_memory(const Tensor&) { not_built(); }
bool is_pinned(const void*) { return false; }
void record_pinned_use(const void*, const Stream& s) { not_built(s.device()); }

void* cublas_handle() { not_built(); }
void* cublaslt_handle() { not_built(); }
void* cudnn_handle() { not_built(); }
bool allow_tf32() { return false; }
void set_allow_tf32(bool) {}
void* workspace(size_t) { not_built(); }

struct CudaGraph::Impl {};
CudaGraph::CudaGraph() = default;
CudaGraph::~CudaGraph() = default;
void CudaGraph::begin_capture(const Stream& s) { not_built(s.device()); }
std::string CudaGraph::end_capture() { return "this Pacer was built without its CUDA backend"; }
bool CudaGraph::ready() const { return false; }
void CudaGraph::launch(const Stream& s) { not_built(s.device()); }
int64_t CudaGraph::nodes() const { return 0; }
bool is_capturing(const Stream&) { return false; }
void keep_alive_while_captured(std::shared_ptr<const void>) {}
void retain_stream_blocks(const Stream&) {}
void release_stream_blocks(const Stream&) {}

}  // namespace pacer::cuda
