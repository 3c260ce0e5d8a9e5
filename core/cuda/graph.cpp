#include "core/cuda/graph.h"

#include <fmt/format.h>

#include <memory>
#include <vector>

#include "core/cuda/check.h"
#include "core/cuda/runtime.h"

namespace pacer::cuda {

struct CudaGraph::Impl {
  cudaStream_t capture = nullptr;
  int device = -1;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  size_t nodes = 0;
  cudaStream_t last_launch = nullptr;
  bool launched = false;
  std::vector<std::shared_ptr<const void>> kept;  // keep_alive_while_captured; freed after the graph
};

namespace {
// What the graph this thread is recording keeps alive (its Impl's list), or null.
thread_local std::vector<std::shared_ptr<const void>>* t_capturing = nullptr;
}  // namespace

CudaGraph::CudaGraph() : impl_(std::make_unique<Impl>()) {}

CudaGraph::~CudaGraph() {
  // Best effort and no throw: replays still queued must finish before their graph goes (on
  // the graph's device: a null stream handle means that device's default stream).
  int previous = -1;
  if (impl_->device >= 0 && cudaGetDevice(&previous) == cudaSuccess && previous != impl_->device)
    (void)cudaSetDevice(impl_->device);
  if (impl_->launched) (void)cudaStreamSynchronize(impl_->last_launch);
  if (impl_->exec) (void)cudaGraphExecDestroy(impl_->exec);
  if (impl_->graph) (void)cudaGraphDestroy(impl_->graph);
  impl_->kept.clear();  // only now: the graph's launches may have used them until here
  if (previous >= 0 && previous != impl_->device) (void)cudaSetDevice(previous);
  (void)cudaGetLastError();
  if (t_capturing == &impl_->kept) t_capturing = nullptr;
}

void CudaGraph::begin_capture(const Stream& capture) {
  PACER_CHECK(capture.handle() != nullptr,
              "CudaGraph::begin_capture: the default stream cannot be captured; use a stream from Stream::create");
  PACER_CHECK(impl_->capture == nullptr && impl_->exec == nullptr,
              "CudaGraph::begin_capture: this graph was captured already; make a new one");
  DeviceGuard g(capture.device());
  impl_->capture = static_cast<cudaStream_t>(capture.handle());
  impl_->device = capture.device();
  PACER_CUDA_CHECK(cudaStreamBeginCapture(impl_->capture, cudaStreamCaptureModeRelaxed));
  t_capturing = &impl_->kept;
}

std::string CudaGraph::end_capture() {
  if (impl_->capture == nullptr) return "CudaGraph::end_capture: no capture was begun";
  if (t_capturing == &impl_->kept) t_capturing = nullptr;
  int previous = -1;
  (void)cudaGetDevice(&previous);
  (void)cudaSetDevice(impl_->device);
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(impl_->capture, &graph);
  std::string why;
  if (ended != cudaSuccess) {
    why = fmt::format("cudaStreamEndCapture: {} ({})", cudaGetErrorName(ended), cudaGetErrorString(ended));
  } else if (graph == nullptr) {
    why = "cudaStreamEndCapture returned no graph";
  } else {
    cudaGraphExec_t exec = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    if (made != cudaSuccess) {
      why = fmt::format("cudaGraphInstantiate: {} ({})", cudaGetErrorName(made), cudaGetErrorString(made));
    } else {
      impl_->graph = graph;
      impl_->exec = exec;
      (void)cudaGraphGetNodes(graph, nullptr, &impl_->nodes);
      graph = nullptr;
    }
  }
  if (graph) (void)cudaGraphDestroy(graph);
  (void)cudaGetLastError();  // a failed capture leaves its error here: it is reported through `why`
  if (previous >= 0) (void)cudaSetDevice(previous);
  return why;
}

bool CudaGraph::ready() const { return impl_->exec != nullptr; }

void CudaGraph::launch(const Stream& s) {
  PACER_CHECK(ready(), "CudaGraph::launch: nothing was captured");
  PACER_CHECK(s.device() == impl_->device, "CudaGraph::launch: captured on cuda:{}, launched on cuda:{}", impl_->device,
              s.device());
  DeviceGuard g(s.device());
  PACER_CUDA_CHECK(cudaGraphLaunch(impl_->exec, static_cast<cudaStream_t>(s.handle())));
  impl_->last_launch = static_cast<cudaStream_t>(s.handle());
  impl_->launched = true;
}

int64_t CudaGraph::nodes() const { return int64_t(impl_->nodes); }

void keep_alive_while_captured(std::shared_ptr<const void> owner) {
  if (t_capturing && owner) t_capturing->push_back(std::move(owner));
}

bool is_capturing(const Stream& s) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  DeviceGuard g(s.device());
  PACER_CUDA_CHECK(cudaStreamIsCapturing(static_cast<cudaStream_t>(s.handle()), &status));
  return status != cudaStreamCaptureStatusNone;
}

}  // namespace pacer::cuda
