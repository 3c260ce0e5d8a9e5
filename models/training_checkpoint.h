#pragma once
/// Training checkpoints: one safetensors file holding the model's state_dict ("model.*"),
/// the optimizer's ("optimizer.*"), the default generator's (seed, offset) and the
/// position in training ("trainer.*"), written atomically. Loading all of it back and
/// continuing gives the same numbers, bit for bit, as a run that never stopped.

#include <cstdint>
#include <string>

#include "nn/module.h"
#include "optim/loss_scaler.h"
#include "optim/optimizer.h"
#include "optim/schedules.h"

namespace pacer::models {

struct TrainingPosition {
  int64_t epoch = 0;  // epoch in progress
  int64_t step = 0;   // steps of that epoch already done
};

/// `schedule` (optional) is saved under "schedule.*" too, `scaler` (optional, mixed
/// precision) under "loss_scaler.*".
void save_training_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& optimizer,
                              const TrainingPosition& position, const optim::LrSchedule* schedule = nullptr,
                              const optim::LossScaler* scaler = nullptr);

/// Restores model, optimizer and generator (strictly: every key must match) and returns
/// the position to continue from. Throws pacer::Error naming the problem.
/// A schedule (a loss scaler) must be given exactly when the checkpoint holds one.
TrainingPosition load_training_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& optimizer,
                                          optim::LrSchedule* schedule = nullptr, optim::LossScaler* scaler = nullptr);

}  // namespace pacer::models
