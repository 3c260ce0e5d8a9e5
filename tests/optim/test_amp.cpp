// Mixed precision (issue 5) on the CPU: autocast policies, the loss scaler (skip on
// inf/NaN with parameters and state untouched, backoff, growth, static scale, state
// round trip), O2 master weights, and the precision modes of the training loop
// (bf16-mixed without a scaler, 16-mixed resuming bitwise from a checkpoint).
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include "models/classifier_training.h"
#include "models/precision.h"
#include "ops/autocast.h"
#include "ops/dispatch.h"
#include "optim/loss_scaler.h"
#include "optim/sgd.h"
#include "tests/test_util.h"

namespace pacer {

using test::error_of;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

Tensor leaf(const std::vector<float>& v, const Shape& s) {
  Tensor t = from_vector(v, s);
  t.set_requires_grad();
  return t;
}

}  // namespace

TEST_CASE("autocast: each op's policy, casts recorded for autograd, parameters cast once") {
  Tensor x = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor w = leaf({0.5f, -1, 2, 1, 0.25f, -0.5f}, {2, 3});
  {
    AutocastGuard ac(DeviceType::CPU, DType::BF16);
    CHECK(autocast_enabled(DeviceType::CPU));
    CHECK(!autocast_enabled(DeviceType::CUDA));
    Tensor y = linear(x, w);  // Lower
    CHECK(y.dtype() == DType::BF16);
    CHECK(softmax(y, 1).dtype() == DType::F32);  // Fp32
    CHECK(sum(y).dtype() == DType::F32);
    CHECK(sum(y, {}, false, DType::F64).dtype() == DType::F64);  // an explicit dtype wins
    CHECK(add(y, ones({2, 2})).dtype() == DType::F32);  // Promote (and promotion) to the widest
    CHECK((y * 0.5).dtype() == DType::BF16);              // a wrapped number does not widen
    CHECK(mm(cast(x, DType::F64), transpose(cast(w, DType::F64), 0, 1)).dtype() == DType::F64);  // f64 stays
    {
      AutocastGuard off(DeviceType::CPU, DType::BF16, false);
      CHECK(linear(x, w).dtype() == DType::F32);
    }
    // A parameter is cast once per region: its second use launches one kernel fewer.
    Tensor w2 = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor xb = cast(x, DType::BF16);
    uint64_t before = ops::kernel_launch_count();
    linear(xb, w2);
    const uint64_t first_use = ops::kernel_launch_count() - before;
    before = ops::kernel_launch_count();
    linear(xb, w2);
    CHECK(ops::kernel_launch_count() - before == first_use - 1);
    sum(y).backward();
  }
  CHECK(!autocast_enabled(DeviceType::CPU));
  REQUIRE(w.grad().defined());
  CHECK(w.grad().dtype() == DType::F32);  // gradients reach the f32 parameter through the cast
  CHECK(linear(x, w).dtype() == DType::F32);
  CHECK(contains(error_of([] { AutocastGuard bad(DeviceType::CPU, DType::F32); }),
                 "autocast: expected float16 or bfloat16 as the lower type, got float32"));
}

TEST_CASE("loss scaler: an inf or NaN gradient skips the step, leaves parameters and state, halves the scale") {
  for (double bad : {std::numeric_limits<double>::infinity(), std::nan("")}) {
    Tensor p = leaf({1, 2, 3}, {3});
    optim::Sgd opt({p}, {.lr = 0.1, .momentum = 0.9});
    optim::LossScaler scaler({.init_scale = 1024, .growth_interval = 100});
    // One clean step creates the momentum buffer.
    opt.zero_grad();
    scaler.scale(sum(p * 2.0f)).backward();
    scaler.step(opt);
    scaler.update();
    CHECK(scaler.skipped_steps() == 0);
    const std::vector<float> p_before = p.to_vector<float>();
    const std::vector<float> buf_before = opt.state_dict()[0].second.to_vector<float>();
    CHECK(p_before[0] == doctest::Approx(1 - 0.1 * 2));  // unscaled gradient 2

    opt.zero_grad();
    scaler.scale(sum(p * scalar_tensor(bad, DType::F32))).backward();
    scaler.step(opt);
    scaler.update();
    CHECK(p.to_vector<float>() == p_before);
    CHECK(opt.state_dict()[0].second.to_vector<float>() == buf_before);
    CHECK(scaler.current_scale() == 512.0);
    CHECK(scaler.skipped_steps() == 1);
  }
}

TEST_CASE("loss scaler: the scale grows after N clean steps, within its bounds, unscaled gradients are true ones") {
  Tensor p = leaf({1, -1}, {2});
  optim::Sgd opt({p}, {.lr = 0.01});
  optim::LossScaler scaler({.init_scale = 4, .growth_interval = 3, .max_scale = 16});
  std::vector<double> scales;
  for (int i = 0; i < 9; ++i) {
    opt.zero_grad();
    scaler.scale(sum(p * p)).backward();
    scaler.unscale_(opt);
    CHECK(p.grad().to_vector<float>() == (p * 2.0f).to_vector<float>());  // the true gradient
    scaler.step(opt);
    scaler.update();
    scales.push_back(scaler.current_scale());
  }
  CHECK(scales == std::vector<double>{4, 4, 8, 8, 8, 16, 16, 16, 16});  // capped at max_scale
  CHECK(contains(error_of([&] {
                   scaler.unscale_(opt);
                   scaler.unscale_(opt);
                 }),
                 "unscale_ was already called"));
}

