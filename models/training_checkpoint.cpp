#include "models/training_checkpoint.h"

#include <cstring>

#include "core/generator.h"
#include "nn/safetensors.h"
#include "ops/api.h"

namespace pacer::models {

namespace {

constexpr const char* kModel = "model.";
constexpr const char* kOptimizer = "optimizer.";
constexpr const char* kSchedule = "schedule.";

Tensor scalar_i64(int64_t v) { return from_vector<int64_t>({v}, {1}); }

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

void save_training_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& optimizer,
                              const TrainingPosition& position, const optim::LrSchedule* schedule,
                              const optim::LossScaler* scaler) {
  std::vector<std::pair<std::string, Tensor>> all;
  for (auto& [name, t] : model.state_dict()) all.emplace_back(kModel + name, t);
  for (auto& [name, t] : optimizer.state_dict()) all.emplace_back(kOptimizer + name, t);
  if (schedule)
    for (auto& [name, t] : schedule->state_dict()) all.emplace_back(kSchedule + name, t);
  if (scaler)  // its keys carry their own "loss_scaler." prefix
    for (auto& [name, t] : scaler->state_dict()) all.emplace_back(name, t.is_cpu() ? t : t.to(kCPU));
  const Generator& g = default_generator();
  // The u64 generator state is stored bit-for-bit in i64 tensors.
  int64_t seed, offset;
  const uint64_t s = g.seed(), o = g.offset();
  std::memcpy(&seed, &s, 8);
  std::memcpy(&offset, &o, 8);
  all.emplace_back("trainer.epoch", scalar_i64(position.epoch));
  all.emplace_back("trainer.step", scalar_i64(position.step));
  all.emplace_back("trainer.rng_seed", scalar_i64(seed));
  all.emplace_back("trainer.rng_offset", scalar_i64(offset));
  nn::save_safetensors(path, all, {{"format", "pacer-training-checkpoint-1"}});
}

TrainingPosition load_training_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& optimizer,
                                          optim::LrSchedule* schedule, optim::LossScaler* scaler) {
  std::map<std::string, std::string> meta;
  auto all = nn::load_safetensors(path, &meta);
  PACER_CHECK(meta["format"] == "pacer-training-checkpoint-1",
              "load_training_checkpoint: '{}' is not a Pacer training checkpoint (format '{}', expected "
              "'pacer-training-checkpoint-1')",
              path, meta["format"]);
  std::vector<std::pair<std::string, Tensor>> model_state, optimizer_state, schedule_state, scaler_state;
  std::map<std::string, int64_t> trainer;
  for (auto& [name, t] : all) {
    if (starts_with(name, kModel)) {
      model_state.emplace_back(name.substr(std::strlen(kModel)), t);
    } else if (starts_with(name, kOptimizer)) {
      optimizer_state.emplace_back(name.substr(std::strlen(kOptimizer)), t);
    } else if (starts_with(name, kSchedule)) {
      schedule_state.emplace_back(name.substr(std::strlen(kSchedule)), t);
    } else if (starts_with(name, "loss_scaler.")) {
      scaler_state.emplace_back(name, t);
    } else if (starts_with(name, "trainer.")) {
      PACER_CHECK(t.dtype() == DType::I64 && t.numel() == 1,
                  "load_training_checkpoint: '{}' in '{}' must be one int64, got {} {}", name, path, t.dtype(),
                  t.sizes());
      trainer[name] = t.item<int64_t>();
    } else {
      PACER_FAIL("load_training_checkpoint: unexpected key '{}' in '{}'", name, path);
    }
  }
  for (const char* key : {"trainer.epoch", "trainer.step", "trainer.rng_seed", "trainer.rng_offset"})
    PACER_CHECK(trainer.count(key) == 1, "load_training_checkpoint: '{}' lacks '{}'", path, key);
  PACER_CHECK(schedule_state.empty() == (schedule == nullptr),
              "load_training_checkpoint: '{}' {} an LR schedule, but {} was given", path,
              schedule_state.empty() ? "holds no" : "holds", schedule ? "one" : "none");
  PACER_CHECK(scaler_state.empty() == (scaler == nullptr),
              "load_training_checkpoint: '{}' {} a loss scaler, but {} was given (another --precision?)", path,
              scaler_state.empty() ? "holds no" : "holds", scaler ? "one" : "none");
  model.load_state_dict(model_state, true);
  optimizer.load_state_dict(optimizer_state);
  if (schedule) schedule->load_state_dict(schedule_state);
  if (scaler) scaler->load_state_dict(scaler_state);
  uint64_t seed, offset;
  std::memcpy(&seed, &trainer["trainer.rng_seed"], 8);
  std::memcpy(&offset, &trainer["trainer.rng_offset"], 8);
  default_generator().set_state(seed, offset);
  return {trainer["trainer.epoch"], trainer["trainer.step"]};
}

}  // namespace pacer::models
