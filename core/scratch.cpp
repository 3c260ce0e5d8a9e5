#include "core/scratch.h"

#include "core/tensor_impl.h"

namespace pacer {

namespace {

thread_local ScratchRegion* t_region = nullptr;

constexpr size_t kScratchAlignment = 64;  // a cache line: per-thread buffers never share one

std::atomic<int64_t> g_from_region{0}, g_overflowed{0};

}  // namespace

ScratchRegion::ScratchRegion(Storage arena, size_t offset, size_t capacity)
    : arena_(std::move(arena)), capacity_(arena_ ? capacity : 0), outer_(t_region) {
  if (arena_) {
    PACER_CHECK(arena_->device().is_cpu() && offset + capacity <= arena_->nbytes(),
                "ScratchRegion: expected a range of a CPU arena, got [{}, {}) of {} bytes on {}", offset,
                offset + capacity, arena_->nbytes(), arena_->device());
    base_ = static_cast<char*>(arena_->data()) + offset;
  }
  t_region = this;
}

ScratchRegion::~ScratchRegion() { t_region = outer_; }

ScratchCounts scratch_counts() { return {g_from_region.load(), g_overflowed.load()}; }

ScratchRegion* ScratchRegion::current() { return t_region; }
void ScratchRegion::set_current(ScratchRegion* r) { t_region = r; }

Tensor scratch_empty(const Shape& sizes, DType dtype) {
  ScratchRegion* r = t_region;
  if (r == nullptr) return empty(sizes, {.dtype = dtype});
  const size_t bytes = size_t(shape_numel(sizes)) * element_size(dtype);
  const size_t rounded = (bytes + kScratchAlignment - 1) / kScratchAlignment * kScratchAlignment;
  const size_t at = r->used_.fetch_add(rounded);
  if (r->base_ == nullptr || at + rounded > r->capacity_) {
    if (r->base_ != nullptr) {
      r->overflows_.fetch_add(1);
      g_overflowed.fetch_add(1);
    }
    return empty(sizes, {.dtype = dtype});
  }
  g_from_region.fetch_add(1);
  // A storage of its own over the range (its own version counter), keeping the arena alive.
  auto storage = make_intrusive<StorageImpl>(r->base_ + at, bytes, Device(DeviceType::CPU), [keep = r->arena_](void*) {});
  return Tensor(make_intrusive<TensorImpl>(std::move(storage), dtype, sizes, contiguous_strides(sizes), 0));
}

}  // namespace pacer
