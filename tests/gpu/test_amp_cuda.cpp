// Mixed precision on CUDA: a 16-mixed training step (autocast to f16, loss scaling) gives
// the CPU's parameters within f16 tolerance, and an overflow is skipped on the device
// (Optimizer::step's no-sync path) with parameters and state restored.
#include <limits>

#include <doctest/doctest.h>

#include "ops/api.h"
#include "ops/autocast.h"
#include "optim/loss_scaler.h"
#include "optim/sgd.h"
#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

struct TinyNet {
  Tensor w1, b1, w2;
  explicit TinyNet(Device d) {
    w1 = cast(uniform({16, 8}, -0.5, 0.5, 31), DType::F32).to(d);
    b1 = cast(uniform({16}, -0.1, 0.1, 32), DType::F32).to(d);
    w2 = cast(uniform({4, 16}, -0.5, 0.5, 33), DType::F32).to(d);
    for (Tensor* t : {&w1, &b1, &w2}) t->set_requires_grad();
  }
  std::vector<Tensor> params() const { return {w1, b1, w2}; }
};

std::vector<std::vector<float>> train(Device d, int steps, bool inject_inf_at_last) {
  TinyNet net(d);
  optim::Sgd opt(net.params(), {.lr = 0.1, .momentum = 0.9});
  optim::LossScaler scaler({.init_scale = 1024, .growth_interval = 2}, d);
  const Tensor x = cast(uniform({32, 8}, -1, 1, 34), DType::F32).to(d);
  const Tensor y = idx(std::vector<int64_t>(32, 0), {32}).to(d);
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    Tensor loss;
    {
      AutocastGuard ac(d.type, DType::F16);
      loss = cross_entropy(linear(relu(linear(x, net.w1, net.b1)), net.w2), y);
    }
    if (inject_inf_at_last && s + 1 == steps) loss = loss * std::numeric_limits<float>::infinity();
    scaler.scale(loss).backward();
    scaler.step(opt);
    scaler.update();
  }
  std::vector<std::vector<float>> out;
  for (const Tensor& p : net.params()) out.push_back(p.to(kCPU).to_vector<float>());
  out.push_back({float(scaler.current_scale()), float(scaler.skipped_steps())});
  return out;
}

}  // namespace

TEST_CASE("cuda amp: a 16-mixed step matches the CPU's, and an overflow is skipped on the device") {
  const Device gpu{DeviceType::CUDA, 0};
  for (bool inf : {false, true}) {
    INFO((inf ? "with an overflow at the last step" : "clean steps"));
    auto cpu = train(kCPU, 4, inf), cuda = train(gpu, 4, inf);
    for (size_t i = 0; i + 1 < cpu.size(); ++i)
      for (size_t j = 0; j < cpu[i].size(); ++j) CHECK(cuda[i][j] == doctest::Approx(cpu[i][j]).epsilon(2e-2));
    CHECK(cuda.back() == cpu.back());  // same scale and skipped count
    if (inf) {
      auto before = train(gpu, 3, false);  // the skipped 4th step must leave the 3-step state
      for (size_t i = 0; i + 1 < before.size(); ++i) CHECK(cuda[i] == before[i]);
    }
  }
}

}  // namespace pacer::test
