#pragma once
/// Scratch memory of one kernel call: buffers a kernel is done with before it returns (im2col
/// columns, Winograd transforms, per-thread partial sums). Eagerly they come from the
/// allocator like any tensor. Under a ScratchRegion (the graph executor installs one around
/// each node it planned workspace for, ops/graph/executor.h) they are carved from that
/// region: a range of the executor's arena that no live tensor holds while the node runs,
/// so a kernel's scratch adds nothing to the step's peak memory.

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/storage.h"
#include "core/tensor.h"

namespace pacer {

/// A contiguous CPU tensor of `sizes` and `dtype` (uninitialized), for the current kernel
/// call only: it must not be kept or returned, since its memory may go to another node next.
Tensor scratch_empty(const Shape& sizes, DType dtype);

/// Process-wide counts of scratch_empty requests made under a region: served from its arena,
/// or by the allocator because the region was too small (tests check which).
struct ScratchCounts {
  int64_t from_region = 0, overflowed = 0;
};
ScratchCounts scratch_counts();

/// Serves scratch_empty on the calling thread, and in the parallel_for chunks it starts,
/// from bytes [offset, offset + capacity) of `arena` while it lives (a bump allocator: a
/// request is rounded up to 64 bytes; memory comes back only when the region goes). A
/// request past the capacity, or any with no arena, is served by the allocator instead and
/// counted. Regions nest: the innermost serves.
class ScratchRegion {
 public:
  ScratchRegion(Storage arena, size_t offset, size_t capacity);
  /// Serves nothing from an arena, only counts: how large a region the calls under it need.
  ScratchRegion() : ScratchRegion(Storage(), 0, 0) {}
  ~ScratchRegion();
  ScratchRegion(const ScratchRegion&) = delete;
  ScratchRegion& operator=(const ScratchRegion&) = delete;

  /// Bytes requested under this region so far: the capacity that serves them all.
  size_t requested() const { return used_.load(); }
  /// Requests the allocator served because the region had no room.
  int64_t overflows() const { return overflows_.load(); }

  /// The calling thread's innermost region (null when none); parallel_for hands it to its chunks.
  static ScratchRegion* current();
  static void set_current(ScratchRegion* r);

 private:
  friend Tensor scratch_empty(const Shape& sizes, DType dtype);
  Storage arena_;
  char* base_ = nullptr;
  size_t capacity_ = 0;
  std::atomic<size_t> used_{0};
  std::atomic<int64_t> overflows_{0};
  ScratchRegion* outer_ = nullptr;
};

}  // namespace pacer
