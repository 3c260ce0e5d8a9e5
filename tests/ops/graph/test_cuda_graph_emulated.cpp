// The executor's CUDA-graph bookkeeping, tested without a GPU (ExecutorOptions::
// emulate_cuda_graph): from the second run on, inputs are copied into kept memory, outputs
// handed out as copies, gradients rebuilt over the arena; a kept gradient (new arena) or a
// changed host scalar means one warm-up run and a new capture; steps that update their
// inputs in place are refused. The numbers must equal the executor without it, bit for bit.

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <vector>

#include "models/precision_step.h"
#include "models/resnet.h"
#include "ops/autocast.h"
#include "ops/graph/compiled_step.h"
#include "optim/loss_scaler.h"
#include "optim/sgd.h"
#include "tests/ops/graph/graph_test_util.h"

using namespace pacer;
using namespace pacer::graph;
using test::max_rel_diff;

namespace {

struct Mlp {
  std::vector<Tensor> p;
  std::unique_ptr<optim::Sgd> opt;
  Tensor weight = full({}, 1.0);  // a CPU scalar the step reads (a launch argument on CUDA)
  explicit Mlp(uint64_t seed) {
    manual_seed(seed);
    p = {randn({16, 8}) * 0.3, randn({16}) * 0.1, randn({4, 16}) * 0.3};
    for (Tensor& t : p) t.set_requires_grad();
    opt = std::make_unique<optim::Sgd>(p, optim::SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3});
    opt->use_lr_tensors();
  }
  std::vector<Tensor> operator()(const std::vector<Tensor>& in) {
    opt->zero_grad();
    const Tensor d = linear(relu(linear(in[0], p[0], p[1])), p[2]) - in[1];
    const Tensor loss = mean(d * d) * weight;
    loss.backward();
    opt->step();
    return {loss, d};
  }
};

}  // namespace

TEST_CASE("emulated CUDA graph: replays equal the plain executor's, hand out copies, and capture again when the "
          "arena or a host scalar moves") {
  Mlp a(7), b(7);
  CompiledStep with([&](const std::vector<Tensor>& in) { return a(in); },
                    {.capture = {.params = a.p}, .executor = {.emulate_cuda_graph = true}});
  CompiledStep without([&](const std::vector<Tensor>& in) { return b(in); },
                       {.capture = {.params = b.p}, .executor = {.cuda_graph = false}});
  Tensor first_loss, kept_grad;
  std::vector<double> first_value, kept_value;
  for (int i = 0; i < 12; ++i) {
    INFO("step " << i);
    if (i == 5) {
      a.opt->set_lr(0.05);
      b.opt->set_lr(0.05);
    }
    if (i == 9) {
      fill_(a.weight, 0.5);
      fill_(b.weight, 0.5);
    }
    const Tensor x = randn({32, 8}), t = randn({32, 4});
    const std::vector<Tensor> ga = with({x, t}), gb = without({x, t});
    for (size_t k = 0; k < ga.size(); ++k) CHECK(max_rel_diff(ga[k], gb[k]) == 0);
    for (size_t k = 0; k < a.p.size(); ++k) {
      CHECK(max_rel_diff(a.p[k], b.p[k]) == 0);
      CHECK(max_rel_diff(a.p[k].grad(), b.p[k].grad()) == 0);
    }
    if (i == 3) {  // the first replay: its outputs are copies, which later runs leave alone
      first_loss = ga[0];
      first_value = ga[0].to_vector<double>();
    }
    if (i == 6) {  // a gradient kept by the caller: the next run takes a new arena
      kept_grad = a.p[0].grad();
      kept_value = kept_grad.to_vector<double>();
    }
  }
  CHECK(first_loss.to_vector<double>() == first_value);
  CHECK(kept_grad.to_vector<double>() == kept_value);
  REQUIRE(with.last_executor() != nullptr);
  const ExecutorStats& s = with.last_executor()->stats();
  CHECK(s.cuda_graph == "on");
  // Executor runs from call 2: 2 warm-up, 3 capture, 4 replay, 5 warm-up (the lr tensor is a
  // host scalar here: on CUDA it lives on the device and needs none), 6 capture, 7 warm-up
  // (new arena), 8 capture, 9 warm-up (weight changed), 10 capture, 11 replay.
  CHECK(s.cuda_graph_captures == 4);
  CHECK(s.cuda_graph_replays == 6);
  CHECK(without.last_executor()->stats().cuda_graph_replays == 0);
}

TEST_CASE("emulated CUDA graph: a step that updates its input in place is refused, with the reason") {
  auto f = [](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    mul_(x, wrap(2.0));
    return std::vector<Tensor>{sum(x)};
  };
  const Tensor x = randn({5});
  Captured c = capture(f, {x});
  Executor ex(c.graph, {.emulate_cuda_graph = true});
  CHECK(ex.stats().cuda_graph.find("updates input memory in place") != std::string::npos);
  Executor off(c.graph, {.cuda_graph = false, .emulate_cuda_graph = true});
  CHECK(off.stats().cuda_graph.rfind("off", 0) == 0);
}

