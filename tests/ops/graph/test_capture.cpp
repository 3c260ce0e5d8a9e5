// Graph capture and the static executor (ops/graph): a replay equals the eager step, state
// is read and updated by reference, the memory plan reuses memory, and what cannot be
// captured is refused with a clear message.

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/scratch.h"
#include "core/thread_pool.h"
#include "models/graph_workloads.h"
#include "models/precision_step.h"
#include "models/resnet.h"
#include "ops/cpu/conv_winograd.h"
#include "ops/graph/compiled_step.h"
#include "optim/sgd.h"
#include "tests/test_util.h"

using namespace pacer;
using namespace pacer::graph;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  const std::vector<double> x = a.to(DType::F64).to_vector<double>(), y = b.to(DType::F64).to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

int count_kind(const Graph& g, const std::string& kind) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.kind() == kind ? 1 : 0;
  return n;
}

// One training step of `block` (forward, loss, backward, SGD with momentum), as a step
// function of (x, target).
struct BlockTrainer {
  std::shared_ptr<nn::UnaryModule> block;
  std::unique_ptr<optim::Sgd> opt;

  explicit BlockTrainer(std::shared_ptr<nn::UnaryModule> b) : block(std::move(b)) {
    opt = std::make_unique<optim::Sgd>(block->parameters(),
                                       optim::SgdOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4});
  }
  std::vector<Tensor> step(const std::vector<Tensor>& in) {
    const Tensor d = block->forward(in[0]) - in[1];
    const Tensor loss = mean(d * d);
    models::backward_and_step(loss, *opt, nullptr);
    return {loss};
  }
  // One eager step (the optimizer makes its state), then the next one captured.
  Captured warm_and_capture(const std::vector<Tensor>& in) {
    step(in);
    return capture([&](const std::vector<Tensor>& v) { return step(v); }, in, {.params = block->parameters()});
  }
};

std::shared_ptr<nn::UnaryModule> bottleneck(uint64_t seed) {
  manual_seed(seed);
  return std::make_shared<models::Bottleneck>(16, 4, 1, false);
}

}  // namespace

TEST_CASE("capture records a forward (inputs, state, nodes) and a replay on new inputs equals eager") {
  Tensor w = randn({4, 3});
  const Tensor b = randn({3});
  auto f = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{relu(matmul(in[0], w) + b)}; };
  const Tensor x0 = randn({5, 4});
  Captured c = capture(f, {x0});
  CHECK(c.graph.inputs.size() == 1);
  CHECK(count_kind(c.graph, "matmul") + count_kind(c.graph, "mm") >= 1);
  CHECK(count_kind(c.graph, "relu") == 1);
  int states = 0;
  for (const Value& v : c.graph.values) states += v.kind == ValueKind::State ? 1 : 0;
  CHECK(states >= 2);  // w and b, read by reference
  CHECK(max_abs_diff(c.outputs[0], f({x0})[0]) == 0);

  Executor ex(c.graph);
  const Tensor x1 = randn({5, 4});
  CHECK(max_abs_diff(ex.run({x1})[0], f({x1})[0]) == 0);
  // State is read by reference: a changed weight is seen by the next run.
  {
    NoGradGuard ng;
    mul_(w, wrap(2.0));
  }
  CHECK(max_abs_diff(ex.run({x1})[0], f({x1})[0]) == 0);
  // The text form names the ops and shapes.
  const std::string text = to_text(c.graph);
  CHECK(text.find("relu(") != std::string::npos);
  CHECK(text.find("float32[5, 3]") != std::string::npos);
  CHECK(to_dot(c.graph).find("digraph") != std::string::npos);
}

