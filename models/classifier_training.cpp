#include "models/classifier_training.h"

#include <chrono>

#include "autograd/grad_mode.h"
#include "core/generator.h"
#include "data/sampler.h"
#include "models/image_classifier.h"
#include "nn/functional.h"
#include "ops/api.h"
#include "optim/sgd.h"

namespace pacer::models {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double evaluate(ImageClassifier& model, const data::ImageClassificationSet& test) {
  NoGradGuard no_grad;
  model.eval();
  int64_t correct = 0;
  constexpr int64_t kChunk = 1000;
  for (int64_t at = 0; at < test.size(); at += kChunk) {
    const int64_t n = std::min(kChunk, test.size() - at);
    Tensor logits = model.forward(narrow(test.images, 0, at, n));
    correct += sum(eq(argmax(logits, 1), narrow(test.labels, 0, at, n))).item<int64_t>();
  }
  model.train();
  return test.size() ? double(correct) / double(test.size()) : 0.0;
}

// One epoch; returns the mean loss.
double run_epoch(ImageClassifier& model, optim::Sgd& opt, const data::ImageClassificationSet& train, int64_t batch,
                 uint64_t seed, int64_t epoch, Clock::time_point start,
                 const std::function<void(const TrainProgress&)>& progress) {
  auto batches = data::make_batches(data::shuffled_indices(train.size(), seed, uint64_t(epoch)), batch);
  const auto t0 = Clock::now();
  double loss_sum = 0;
  int64_t seen = 0;
  const int64_t steps = int64_t(batches.size());
  for (int64_t s = 0; s < steps; ++s) {
    const Tensor& ix = batches[size_t(s)];
    Tensor x = index_select(train.images, 0, ix);
    Tensor y = index_select(train.labels, 0, ix);
    Tensor loss = nn::functional::cross_entropy(model.forward(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    loss_sum += loss.item<double>() * double(ix.numel());
    seen += ix.numel();
    if (progress && (s % 50 == 0 || s + 1 == steps))
      progress({epoch, s + 1, steps, loss_sum / double(seen), double(seen) / seconds_since(t0), seconds_since(start)});
  }
  return seen ? loss_sum / double(seen) : 0.0;
}

}  // namespace

TrainResult train_classifier(const TrainConfig& c, const std::function<void(const TrainProgress&)>& progress) {
  PACER_CHECK(c.epochs >= 1, "train: expected --epochs >= 1, got {}", c.epochs);
  PACER_CHECK(c.batch >= 1, "train: expected --batch >= 1, got {}", c.batch);
  PACER_CHECK(c.lr > 0, "train: expected --lr > 0, got {}", c.lr);
  const auto start = Clock::now();
  auto train = data::load_fashion_mnist(c.data_dir, "train", c.train_limit);
  auto test = data::load_fashion_mnist(c.data_dir, "test", c.test_limit);
  manual_seed(c.seed);
  auto model = make_classifier(c.model);
  optim::Sgd opt(model->parameters(), {.lr = c.lr, .momentum = c.momentum});
  TrainResult r;
  double samples = 0, train_time = 0;
  for (int64_t e = 0; e < c.epochs; ++e) {
    const auto t0 = Clock::now();
    if (c.lr_decay_epoch > 0 && e == c.lr_decay_epoch) opt.options().lr = c.lr * 0.1;
    r.final_loss = run_epoch(*model, opt, train, c.batch, c.seed, e, start, progress);
    train_time += seconds_since(t0);
    samples += double(train.size());
  }
  r.eval_accuracy = evaluate(*model, test);
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
  run_epoch(*model, opt, train, batch, seed, 0, t0, {});
  return seconds_since(t0);
}

}  // namespace pacer::models
