#pragma once
/// The Fashion-MNIST classifier recipe: SGD with momentum on cross-entropy, shuffled by
/// (seed, epoch). Shared by `pacer train mlp|cnn`, `pacer bench mlp-epoch` and the CI tests.

#include <functional>
#include <string>
#include <vector>

#include "data/fashion_mnist.h"
#include "optim/loss_scaler.h"

namespace pacer::models {

struct TrainConfig {
  std::string model = "mlp";  // "mlp" or "cnn"
  std::string data_dir = data::kFashionMnistDir;
  int64_t epochs = 10;
  int64_t batch = 64;
  double lr = 0.05;
  double momentum = 0.9;
  uint64_t seed = 0;
  int64_t lr_decay_epoch = 0;  // > 0: from this epoch (0-based) on, train at lr / 10
  int64_t train_limit = 0;  // > 0: train on the first N samples only
  int64_t test_limit = 0;   // > 0: evaluate on the first N samples only
  std::string checkpoint;       // where to save training checkpoints ("" = never)
  int64_t checkpoint_every = 0;  // save every N steps (0 = only at the end)
  std::string resume;           // a checkpoint to continue from ("" = start fresh)
  int64_t stop_after_steps = 0;  // > 0: stop after this many steps in this run (tests, budgets)
  std::string precision = "32";  // "32", "16-mixed", "bf16-mixed", "16-O2" (models/precision.h)
  optim::LossScalerOptions loss_scaler;  // for the modes with loss scaling
};

struct TrainProgress {
  int64_t epoch, step, steps_per_epoch;
  double loss;           // running mean over the epoch so far
  double samples_per_s;  // over the epoch so far
  double elapsed_s;      // since training started
  double loss_scale = 0;       // the loss scale now (modes with loss scaling; else 0)
  int64_t skipped_steps = 0;   // steps skipped for inf/NaN gradients so far
};

struct TrainResult {
  double eval_accuracy = 0;
  double final_loss = 0;
  int64_t epochs = 0;
  double wall_s = 0;
  double train_samples_per_s = 0;
  double loss_scale = 0;      // final loss scale (modes with loss scaling; else 0)
  int64_t skipped_steps = 0;  // steps skipped for inf/NaN gradients
  bool stopped_early = false;           // stop_after_steps ended the run before the last epoch
  std::vector<double> step_losses;      // the loss of every step this run made
};

/// Trains and evaluates; `progress` (optional) is called every few steps and at epoch ends.
TrainResult train_classifier(const TrainConfig& config, const std::function<void(const TrainProgress&)>& progress = {});

/// Trains model `name` for one epoch on already-loaded data; returns the wall time in
/// seconds (the `mlp-epoch` benchmark).
double time_epoch(const std::string& name, const data::ImageClassificationSet& train, int64_t batch, double lr,
                  uint64_t seed);

/// Wall times (ms) of `repeat` training steps of model `name` ("mlp", "cnn") at `precision`
/// on one fixed random batch, after `warmup` untimed steps (`pacer bench train-step`).
std::vector<double> time_train_steps(const std::string& name, const std::string& precision, int64_t batch,
                                     int64_t warmup, int64_t repeat, uint64_t seed = 0);

}  // namespace pacer::models