TEST_CASE("a captured training step of a ResNet bottleneck equals the eager step, step after step") {
  BlockTrainer eager(bottleneck(7)), graphed(bottleneck(7));
  CompiledStep step([&](const std::vector<Tensor>& in) { return graphed.step(in); },
                    {.capture = {.params = graphed.block->parameters()}});
  manual_seed(11);
  for (int i = 0; i < 4; ++i) {
    const Tensor x = randn({2, 16, 6, 6}), t = randn({2, 16, 6, 6});
    const Tensor le = eager.step({x, t})[0];
    const Tensor lg = step({x, t})[0];
    INFO("step " << i);
    CHECK(max_abs_diff(le, lg) == 0);
  }
  CHECK(step.captures() == 1);
  REQUIRE(step.last_executor() != nullptr);
  // The default passes fused it: the optimizer's updates run as one multi-tensor loop.
  CHECK(count_kind(step.last_executor()->graph(), "multi_tensor_pointwise") >= 1);
  CHECK(count_kind(step.last_executor()->graph(), "mul_") == 0);
  // Parameters, running statistics and gradients agree after replays.
  const auto se = eager.block->state_dict(), sg = graphed.block->state_dict();
  REQUIRE(se.size() == sg.size());
  for (size_t i = 0; i < se.size(); ++i) {
    INFO(se[i].first);
    CHECK(max_abs_diff(se[i].second, sg[i].second) == 0);
  }
  const auto pe = eager.block->parameters(), pg = graphed.block->parameters();
  for (size_t i = 0; i < pe.size(); ++i) {
    REQUIRE(pg[i].grad().defined());
    CHECK(max_abs_diff(pe[i].grad(), pg[i].grad()) == 0);
  }
}

TEST_CASE("a new input shape captures again, and replays check the captured signature") {
  BlockTrainer t(bottleneck(3));
  CompiledStep step([&](const std::vector<Tensor>& in) { return t.step(in); }, {.eager_warmup = 0});
  step({randn({2, 16, 4, 4}), randn({2, 16, 4, 4})});
  step({randn({2, 16, 4, 4}), randn({2, 16, 4, 4})});
  CHECK(step.captures() == 1);
  step({randn({1, 16, 5, 5}), randn({1, 16, 5, 5})});
  CHECK(step.captures() == 2);

  Executor ex(capture([](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0] * 2.0}; },
                      {randn({3})}).graph);
  CHECK(test::error_of([&] { ex.run({randn({4})}); }).find("input 0 must be float32 [3]") != std::string::npos);
  CHECK(test::error_of([&] { ex.run({}); }).find("expected 1 inputs") != std::string::npos);
}

TEST_CASE("the memory plan reuses memory and gives the same results as unplanned memory") {
  BlockTrainer a(bottleneck(5)), b(bottleneck(5));
  const Tensor x = randn({2, 16, 6, 6}), t = randn({2, 16, 6, 6});
  Captured ca = a.warm_and_capture({x, t}), cb = b.warm_and_capture({x, t});
  Executor planned(ca.graph), unplanned(cb.graph, {.plan_memory = false});
  CHECK(planned.stats().planned_tensors > 10);
  CHECK(planned.stats().planned_bytes > 0);
  CHECK(planned.stats().planned_bytes < planned.stats().unplanned_bytes / 2);
  CHECK(unplanned.stats().planned_bytes == 0);
  for (int i = 0; i < 3; ++i) {
    const Tensor x2 = randn({2, 16, 6, 6}), t2 = randn({2, 16, 6, 6});
    CHECK(max_abs_diff(planned.run({x2, t2})[0], unplanned.run({x2, t2})[0]) == 0);
  }
  const auto pa = a.block->parameters(), pb = b.block->parameters();
  for (size_t i = 0; i < pa.size(); ++i) CHECK(max_abs_diff(pa[i], pb[i]) == 0);
}

