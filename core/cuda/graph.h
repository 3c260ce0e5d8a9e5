#pragma once
/// CUDA graphs without CUDA headers (DESIGN §5): the work a stream is given between
/// begin_capture() and end_capture() is recorded instead of run, and launch() replays all of
/// it with one call. What the recorded kernels address (pointers, sizes, scalar arguments)
/// is frozen: a replay reads and writes the same memory, so whoever captures keeps that
/// memory alive and in place (ops/graph/executor.cpp does, for a training step).

#include <memory>
#include <string>

#include "core/cuda/stream.h"

namespace pacer::cuda {

class CudaGraph {
 public:
  CudaGraph();
  /// Waits for the replays still queued, then frees the graph.
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  /// Starts recording the work queued on `capture` (a stream made by Stream::create: the
  /// legacy default stream cannot be captured). Relaxed mode: the allocator may still call
  /// cudaMalloc while recording (it is not stream work, and the blocks stay where they are).
  void begin_capture(const Stream& capture);
  /// Stops recording and makes the graph launchable. Returns "" on success; otherwise why
  /// the capture failed (an operation that cannot be recorded, such as a synchronization),
  /// and the graph stays empty. Never throws, so that it can end a capture an error cut short.
  std::string end_capture();
  /// Whether a graph was captured and can be launched.
  bool ready() const;
  /// Queues one replay on `s` (any stream of the capture's device).
  void launch(const Stream& s);
  /// Kernel and copy nodes in the captured graph (0 when none).
  int64_t nodes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Whether work queued on `s` is being recorded into a graph rather than run.
bool is_capturing(const Stream& s);

/// Keeps `owner` alive as long as the graph this thread is capturing (if any): for objects
/// a recorded launch depends on that a cache may drop later (a cuDNN execution plan owns the
/// runtime-compiled kernel its launch names). Does nothing when no capture is under way.
void keep_alive_while_captured(std::shared_ptr<const void> owner);

}  // namespace pacer::cuda
