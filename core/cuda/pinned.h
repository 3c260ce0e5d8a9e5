#pragma once
/// Pinned (page-locked) host memory: host<->device copies from it run asynchronously and at
/// full PCIe / NVLink-C2C speed. Blocks are cached like device blocks; a block is reused
/// only once the copies queued on it (recorded with events) are done.

#include "core/cuda/stream.h"
#include "core/tensor.h"

namespace pacer::cuda {

/// A CPU tensor whose bytes are pinned.
Tensor pinned_empty(const Shape& sizes, DType dtype);
/// A pinned copy of CPU tensor `t` (contiguous).
Tensor pin_memory(const Tensor& t);
/// True when `ptr` lies in memory this allocator pinned.
bool is_pinned(const void* ptr);
/// Records that a copy queued on `stream` reads or writes pinned `ptr`: the block is not
/// reused until it finishes.
void record_pinned_use(const void* ptr, const Stream& stream);

}  // namespace pacer::cuda