TEST_CASE("gradients live in the planned arena, and a gradient held across runs keeps its values") {
  BlockTrainer a(bottleneck(9));
  const Tensor x = randn({2, 16, 6, 6}), t = randn({2, 16, 6, 6});
  Captured c = a.warm_and_capture({x, t});
  REQUIRE(!c.graph.grad_outputs.empty());
  Executor ex(c.graph);
  const auto params = a.block->parameters();
  ex.run({x, t});  // measures the kernels' scratch: the arena is planned again after it
  ex.run({x, t});
  CHECK(ex.in_arena(params[0].grad()));
  // Nobody holds the gradients when the next run starts: it writes them where it did.
  const void* where = params[0].grad().data();
  ex.run({x, t});
  CHECK(params[0].grad().data() == where);
  // `held` outlives the next run's start: that run takes a new arena, `held` is untouched.
  const Tensor held = params[0].grad();
  const std::vector<float> kept = held.to_vector<float>();
  ex.run({randn({2, 16, 6, 6}), randn({2, 16, 6, 6})});
  CHECK(held.to_vector<float>() == kept);
  CHECK(!ex.in_arena(held));
  CHECK(ex.in_arena(params[0].grad()));
  CHECK(params[0].grad().to_vector<float>() != kept);
}

TEST_CASE("kernel scratch is measured in the first run and served from the arena after it") {
  // im2col's column buffers (4 channels), then Winograd's transforms (every 3x3 forced).
  for (const auto mode : {ops::cpu::winograd::Mode::Auto, ops::cpu::winograd::Mode::Always}) {
    ops::cpu::winograd::set_mode(mode);
    BlockTrainer a(bottleneck(11)), b(bottleneck(11));
    const Tensor x = randn({2, 16, 6, 6}), t = randn({2, 16, 6, 6});
    Captured ca = a.warm_and_capture({x, t}), cb = b.warm_and_capture({x, t});
    Executor planned(ca.graph), plain(cb.graph, {.plan_workspace = false});
    CHECK(planned.stats().workspace_nodes == 0);  // nothing measured yet
    const size_t without = planned.stats().planned_bytes;
    CHECK(max_abs_diff(planned.run({x, t})[0], plain.run({x, t})[0]) == 0);
    const ExecutorStats measured = planned.stats();
    const ScratchCounts before = scratch_counts();
    for (int i = 0; i < 3; ++i) {
      const Tensor x2 = randn({2, 16, 6, 6}), t2 = randn({2, 16, 6, 6});
      CHECK(max_abs_diff(planned.run({x2, t2})[0], plain.run({x2, t2})[0]) == 0);
    }
    CHECK(plain.stats().workspace_nodes == 0);
    CHECK(scratch_counts().overflowed == before.overflowed);
    // Not through a CUDA graph (PACER_EMULATE_CUDA_GRAPH=1), whose memory must not move.
    if (planned.stats().cuda_graph.empty()) {
      CHECK(measured.workspace_nodes > 0);
      CHECK(measured.largest_workspace > 0);
      CHECK(measured.planned_bytes >= without);
      CHECK(scratch_counts().from_region > before.from_region);
      // Per-thread scratch follows the pool's size: a new size is measured again (one run
      // with counted scratch), then served from the new plan, with no overflows either way.
      const int threads = num_threads();
      set_num_threads(threads + 2);  // more per-thread buffers than measured
      const ScratchCounts resized = scratch_counts();
      for (int i = 0; i < 2; ++i) {
        const Tensor x2 = randn({2, 16, 6, 6}), t2 = randn({2, 16, 6, 6});
        CHECK(max_abs_diff(planned.run({x2, t2})[0], plain.run({x2, t2})[0]) == 0);
      }
      CHECK(scratch_counts().overflowed == resized.overflowed);
      CHECK(scratch_counts().from_region > resized.from_region);
      set_num_threads(threads);
    } else {
      CHECK(measured.workspace_nodes == 0);
    }
    const auto pa = a.block->parameters(), pb = b.block->parameters();
    for (size_t i = 0; i < pa.size(); ++i) CHECK(max_abs_diff(pa[i], pb[i]) == 0);
  }
  ops::cpu::winograd::set_mode(ops::cpu::winograd::Mode::Auto);
}