TEST_CASE("loss scaler: a static scale stays, still skips overflowing steps, state round-trips") {
  Tensor p = leaf({1}, {1});
  optim::Sgd opt({p}, {.lr = 0.5});
  optim::LossScaler fixed = optim::LossScaler::fixed(128);
  opt.zero_grad();
  fixed.scale(sum(p * std::numeric_limits<float>::infinity())).backward();
  fixed.step(opt);
  fixed.update();
  CHECK(p.item<float>() == 1.0f);
  CHECK(fixed.current_scale() == 128.0);
  CHECK(fixed.skipped_steps() == 1);

  optim::LossScaler dyn({.init_scale = 8});
  dyn.load_state_dict(fixed.state_dict());
  CHECK(dyn.current_scale() == 128.0);
  CHECK(dyn.skipped_steps() == 1);
  CHECK(contains(error_of([&] { dyn.load_state_dict({{"loss_scaler.scale", ones({1})}}); }),
                 "missing key 'loss_scaler.growth_tracker'"));
  CHECK(contains(error_of([] { optim::LossScaler bad({.backoff_factor = 2}); }),
                 "expected 0 < backoff_factor <= 1, got 2"));
}

TEST_CASE("O2 master weights: f32 masters accumulate updates too small for f16 and round into the parameter") {
  Tensor p = full({1}, 1.0, {.dtype = DType::F16});
  p.set_requires_grad();
  optim::Sgd opt({p}, {.lr = 1.0});
  opt.use_master_weights();
  REQUIRE(opt.has_master_weights());
  CHECK(opt.updated_param(0).dtype() == DType::F32);
  // Each step subtracts 2^-12, below half of f16's ulp at 1.0 (2^-10): plain f16 SGD would
  // never move; the master does, and the parameter follows once it crosses a rounding.
  float master = 1.0f;
  for (int i = 0; i < 6; ++i) {
    opt.zero_grad();
    p.set_grad(full({1}, 1.0 / 4096, {.dtype = DType::F16}));
    opt.step();
    master -= 1.0f / 4096;
    CHECK(opt.updated_param(0).item<float>() == master);
    CHECK(p.item<float>() == float(Half(master)));
  }
  CHECK(p.item<float>() < 1.0f);
  // The masters travel in the optimizer's state_dict.
  bool saved = false;
  for (auto& [k, t] : opt.state_dict()) saved = saved || k == "master.0";
  CHECK(saved);
}

TEST_CASE("precision modes: names, bf16-mixed trains without a scaler, 16-mixed resumes bitwise") {
  CHECK(models::parse_precision("bf16-mixed") == models::Precision::MixedBF16);
  CHECK(contains(error_of([] { models::parse_precision("fp16"); }),
                 "unknown precision 'fp16': expected 32, 16-mixed, bf16-mixed or 16-O2"));

  models::TrainConfig c;
  c.model = "mlp";
  c.epochs = 1;
  c.train_limit = 2000;
  c.test_limit = 500;
  c.seed = 3;
  c.precision = "bf16-mixed";
  models::TrainResult bf = models::train_classifier(c);
  CHECK(bf.loss_scale == 0.0);
  CHECK(bf.eval_accuracy > 0.6);

  const std::string path = (std::filesystem::temp_directory_path() /
                            ("pacer_amp_resume_" + std::to_string(::getpid()) + ".safetensors"))
                               .string();
  c.precision = "16-mixed";
  c.epochs = 2;
  c.train_limit = 640;  // 10 steps per epoch
  c.loss_scaler.growth_interval = 4;  // the scale changes during the run
  models::TrainResult full = models::train_classifier(c);
  REQUIRE(full.step_losses.size() == 20);
  CHECK(full.loss_scale > 0.0);
  models::TrainConfig first = c;
  first.checkpoint = path;
  first.checkpoint_every = 7;
  first.stop_after_steps = 8;
  models::train_classifier(first);
  models::TrainConfig second = c;
  second.resume = path;
  models::TrainResult b = models::train_classifier(second);
  REQUIRE(b.step_losses.size() == 13);
  for (size_t i = 0; i < 13; ++i) CHECK(b.step_losses[i] == full.step_losses[7 + i]);
  CHECK(b.loss_scale == full.loss_scale);
  // A checkpoint with a loss scaler does not load into a run without one.
  models::TrainConfig plain = c;
  plain.precision = "32";
  plain.resume = path;
  CHECK(contains(error_of([&] { models::train_classifier(plain); }), "holds a loss scaler, but none was given"));
  std::remove(path.c_str());
}

TEST_CASE("precision modes: 16-O2 trains the CNN with f16 parameters and f32 batch norm") {
  models::TrainConfig c;
  c.model = "cnn";
  c.epochs = 1;
  c.train_limit = 1000;
  c.test_limit = 300;
  c.seed = 5;
  c.precision = "16-O2";
  models::TrainResult r = models::train_classifier(c);
  CHECK(r.loss_scale > 0);
  CHECK(r.eval_accuracy > 0.5);
}

}  // namespace pacer
