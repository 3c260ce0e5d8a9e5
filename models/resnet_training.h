#pragma once
/// The ResNet-50 v1.5 workload (MLPerf Training v0.6, ../shared/specs/mlperf-v0.6.md §1):
/// an ImageFolder tree (DIR/train/<class>/*.jpg, DIR/val/<class>/*.jpg) through the JPEG
/// loader, SGD or LARS (batch norm and biases excluded from weight decay and from LARS),
/// label smoothing, linear warmup + poly-2 decay per step, evaluation every N epochs,
/// optional stop at a target top-1, any precision mode. With an output folder it writes
/// mlperf.log (:::MLL lines), TensorBoard events and an atomic checkpoint after each epoch;
/// resume continues from one exactly.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"

namespace pacer::models {

class ResNet;

struct ResnetTrainConfig {
  std::string data_dir;           // holds train/ and val/ ImageFolder trees
  int depth = 50;                 // 18, 34 or 50
  Device device = kCPU;
  std::string precision = "32";   // models/precision.h
  int64_t batch = 32;
  int64_t epochs = 5;
  int64_t image_size = 224;
  int64_t eval_resize = 0;        // eval: short side before the center crop; 0 = size * 256 / 224
  double crop_min_scale = 0.05;   // random-resized crop: smallest area fraction (MLPerf: 0.05)
  bool zero_init_residual = true; // last BN scale of each block starts at 0 (NVIDIA's MLPerf recipe)
  std::string optimizer = "sgd";  // "sgd" or "lars"
  double lr = 0;                  // base LR; 0 = the recipe's: SGD 0.128 * batch / 256, LARS 5 * batch / 1664
  double momentum = 0.9;
  double weight_decay = -1;       // -1 = the recipe's: SGD 1e-4, LARS 2e-4 (never on BN / biases)
  double label_smoothing = 0.1;
  double warmup_epochs = 5;       // clamped below `epochs`
  int64_t eval_every = 1;         // evaluate every N epochs (and after the last)
  double target_accuracy = 0;     // > 0: stop once val top-1 reaches it
  std::string out_dir;            // "" = no logs, no checkpoints
  std::string resume;             // a checkpoint written by a run with the same settings
  int64_t checkpoint_every = 0;   // > 0: also checkpoint every N steps (mid-epoch)
  uint64_t seed = 0;
  int loader_threads = 0;         // 0 = all cores
  int64_t stop_after_steps = 0;   // > 0: stop after this many steps (tests, budgets)
  /// Capture the training step and replay it through the fusion passes (ops/graph) where
  /// supported: on the CPU, without dynamic loss scaling (whose skip test reads the flag on
  /// the host there). Elsewhere the step runs eagerly and ResnetResult.graph says so.
  bool graph = true;
};

struct ResnetProgress {
  int64_t epoch, step, steps_per_epoch;
  double loss, lr, images_per_s, elapsed_s, eta_s, loss_scale;
};

struct ResnetResult {
  double top1 = 0, top5 = 0;
  int64_t epochs = 0;  // epochs completed
  double wall_s = 0, images_per_s = 0;
  int64_t skipped_images = 0;  // corrupt JPEGs skipped
  double data_wait_fraction = 0;  // of training time spent waiting for the loader's next batch
  bool reached_target = false, stopped_early = false;
  bool graph = false;        // whether the steps ran as a captured graph
  std::string graph_note;    // why not, when graph was asked for
  std::vector<double> step_losses;  // of this run's steps
};

/// A ResNet of `depth` holding `weights`: a torchvision-style state_dict ("conv1.weight",
/// ...; torchvision's "num_batches_tracked" counters are ignored) or a training checkpoint's
/// "model.*" entries. The class count comes from fc.weight. Throws naming a missing or
/// mismatched key.
std::shared_ptr<ResNet> load_resnet(int depth, const std::vector<std::pair<std::string, Tensor>>& weights);

/// Top-1 and top-5 of `model` over DIR/val (evaluation transforms: resize to `image_size`
/// * 256 / 224, center crop `image_size`).
/// `eval_resize`: the short side before the center crop; 0 = image_size * 256 / 224.
std::pair<double, double> evaluate_resnet(ResNet& model, const std::string& data_dir, int64_t image_size, int64_t batch,
                                          const std::string& precision = "32", Device device = kCPU,
                                          int64_t eval_resize = 0);

struct ResnetStepTimes {
  std::vector<double> ms;  // one wall time per timed step
  /// Graph mode on CUDA: the executor's CUDA-graph status ("on", or "off: ..." /
  /// "refused: ..." with the reason); "" otherwise.
  std::string cuda_graph;
};

/// Wall times (ms) of `repeat` training steps (after `warmup`) of ResNet-`depth` on one
/// synthetic batch [batch, 3, size, size] with 1000 classes, LARS, at `precision` on `device`
/// (`pacer bench resnet50-step`). CUDA times include a final device synchronization.
/// mode "graph": the step is captured (after one eager step) and replayed through the
/// passes (`passes`: a list as CompileOptions::passes takes) and the static executor
/// (ops/graph/compiled_step.h); on CUDA two more untimed steps warm the executor up and
/// capture its CUDA graph, so the timed steps are graph launches.
ResnetStepTimes time_resnet_steps(int depth, int64_t batch, int64_t image_size, const std::string& precision,
                                  Device device, int64_t warmup, int64_t repeat, bool channels_last = false,
                                  const std::string& mode = "eager", const std::string& passes = "default");

ResnetResult train_resnet(const ResnetTrainConfig& config,
                          const std::function<void(const ResnetProgress&)>& progress = {},
                          const std::function<void(int64_t epoch, double top1, double top5)>& on_eval = {});

}  // namespace pacer::models