TEST_CASE("capture refuses host reads, random ops and nesting, naming the problem") {
  const Tensor x = randn({3});
  const std::string host = test::error_of([&] {
    capture([](const std::vector<Tensor>& in) {
      const double s = sum(in[0]).item<double>();
      return std::vector<Tensor>{in[0] * s};
    }, {x});
  });
  CHECK(host.find("item: reading a tensor's value on the host is not allowed during graph capture") !=
        std::string::npos);
  const std::string random = test::error_of([&] {
    capture([](const std::vector<Tensor>& in) { return std::vector<Tensor>{in[0] + randn({3})}; }, {x});
  });
  CHECK(random.find("randn: a random op cannot be captured") != std::string::npos);
  const std::string nested = test::error_of([&] {
    capture([&](const std::vector<Tensor>& in) {
      capture([](const std::vector<Tensor>& i2) { return i2; }, in);
      return in;
    }, {x});
  });
  CHECK(nested.find("captures do not nest") != std::string::npos);
  // After a refused capture, host reads work again.
  CHECK(sum(x).item<double>() == doctest::Approx(sum(x).item<double>()));
}

TEST_CASE("the verifier catches a use before definition, a double definition and stale use lists") {
  Captured c = capture([](const std::vector<Tensor>& in) { return std::vector<Tensor>{relu(neg(in[0]))}; },
                       {randn({4})});
  verify(c.graph, "test");
  Graph swapped = c.graph;
  std::swap(swapped.nodes[0], swapped.nodes[1]);
  CHECK(test::error_of([&] { verify(swapped, "swap"); }).find("after swap") != std::string::npos);
  CHECK(test::error_of([&] { verify(swapped, "swap"); }).find("read before any node defines it") != std::string::npos);
  Graph twice = c.graph;
  twice.nodes[1].outputs = twice.nodes[0].outputs;
  twice.rebuild_uses();
  CHECK(test::error_of([&] { verify(twice, "t"); }).find("defined twice") != std::string::npos);
  Graph stale = c.graph;
  stale.values[size_t(stale.nodes[1].inputs[0])].uses.clear();
  CHECK(test::error_of([&] { verify(stale, "t"); }).find("use list") != std::string::npos);
}

TEST_CASE("capture refuses a step that accumulates into gradients left by an earlier step") {
  Tensor w = randn({3}).set_requires_grad();
  auto step = [&](const std::vector<Tensor>& in) {
    const Tensor loss = sum(w * in[0]);
    loss.backward();  // no zero_grad: accumulates into w.grad
    return std::vector<Tensor>{loss};
  };
  step({randn({3})});
  const std::string e = test::error_of([&] { capture(step, {randn({3})}, {.params = {w}}); });
  CHECK(e.find("reads a gradient left in .grad by an earlier step") != std::string::npos);
}

TEST_CASE("captured steps equal eager steps for a Transformer encoder layer and an LSTM layer, 32 and bf16-mixed") {
  for (const char* name : {"transformer-layer", "lstm-layer"}) {
    for (const char* precision : {"32", "bf16-mixed"}) {
      INFO(name << " " << precision);
      const models::GraphWorkloadOptions o{.batch = 2, .seq_len = 5, .precision = precision};
      models::GraphWorkload eager = models::make_graph_workload(name, o);
      models::GraphWorkload graphed = models::make_graph_workload(name, o);
      CompiledStep step(graphed.step, {.capture = {.params = graphed.params}});
      for (int i = 0; i < 4; ++i) {  // eager, captured, two replays
        const Tensor le = eager.step(eager.inputs)[0];
        const Tensor lg = step(graphed.inputs)[0];
        CHECK(max_abs_diff(le, lg) == 0);
      }
      CHECK(step.captures() == 1);
      for (size_t i = 0; i < eager.params.size(); ++i) CHECK(max_abs_diff(eager.params[i], graphed.params[i]) == 0);
    }
  }
}

