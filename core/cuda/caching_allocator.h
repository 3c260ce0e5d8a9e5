#pragma once
/// The CUDA caching allocator (DESIGN §2). cudaMalloc and cudaFree synchronize the device
/// and cost tens of microseconds, so freed blocks are kept in per-device pools and reused.
///
/// Stream-aware: a block is tagged with the stream that allocated it and is reused only on
/// that stream, so work queued before the free cannot race with the next user. A block used
/// on another stream must be announced with record_stream(); its reuse then waits until
/// that stream's work recorded at free time is done (checked with events, never by a sync).
///
/// PACER_CUDA_ALLOC_DEBUG=1 turns caching off (every free is a cudaFree), so tools like
/// compute-sanitizer see each block's real lifetime.

#include <cstddef>
#include <cstdint>

#include "core/cuda/stream.h"

namespace pacer::cuda {

struct MemoryStats {
  size_t allocated = 0;       // bytes in blocks handed out now
  size_t reserved = 0;        // bytes held from cudaMalloc (in use + cached)
  size_t peak_allocated = 0;  // high-water mark of `allocated` since the last reset
  uint64_t num_allocs = 0;    // allocate() calls
  uint64_t num_cuda_mallocs = 0;  // of which reached cudaMalloc (cache misses)
};

/// Statistics of device `index`'s pool (the current device when -1).
MemoryStats memory_stats(int index = -1);
/// Restarts peak_allocated from the current allocated bytes.
void reset_peak_memory_stats(int index = -1);
/// Returns every cached, unused block to the driver (cudaFree).
void empty_cache();
/// Declares that the block holding `ptr` is used by work on `stream`; its reuse after free
/// waits for that work.
void record_stream(const void* ptr, const Stream& stream);
/// Keeps the cached blocks allocated on `stream` from going back to the driver (empty_cache,
/// the out-of-memory retry) until release_stream_blocks: a captured CUDA graph addresses
/// the blocks its capture allocated and freed on that stream. Calls nest.
void retain_stream_blocks(const Stream& stream);
void release_stream_blocks(const Stream& stream);
/// True when the allocator runs without its cache (PACER_CUDA_ALLOC_DEBUG=1).
bool caching_disabled();

/// Raw device memory from the pool of the current stream's device (for workspaces); the
/// returned pointer is released by `raw_free`.
void* raw_alloc(size_t nbytes);
void raw_free(void* ptr);

}  // namespace pacer::cuda
