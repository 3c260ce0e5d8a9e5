#include "ops/cuda/bad_index.h"

#include <cuda_runtime.h>

#include "core/cuda/check.h"
#include "core/cuda/graph.h"
#include "core/cuda/stream.h"
#include "ops/api.h"

namespace pacer::ops::cuda {

namespace {

constexpr unsigned long long kNone = 0x7f7f7f7f7f7f7f7fULL;  // the memset pattern below

cudaStream_t current() { return static_cast<cudaStream_t>(pacer::cuda::current_stream().handle()); }

}  // namespace

BadIndexSlot::BadIndexSlot(Device device) : slot_(empty({1}, {.dtype = DType::I64, .device = device})) {
  PACER_CUDA_CHECK(cudaMemsetAsync(slot_.data(), 0x7f, sizeof(unsigned long long), current()));
}

int64_t BadIndexSlot::first() const {
  if (pacer::cuda::is_capturing(pacer::cuda::current_stream())) return -1;
  unsigned long long first = kNone;
  const cudaStream_t s = current();
  PACER_CUDA_CHECK(cudaMemcpyAsync(&first, slot_.data(), sizeof(first), cudaMemcpyDeviceToHost, s));
  PACER_CUDA_CHECK(cudaStreamSynchronize(s));
  return first == kNone ? -1 : int64_t(first);
}

int64_t BadIndexSlot::value_at(const Tensor& index, int64_t at) {
  const bool wide = index.dtype() == DType::I64;
  int64_t k64 = 0;
  int32_t k32 = 0;
  const char* p = static_cast<const char*>(index.data()) + at * int64_t(wide ? sizeof(k64) : sizeof(k32));
  const cudaStream_t s = current();
  PACER_CUDA_CHECK(cudaMemcpyAsync(wide ? static_cast<void*>(&k64) : static_cast<void*>(&k32), p,
                                   wide ? sizeof(k64) : sizeof(k32), cudaMemcpyDeviceToHost, s));
  PACER_CUDA_CHECK(cudaStreamSynchronize(s));
  return wide ? k64 : int64_t(k32);
}

}  // namespace pacer::ops::cuda
