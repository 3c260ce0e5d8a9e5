#pragma once
/// Deterministic parallel sums into one tensor: the weight gradients of the CPU convolutions
/// (ops/cpu/conv.cpp, ops/cpu/conv_winograd.cpp) sum GEMMs over images or tiles.

#include <algorithm>
#include <cstring>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "core/scratch.h"
#include "core/thread_pool.h"
#include "ops/cpu/loops.h"

namespace pacer::ops::cpu {

/// parallel_for over [0, n) (grain 1), each chunk [b, e) summing into an accumulator of its
/// own: the first chunk into `into` itself (which the caller zeroes), the others into zeroed
/// scratch buffers (core/scratch.h) of its size, which are then added into `into` in chunk
/// order (the same result for the same thread count). `into` must be contiguous.
template <class T>
void sum_chunks_in_order(int64_t n, Tensor& into, const std::function<void(int64_t, int64_t, Tensor&)>& body) {
  std::mutex mutex;
  std::vector<std::pair<int64_t, Tensor>> partial;  // (first index, sums)
  parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
    if (b == 0) return body(b, e, into);
    Tensor acc = scratch_empty(into.sizes(), into.dtype());
    std::memset(acc.data(), 0, acc.nbytes());
    body(b, e, acc);
    const std::lock_guard<std::mutex> lock(mutex);
    partial.emplace_back(b, std::move(acc));
  });
  std::sort(partial.begin(), partial.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  T* out = static_cast<T*>(into.data());
  for (const auto& [first, acc] : partial) {
    const T* in = static_cast<const T*>(acc.data());
    for (int64_t i = 0; i < into.numel(); ++i) out[i] = store_cast<T>(compute_t<T>(out[i]) + compute_t<T>(in[i]));
  }
}

}  // namespace pacer::ops::cpu
