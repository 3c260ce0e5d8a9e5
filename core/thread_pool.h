#pragma once
/// The one owner of CPU parallelism (DESIGN §2). Its size comes from PACER_NUM_THREADS
/// (default: the number of cores). BLAS runs single-threaded inside it: the ops layer
/// splits large GEMMs across the pool.
/// parallel_for never nests: inside a parallel region it runs inline.

#include <cstdint>
#include <functional>

namespace pacer {

/// Number of threads parallel_for uses (the caller counts as one).
int num_threads();
/// Resizes the pool; 1 makes everything serial. Not callable from inside a parallel region.
void set_num_threads(int n);
/// True while the calling thread is executing a parallel_for chunk.
bool in_parallel_region();

/// Calls fn(begin, end) over disjoint chunks covering [begin, end), in parallel: at most
/// num_threads() chunks of near-equal length, and no more than ceil(len / grain) of them
/// (so a range shorter than `grain` runs in one call on the caller). Exceptions thrown by
/// chunks are rethrown to the caller.
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

/// While it lives, the calling thread's parallel_for calls run the chunks the pool would make,
/// one after the other on this thread (inside them in_parallel_region() is true, as on the
/// pool). Work split by chunks then gives the same results as on the pool, bit for bit: the
/// graph executor runs two independent nodes at once this way, one per thread
/// (ops/graph/executor.h).
class SerialChunks {
 public:
  SerialChunks();
  ~SerialChunks();
  SerialChunks(const SerialChunks&) = delete;
  SerialChunks& operator=(const SerialChunks&) = delete;

 private:
  bool in_parallel_, serial_;
};

}  // namespace pacer
