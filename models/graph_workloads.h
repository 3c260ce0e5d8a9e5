#pragma once
/// Training steps as graph-capturable step functions, for `pacer graph` and
/// `pacer bench resnet50-step --mode graph`: one synthetic batch, a model, its optimizer,
/// and a step (forward, loss, backward, update) of signature inputs -> {loss}.
///   resnet            ResNet-18/34/50 (options.depth), LARS, cross-entropy with label
///                     smoothing 0.1, any precision mode; inputs {images, labels}
///   transformer-layer one post-norm Transformer encoder layer (d 256, 4 heads, FFN 1024),
///                     SGD; inputs {x [seq, batch, 256], target of the same shape}
///   lstm-layer        one LSTM layer (512 -> 512), SGD; inputs {x [seq, batch, 512], target}

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pacer::models {

struct GraphWorkloadOptions {
  int depth = 50;               // resnet
  int64_t batch = 8;
  int64_t image_size = 224;     // resnet
  int64_t seq_len = 32;         // transformer-layer, lstm-layer
  std::string precision = "32";
  Device device = kCPU;
  bool channels_last = false;   // resnet: NHWC activations
};

struct GraphWorkload {
  std::string name;
  std::function<std::vector<Tensor>(const std::vector<Tensor>&)> step;
  std::vector<Tensor> inputs;
  std::vector<Tensor> params;   // whose gradients the step computes
  std::shared_ptr<void> owner;  // the model, optimizer and loss scaler the step uses
};

/// The names make_graph_workload knows.
std::vector<std::string> graph_workload_names();
/// Builds workload `name` (seeded: the same options give the same model and batch).
GraphWorkload make_graph_workload(const std::string& name, const GraphWorkloadOptions& options);

}  // namespace pacer::models
