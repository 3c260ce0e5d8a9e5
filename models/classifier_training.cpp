#include "models/classifier_training.h"

#include <chrono>
#include <memory>

#include "autograd/grad_mode.h"
#include "core/generator.h"
#include "data/sampler.h"
#include "models/image_classifier.h"
#include "models/precision.h"
#include "models/precision_step.h"
#include "models/training_checkpoint.h"
#include "nn/functional.h"
#include "ops/api.h"
#include "optim/sgd.h"

namespace pacer::models {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

Tensor forward_logits(ImageClassifier& model, const Tensor& x, const PrecisionPlan& plan) {
  return forward_in_precision([&](const Tensor& in) { return model.forward(in); }, x, plan, x.device().type);
}

// One optimizer step on (x, y) under the plan; returns the loss.
Tensor train_step(ImageClassifier& model, optim::Sgd& opt, optim::LossScaler* scaler, const PrecisionPlan& plan,
                  const Tensor& x, const Tensor& y) {
  Tensor loss = nn::functional::cross_entropy(forward_logits(model, x, plan), y);
  backward_and_step(loss, opt, scaler);
  return loss;
}

double evaluate(ImageClassifier& model, const data::ImageClassificationSet& test, const PrecisionPlan& plan) {
  NoGradGuard no_grad;
  model.eval();
  int64_t correct = 0;
  constexpr int64_t kChunk = 1000;
  for (int64_t at = 0; at < test.size(); at += kChunk) {
    const int64_t n = std::min(kChunk, test.size() - at);
    Tensor logits = forward_logits(model, narrow(test.images, 0, at, n), plan);
    correct += sum(eq(argmax(logits, 1), narrow(test.labels, 0, at, n))).item<int64_t>();
  }
  model.train();
  return test.size() ? double(correct) / double(test.size()) : 0.0;
}

// Steps [first_step, end) of one epoch. `after_step(step)` runs after each update and
// returns false to stop. Returns the mean loss of the steps run.
double run_epoch(ImageClassifier& model, optim::Sgd& opt, optim::LossScaler* scaler, const PrecisionPlan& plan,
                 const data::ImageClassificationSet& train, int64_t batch, uint64_t seed, int64_t epoch,
                 int64_t first_step, Clock::time_point start,
                 const std::function<void(const TrainProgress&)>& progress, std::vector<double>* losses,
                 const std::function<bool(int64_t)>& after_step) {
  auto batches = data::make_batches(data::shuffled_indices(train.size(), seed, uint64_t(epoch)), batch);
  const auto t0 = Clock::now();
  double loss_sum = 0;
  int64_t seen = 0;
  const int64_t steps = int64_t(batches.size());
  for (int64_t s = first_step; s < steps; ++s) {
    const Tensor& ix = batches[size_t(s)];
    Tensor x = index_select(train.images, 0, ix);
    Tensor y = index_select(train.labels, 0, ix);
    Tensor loss = train_step(model, opt, scaler, plan, x, y);
    const double l = loss.item<double>();
    if (losses) losses->push_back(l);
    loss_sum += l * double(ix.numel());
    seen += ix.numel();
    if (progress && (s % 50 == 0 || s + 1 == steps))
      progress({epoch, s + 1, steps, loss_sum / double(seen), double(seen) / seconds_since(t0), seconds_since(start),
                scaler ? scaler->current_scale() : 0.0, scaler ? scaler->skipped_steps() : 0});
    if (after_step && !after_step(s + 1)) break;
  }
  return seen ? loss_sum / double(seen) : 0.0;
}

int64_t steps_per_epoch(int64_t samples, int64_t batch) { return (samples + batch - 1) / batch; }

}  // namespace