TEST_CASE("emulated CUDA graph: a ResNet bottleneck step with the default passes (batch norm's running statistics, "
          "fused kernels) replays bit for bit") {
  auto make = [] {
    manual_seed(12);
    auto block = std::make_shared<models::Bottleneck>(16, 4, 1, false);
    auto opt = std::make_shared<optim::Sgd>(block->parameters(),
                                            optim::SgdOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4});
    return std::pair{block, opt};
  };
  auto [block_a, opt_a] = make();
  auto [block_b, opt_b] = make();
  auto step = [](models::Bottleneck& block, optim::Sgd& opt) {
    return [&block, &opt](const std::vector<Tensor>& in) {
      const Tensor d = block.forward(in[0]) - in[1];
      const Tensor loss = mean(d * d);
      models::backward_and_step(loss, opt, nullptr);
      return std::vector<Tensor>{loss};
    };
  };
  CompiledStep with(step(*block_a, *opt_a), {.capture = {.params = block_a->parameters()},
                                             .executor = {.emulate_cuda_graph = true}});
  CompiledStep without(step(*block_b, *opt_b), {.capture = {.params = block_b->parameters()}});
  manual_seed(3);
  for (int i = 0; i < 6; ++i) {
    INFO("step " << i);
    const Tensor x = randn({2, 16, 6, 6}), t = randn({2, 16, 6, 6});
    CHECK(max_rel_diff(with({x, t})[0], without({x, t})[0]) == 0);
  }
  // Parameters and buffers (batch norm's running statistics) alike.
  const auto sa = block_a->state_dict(), sb = block_b->state_dict();
  REQUIRE(sa.size() == sb.size());
  for (size_t k = 0; k < sa.size(); ++k) {
    INFO(sa[k].first);
    CHECK(max_rel_diff(sa[k].second, sb[k].second) == 0);
  }
  const ExecutorStats& s = with.last_executor()->stats();
  CHECK(s.cuda_graph == "on");
  CHECK(s.cuda_graph_captures == 1);
  CHECK(s.cuda_graph_replays == 3);  // runs 3 (capture), 4, 5
}

TEST_CASE("emulated CUDA graph: a mixed-precision step (autocast f16, dynamic loss scaling) is captured once and "
          "replays bit for bit") {
  auto make = [] {
    manual_seed(13);
    auto block = std::make_shared<models::Bottleneck>(16, 4, 1, false);
    auto opt = std::make_shared<optim::Sgd>(block->parameters(), optim::SgdOptions{.lr = 0.05, .momentum = 0.9});
    return std::pair{block, opt};
  };
  auto [block_a, opt_a] = make();
  auto [block_b, opt_b] = make();
  optim::LossScaler scaler_a, scaler_b;
  auto step = [](models::Bottleneck& block, optim::Sgd& opt, optim::LossScaler& scaler) {
    return [&block, &opt, &scaler](const std::vector<Tensor>& in) {
      Tensor loss;
      {
        const AutocastGuard autocast(DeviceType::CPU, DType::F16);
        const Tensor d = cast(block.forward(in[0]), DType::F32) - in[1];
        loss = mean(d * d);
      }
      models::backward_and_step(loss, opt, &scaler);
      return std::vector<Tensor>{loss};
    };
  };
  CompiledStep with(step(*block_a, *opt_a, scaler_a), {.capture = {.params = block_a->parameters()},
                                                      .executor = {.emulate_cuda_graph = true}});
  CompiledStep without(step(*block_b, *opt_b, scaler_b), {.capture = {.params = block_b->parameters()}});
  manual_seed(4);
  for (int i = 0; i < 6; ++i) {
    INFO("step " << i);
    const Tensor x = randn({2, 16, 6, 6}), t = randn({2, 16, 6, 6});
    CHECK(max_rel_diff(with({x, t})[0], without({x, t})[0]) == 0);
  }
  const auto sa = block_a->state_dict(), sb = block_b->state_dict();
  for (size_t k = 0; k < sa.size(); ++k) {
    INFO(sa[k].first);
    CHECK(max_rel_diff(sa[k].second, sb[k].second) == 0);
  }
  CHECK(scaler_a.current_scale() == scaler_b.current_scale());
  REQUIRE(with.last_executor() != nullptr);
  const ExecutorStats& s = with.last_executor()->stats();
  CHECK(s.cuda_graph == "on");
  CHECK(s.cuda_graph_captures == 1);
  CHECK(s.cuda_graph_replays == 3);  // runs 3 (capture), 4, 5
}

TEST_CASE("emulated CUDA graph: an output that is a parameter's updated value (outside the arenas) is handed out "
          "from where the replays write it") {
  Mlp a(9), b(9);
  auto with_param = [](Mlp& m) {
    return [&m](const std::vector<Tensor>& in) {
      std::vector<Tensor> out = m(in);
      out.push_back(m.p[1]);  // the bias after this step's update: state memory, not the arena
      return out;
    };
  };
  CompiledStep with(with_param(a), {.capture = {.params = a.p}, .executor = {.emulate_cuda_graph = true}});
  CompiledStep without(with_param(b), {.capture = {.params = b.p}, .executor = {.cuda_graph = false}});
  for (int i = 0; i < 6; ++i) {
    INFO("step " << i);
    const Tensor x = randn({32, 8}), t = randn({32, 4});
    const std::vector<Tensor> ga = with({x, t}), gb = without({x, t});
    REQUIRE(ga.size() == 3);
    for (size_t k = 0; k < ga.size(); ++k) CHECK(max_rel_diff(ga[k], gb[k]) == 0);
    CHECK(max_rel_diff(ga[2], a.p[1]) == 0);
  }
  const ExecutorStats& s = with.last_executor()->stats();
  CHECK(s.cuda_graph == "on");
  CHECK(s.cuda_graph_replays == 3);
}
