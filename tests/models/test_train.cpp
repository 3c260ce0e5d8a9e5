// The first trainings on real data, CI-sized: the MLP and the CNN on Fashion-MNIST subsets
// must learn (far above the 10% of chance), and a run must be reproducible.
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <doctest/doctest.h>

#include "models/classifier_training.h"
#include "models/cnn.h"
#include "models/mlp.h"
#include "models/training_checkpoint.h"
#include "optim/schedules.h"
#include "optim/sgd.h"
#include "core/error.h"

namespace pacer {

TEST_CASE("MLP on a Fashion-MNIST subset reaches 80% test accuracy") {
  models::TrainConfig c;
  c.epochs = 3;
  c.train_limit = 10000;
  c.test_limit = 2000;
  models::TrainResult r = models::train_classifier(c);
  MESSAGE("accuracy " << r.eval_accuracy << " in " << r.wall_s << " s");
  CHECK(r.eval_accuracy >= 0.80);
  CHECK(r.final_loss < 0.7);
}

TEST_CASE("CNN (conv, batch norm, pooling) on a Fashion-MNIST subset reaches 80% test accuracy") {
  models::TrainConfig c;
  c.model = "cnn";
  c.epochs = 1;
  c.train_limit = 12000;
  c.test_limit = 2000;
  models::TrainResult r = models::train_classifier(c);
  MESSAGE("accuracy " << r.eval_accuracy << " in " << r.wall_s << " s");
  CHECK(r.eval_accuracy >= 0.80);
}

TEST_CASE("CNN parameter and buffer names follow PyTorch's state_dict") {
  models::Cnn cnn;
  std::vector<std::string> names;
  for (auto& [n, t] : cnn.state_dict()) names.push_back(n);
  const std::vector<std::string> want = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                         "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                                         "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var",
                                         "fc.weight", "fc.bias"};
  CHECK(names == want);
}

// Issue 3: save mid-training, stop, resume; the following losses equal an uninterrupted
// run's bit for bit (model, optimizer momentum, generator and data order all restored).
TEST_CASE("resuming from a mid-epoch checkpoint continues bitwise like an uninterrupted run") {
  const std::string path = (std::filesystem::temp_directory_path() / ("pacer_resume_" + std::to_string(::getpid()) +
                                                                       ".safetensors")).string();
  models::TrainConfig c;
  c.epochs = 2;
  c.train_limit = 1000;  // 16 steps per epoch at batch 64
  c.test_limit = 200;
  c.seed = 9;
  c.lr_decay_epoch = 1;
  models::TrainResult full = models::train_classifier(c);
  REQUIRE(full.step_losses.size() == 32);

  models::TrainConfig first = c;
  first.checkpoint = path;
  first.checkpoint_every = 5;
  first.stop_after_steps = 22;  // last checkpoint after step 20: epoch 1, step 4
  models::TrainResult a = models::train_classifier(first);
  CHECK(a.stopped_early);
  REQUIRE(a.step_losses.size() == 22);

  models::TrainConfig second = c;
  second.resume = path;
  models::TrainResult b = models::train_classifier(second);
  REQUIRE(b.step_losses.size() == 12);
  for (size_t i = 0; i < 12; ++i) CHECK(b.step_losses[i] == full.step_losses[20 + i]);
  CHECK(b.eval_accuracy == full.eval_accuracy);
  std::remove(path.c_str());

  // A checkpoint of another model is refused with the mismatch named.
  models::TrainConfig other = c;
  other.checkpoint = path;
  other.stop_after_steps = 1;
  other.checkpoint_every = 1;
  models::train_classifier(other);
  models::TrainConfig wrong = c;
  wrong.model = "cnn";
  wrong.resume = path;
  CHECK_THROWS_AS(models::train_classifier(wrong), Error);
  std::remove(path.c_str());
}

TEST_CASE("a training checkpoint also carries the LR schedule") {
  const std::string path = (std::filesystem::temp_directory_path() / ("pacer_sched_" + std::to_string(::getpid()) +
                                                                       ".safetensors")).string();
  models::Mlp model(4, 3, 2);
  optim::Sgd opt(model.parameters(), {.lr = 0.1, .momentum = 0.9});
  optim::PolyWarmupSchedule sched({.base_lr = 1.0, .warmup_steps = 3, .total_steps = 10});
  for (int i = 0; i < 5; ++i) sched.step();
  models::save_training_checkpoint(path, model, opt, {0, 5}, &sched);
  models::Mlp model2(4, 3, 2);
  optim::Sgd opt2(model2.parameters(), {.lr = 0.1, .momentum = 0.9});
  optim::PolyWarmupSchedule sched2({.base_lr = 1.0, .warmup_steps = 3, .total_steps = 10});
  models::TrainingPosition at = models::load_training_checkpoint(path, model2, opt2, &sched2);
  CHECK(at.step == 5);
  CHECK(sched2.current_step() == sched.current_step());
  CHECK(sched2.lr() == sched.lr());
  CHECK_THROWS_WITH_AS(models::load_training_checkpoint(path, model2, opt2), doctest::Contains("holds an LR schedule"),
                       Error);
  std::remove(path.c_str());
}

TEST_CASE("MLP training is reproducible for a seed") {
  models::TrainConfig c;
  c.epochs = 1;
  c.train_limit = 1000;
  c.test_limit = 500;
  c.seed = 3;
  auto a = models::train_classifier(c), b = models::train_classifier(c);
  CHECK(a.final_loss == b.final_loss);  // bitwise: same init, same batches, deterministic kernels
  CHECK(a.eval_accuracy == b.eval_accuracy);
  c.seed = 4;
  CHECK(models::train_classifier(c).final_loss != a.final_loss);
}

}  // namespace pacer