TEST_CASE("captured 16-mixed CPU steps with dynamic loss scaling equal eager ones, an overflow skipped alike") {
  for (const char* name : {"transformer-layer", "lstm-layer"}) {
    INFO(name);
    const models::GraphWorkloadOptions o{.batch = 2, .seq_len = 5, .precision = "16-mixed"};
    models::GraphWorkload eager = models::make_graph_workload(name, o);
    models::GraphWorkload graphed = models::make_graph_workload(name, o);
    CompiledStep step(graphed.step, {.capture = {.params = graphed.params}});
    // Eager, captured, replays. Steps 0 and 4 overflow (huge inputs): the step is captured
    // before the optimizer has made its state (an overflowed first step makes none).
    for (int i = 0; i < 6; ++i) {
      std::vector<Tensor> ie = eager.inputs, ig = graphed.inputs;
      if (i == 0 || i == 4) {
        ie[0] = ie[0] * 1e30;
        ig[0] = ig[0] * 1e30;
      }
      const Tensor le = eager.step(ie)[0];
      const Tensor lg = step(ig)[0];
      CHECK(max_abs_diff(le, lg) == 0);
      for (size_t k = 0; k < eager.params.size(); ++k) CHECK(max_abs_diff(eager.params[k], graphed.params[k]) == 0);
    }
    CHECK(step.captures() == 1);  // the capture of step 1 made the optimizer's state: dropped
    CHECK(step.last_refusal().find("made its state") != std::string::npos);
  }
}

TEST_CASE("with use_lr_tensors a captured step follows the learning rate set between replays") {
  BlockTrainer eager(bottleneck(9)), graphed(bottleneck(9));
  eager.opt->use_lr_tensors();
  graphed.opt->use_lr_tensors();
  CompiledStep step([&](const std::vector<Tensor>& in) { return graphed.step(in); },
                    {.capture = {.params = graphed.block->parameters()}});
  manual_seed(4);
  for (int i = 0; i < 5; ++i) {
    const double lr = 0.1 / (1 + i);  // a schedule, set outside the step
    eager.opt->set_lr(lr);
    graphed.opt->set_lr(lr);
    const Tensor x = randn({2, 16, 6, 6}), t = randn({2, 16, 6, 6});
    eager.step({x, t});
    step({x, t});
  }
  CHECK(step.captures() == 1);
  const auto pe = eager.block->parameters(), pg = graphed.block->parameters();
  for (size_t i = 0; i < pe.size(); ++i) CHECK(max_abs_diff(pe[i], pg[i]) == 0);

  // Without it the replays would keep the captured rate: the results differ.
  BlockTrainer fixed(bottleneck(9));
  CompiledStep frozen([&](const std::vector<Tensor>& in) { return fixed.step(in); },
                      {.capture = {.params = fixed.block->parameters()}});
  manual_seed(4);
  for (int i = 0; i < 5; ++i) {
    fixed.opt->set_lr(0.1 / (1 + i));
    frozen({randn({2, 16, 6, 6}), randn({2, 16, 6, 6})});
  }
  double diff = 0;
  const auto pf = fixed.block->parameters();
  for (size_t i = 0; i < pe.size(); ++i) diff = std::max(diff, max_abs_diff(pe[i], pf[i]));
  CHECK(diff > 1e-4);

  Tensor w = randn({3}).set_requires_grad();
  optim::Adam adam({w}, {});
  CHECK(test::error_of([&] { adam.use_lr_tensors(); }).find("supported by SGD and LARS only") != std::string::npos);
}

TEST_CASE("a learning rate changed through options() inside a captured step is refused, naming set_lr") {
  BlockTrainer t(bottleneck(2));
  t.opt->use_lr_tensors();
  t.step({randn({2, 16, 4, 4}), randn({2, 16, 4, 4})});  // the optimizer's state
  t.opt->options().lr = 0.01;                             // bypasses set_lr
  const std::string e = test::error_of([&] {
    capture([&](const std::vector<Tensor>& in) { return t.step(in); }, {randn({2, 16, 4, 4}), randn({2, 16, 4, 4})},
            {.params = t.block->parameters()});
  });
  CHECK(e.find("call set_lr") != std::string::npos);
}
