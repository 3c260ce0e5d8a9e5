// to_device: copies between host and GPU, and between GPUs. The bytes move contiguous, in
// the source's dtype; a strided source is made contiguous on its own device first, so one
// DMA moves the whole tensor.
#include <cuda_runtime.h>

#include "core/cuda/check.h"
#include "core/cuda/pinned.h"
#include "core/cuda/runtime.h"
#include "core/cuda/stream.h"
#include "ops/api.h"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

cudaStream_t stream_of(int device) {
  return static_cast<cudaStream_t>(pacer::cuda::current_stream(device).handle());
}

void to_device_kernel(OpCall& c) {
  const Tensor src = contiguous(c.in(0));
  Tensor& dst = c.out(0);  // contiguous, allocated on the target by the dispatcher
  const size_t nbytes = dst.nbytes();
  if (nbytes == 0) return;
  const Device from = src.device(), to = dst.device();
  if (from.is_cpu()) {
    // Host to device. From pageable memory the call returns once the bytes are staged, so
    // the source may die right after; from pinned memory the copy is truly asynchronous and
    // the pinned block is kept from reuse until it completes.
    pacer::cuda::DeviceGuard g(to.index);
    const cudaStream_t s = stream_of(to.index);
    PACER_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), nbytes, cudaMemcpyHostToDevice, s));
    if (pacer::cuda::is_pinned(src.data())) pacer::cuda::record_pinned_use(src.data(), pacer::cuda::current_stream(to.index));
  } else if (to.is_cpu()) {
    // Device to host: the caller reads the CPU tensor right away, so wait for the copy.
    pacer::cuda::DeviceGuard g(from.index);
    const cudaStream_t s = stream_of(from.index);
    PACER_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), nbytes, cudaMemcpyDeviceToHost, s));
    PACER_CUDA_CHECK(cudaStreamSynchronize(s));
  } else {
    // Between GPUs: queued on the source's stream, after the work that produced it; the
    // destination's stream waits for the copy through an event. The destination block comes
    // from the target's cache, where work queued on the target's stream may still use it:
    // the copy waits for that stream first.
    pacer::cuda::Event dst_free;
    dst_free.record(pacer::cuda::current_stream(to.index));
    dst_free.wait(pacer::cuda::current_stream(from.index));
    pacer::cuda::DeviceGuard g(from.index);
    const cudaStream_t s = stream_of(from.index);
    PACER_CUDA_CHECK(cudaMemcpyPeerAsync(dst.data(), to.index, src.data(), from.index, nbytes, s));
    pacer::cuda::Event done;
    done.record(pacer::cuda::current_stream(from.index));
    done.wait(pacer::cuda::current_stream(to.index));
  }
}

}  // namespace

PACER_KERNEL(to_device, CUDA, to_device_kernel);

}  // namespace pacer::ops::cuda
