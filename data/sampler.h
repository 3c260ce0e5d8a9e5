#pragma once
/// Deterministic shuffling: the order of epoch e depends only on (seed, epoch), so a run
/// that resumes at epoch e sees the same batches as one that never stopped.

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace pacer::data {

/// A permutation of [0, n) for (seed, epoch) (Fisher-Yates over a Philox stream).
std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed, uint64_t epoch);

/// Splits `order` into batches of `batch` indices (the last may be smaller unless
/// drop_last), each an i64 tensor ready for index_select.
std::vector<Tensor> make_batches(const std::vector<int64_t>& order, int64_t batch, bool drop_last = false);

}  // namespace pacer::data
