// A convolution's input and weight gradients run at once (conv_backward_pairs and the
// executor's concurrent pairs): the pass puts them side by side, or says why not; the pair
// runs one node per thread with the same chunks as alone (SerialChunks), so every result is
// the same bit for bit as running them one after the other. (Where chunking changes the
// bits, in 16-mixed ResNet training, tests/models/test_resnet_training.cpp compares graph
// and eager steps bit for bit.)
#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "ops/cpu/conv_winograd.h"
#include "tests/ops/graph/graph_test_util.h"

using namespace pacer;
using namespace pacer::graph;
using pacer::test::count_kind;
using pacer::test::joined;
using pacer::test::max_rel_diff;

namespace {

// Three conv + batch norm + ReLU layers (32 channels: 3x3 convolutions through Winograd
// and im2col alike), a loss, and the weights' gradients.
struct ConvStack {
  pacer::test::ConvBnReluStack stack{32, 31, 0.1};
  std::vector<Tensor>& rms = stack.rms;
  std::vector<Tensor> operator()(const std::vector<Tensor>& in) {
    Tensor loss = stack.loss_backward(in);
    return {loss, stack.ws[0].grad(), stack.ws[1].grad(), stack.ws[2].grad()};
  }
};

// Weight gradients right after the input gradient of the same dy.
int adjacent_pairs(const Graph& g) {
  int n = 0;
  for (size_t p = 1; p < g.nodes.size(); ++p)
    n += g.nodes[p].kind() == "conv2d_backward_weight" && g.nodes[p - 1].kind() == "conv2d_backward_input" &&
                 g.nodes[p].inputs[0] == g.nodes[p - 1].inputs[0]
             ? 1
             : 0;
  return n;
}

}  // namespace

TEST_CASE("conv_backward_pairs puts each input gradient next to its weight gradient, past the recomputation") {
  ConvStack stack;
  const std::vector<Tensor> in = {randn({2, 32, 16, 16}).set_requires_grad(), randn({2, 32, 16, 16})};
  // (No dce: the first convolution's input gradient, which nobody reads, stays.)
  Captured c = capture([&](const std::vector<Tensor>& x) { return stack(x); }, in);
  PassManager().add_list("bn_relu,conv_bn,recompute_bn_relu").run(c.graph);
  const int before = adjacent_pairs(c.graph);
  CHECK(before < 3);  // the recomputed ReLU outputs sit between them
  Graph unpaired = c.graph;
  const auto reports = PassManager().add("conv_backward_pairs").run(c.graph);
  const int inputs_grads = count_kind(c.graph, "conv2d_backward_input");
  CHECK(inputs_grads == 3);
  CHECK(adjacent_pairs(c.graph) == inputs_grads);
  CHECK(reports[0].fused_groups.size() == size_t(inputs_grads - before));
  CHECK(reports[0].rejected.empty());
  CHECK(c.graph.nodes.size() == unpaired.nodes.size());

  // A node between them that reads the input gradient (batch norm's backward, moved up to
  // just before the weight gradient) keeps that input gradient where it is.
  Graph blocked = unpaired;
  bool moved = false;
  for (size_t p = 0; p + 2 < blocked.nodes.size() && !moved; ++p) {
    if (blocked.nodes[p].kind() != "conv2d_backward_input" || blocked.nodes[p + 2].kind() != "conv2d_backward_weight")
      continue;
    const int dx = blocked.nodes[p].outputs[0];
    for (size_t r = p + 3; r < blocked.nodes.size() && !moved; ++r) {
      bool reads_dx = false;
      for (int v : blocked.nodes[r].inputs) reads_dx = reads_dx || v == dx;
      if (!reads_dx) continue;
      Node reader = blocked.nodes[r];
      blocked.nodes.erase(blocked.nodes.begin() + std::ptrdiff_t(r));
      blocked.nodes.insert(blocked.nodes.begin() + std::ptrdiff_t(p + 2), std::move(reader));
      moved = true;
    }
  }
  REQUIRE(moved);
  verify(blocked, "the reader moved up");  // what it reads is made before the weight gradient
  const auto refused = PassManager().add("conv_backward_pairs").run(blocked);
  CHECK(joined(refused[0].rejected).find("reads its output or writes what it reads") != std::string::npos);
}

TEST_CASE("the executor runs input and weight gradients at once, with results equal bit for bit") {
  const int saved = num_threads();
  set_num_threads(2);
  for (const auto mode : {ops::cpu::winograd::Mode::Auto, ops::cpu::winograd::Mode::Off}) {
    ops::cpu::winograd::set_mode(mode);
    ConvStack a, b;
    const std::vector<Tensor> in = {randn({2, 32, 16, 16}).set_requires_grad(), randn({2, 32, 16, 16})};
    Captured ca = capture([&](const std::vector<Tensor>& x) { return a(x); }, in);
    Captured cb = capture([&](const std::vector<Tensor>& x) { return b(x); }, in);
    for (Graph* g : {&ca.graph, &cb.graph}) PassManager().add_list("default").run(*g);
    // Workspaces unplanned: planned, this small graph's pairs would lift its arena, and go.
    Executor paired(ca.graph, {.plan_workspace = false});
    Executor alone(cb.graph, {.plan_workspace = false, .concurrent_pairs = false});
    const int64_t pairs = paired.stats().concurrent_pairs;
    CHECK(alone.stats().concurrent_pairs == 0);
    for (int run = 0; run < 3; ++run) {
      const std::vector<Tensor> x = {randn({2, 32, 16, 16}), randn({2, 32, 16, 16})};
      const std::vector<Tensor> got = paired.run(x), want = alone.run(x);
      for (size_t i = 0; i < want.size(); ++i) CHECK(max_rel_diff(got[i], want[i]) == 0);
    }
    // One pair per input gradient (the first convolution's is dropped: nobody reads it);
    // none through a CUDA graph (PACER_EMULATE_CUDA_GRAPH=1), which runs nodes in order.
    CHECK(count_kind(ca.graph, "conv2d_backward_input") == 2);
    CHECK(pairs == (paired.stats().cuda_graph.empty() ? 2 : 0));
    CHECK(paired.stats().concurrent_pairs == pairs);  // still paired after the runs
    for (size_t i = 0; i < a.rms.size(); ++i) CHECK(max_rel_diff(a.rms[i], b.rms[i]) == 0);
  }
  ops::cpu::winograd::set_mode(ops::cpu::winograd::Mode::Auto);
  set_num_threads(saved);
}