TrainResult train_classifier(const TrainConfig& c, const std::function<void(const TrainProgress&)>& progress) {
  PACER_CHECK(c.epochs >= 1, "train: expected --epochs >= 1, got {}", c.epochs);
  PACER_CHECK(c.batch >= 1, "train: expected --batch >= 1, got {}", c.batch);
  PACER_CHECK(c.lr > 0, "train: expected --lr > 0, got {}", c.lr);
  const auto start = Clock::now();
  auto train = data::load_fashion_mnist(c.data_dir, "train", c.train_limit);
  auto test = data::load_fashion_mnist(c.data_dir, "test", c.test_limit);
  manual_seed(c.seed);
  const PrecisionPlan plan = plan_for(parse_precision(c.precision));
  auto model = make_classifier(c.model);
  if (plan.half_model) model->to(plan.lower, is_norm_layer);
  optim::Sgd opt(model->parameters(), {.lr = c.lr, .momentum = c.momentum});
  if (plan.master_weights) opt.use_master_weights();
  std::unique_ptr<optim::LossScaler> scaler;
  if (plan.loss_scaling) scaler = std::make_unique<optim::LossScaler>(c.loss_scaler);
  TrainResult r;
  TrainingPosition at;
  if (!c.resume.empty()) at = load_training_checkpoint(c.resume, *model, opt, nullptr, scaler.get());
  const int64_t per_epoch = steps_per_epoch(train.size(), c.batch);
  PACER_CHECK(at.step <= per_epoch, "train: the checkpoint is at step {} of an epoch of {} steps (other --batch?)",
              at.step, per_epoch);
  int64_t run_steps = 0;
  double samples = 0, train_time = 0;
  for (int64_t e = at.epoch; e < c.epochs && !r.stopped_early; ++e) {
    const auto t0 = Clock::now();
    opt.options().lr = c.lr_decay_epoch > 0 && e >= c.lr_decay_epoch ? c.lr * 0.1 : c.lr;
    const int64_t first = e == at.epoch ? at.step : 0;
    auto after_step = [&](int64_t done) {
      ++run_steps;
      const bool stop = c.stop_after_steps > 0 && run_steps >= c.stop_after_steps;
      // The position after this step: the next epoch once this one is complete.
      const TrainingPosition next = done == per_epoch ? TrainingPosition{e + 1, 0} : TrainingPosition{e, done};
      if (!c.checkpoint.empty() && c.checkpoint_every > 0 && run_steps % c.checkpoint_every == 0)
        save_training_checkpoint(c.checkpoint, *model, opt, next, nullptr, scaler.get());
      if (stop && done < per_epoch) r.stopped_early = true;
      if (stop && done == per_epoch && e + 1 < c.epochs) r.stopped_early = true;
      return !stop;
    };
    r.final_loss = run_epoch(*model, opt, scaler.get(), plan, train, c.batch, c.seed, e, first, start, progress,
                             &r.step_losses, after_step);
    train_time += seconds_since(t0);
    samples += double(train.size());
  }
  if (!c.checkpoint.empty() && !r.stopped_early)
    save_training_checkpoint(c.checkpoint, *model, opt, {c.epochs, 0}, nullptr, scaler.get());
  r.eval_accuracy = evaluate(*model, test, plan);
  if (scaler) {
    r.loss_scale = scaler->current_scale();
    r.skipped_steps = scaler->skipped_steps();
  }
  r.epochs = c.epochs;
  r.wall_s = seconds_since(start);
  r.train_samples_per_s = train_time > 0 ? samples / train_time : 0;
  return r;
}

double time_epoch(const std::string& name, const data::ImageClassificationSet& train, int64_t batch, double lr,
                  uint64_t seed) {
  manual_seed(seed);
  auto model = make_classifier(name);
  optim::Sgd opt(model->parameters(), {.lr = lr, .momentum = 0.9});
  const auto t0 = Clock::now();
  run_epoch(*model, opt, nullptr, PrecisionPlan{}, train, batch, seed, 0, 0, t0, {}, nullptr, {});
  return seconds_since(t0);
}

std::vector<double> time_train_steps(const std::string& name, const std::string& precision, int64_t batch,
                                     int64_t warmup, int64_t repeat, uint64_t seed) {
  PACER_CHECK(batch >= 1 && repeat >= 1 && warmup >= 0, "time_train_steps: expected batch, repeat >= 1, warmup >= 0");
  const PrecisionPlan plan = plan_for(parse_precision(precision));
  manual_seed(seed);
  auto model = make_classifier(name);
  if (plan.half_model) model->to(plan.lower, is_norm_layer);
  optim::Sgd opt(model->parameters(), {.lr = 0.01, .momentum = 0.9});
  if (plan.master_weights) opt.use_master_weights();
  std::unique_ptr<optim::LossScaler> scaler;
  if (plan.loss_scaling) scaler = std::make_unique<optim::LossScaler>();
  // Fashion-MNIST-like inputs (normalized pixels) and labels; the data does not change the
  // cost of a step.
  const Tensor x = randn({batch, 784});
  const Tensor y = randint(0, 10, {batch});
  std::vector<double> ms;
  for (int64_t i = 0; i < warmup + repeat; ++i) {
    const auto t0 = Clock::now();
    Tensor loss = train_step(*model, opt, scaler.get(), plan, x, y);
    loss.item<float>();  // the step is done when its loss is known
    if (i >= warmup) ms.push_back(seconds_since(t0) * 1e3);
  }
  return ms;
}

}  // namespace pacer::models
