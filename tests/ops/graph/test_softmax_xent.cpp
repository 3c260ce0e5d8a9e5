// softmax_xent: cross_entropy's log-softmax, pick, smoothing sum and backward fused into two
// nodes that never store the log-probabilities; left alone where the log-probabilities have
// another reader; the same numbers as the unfused graph and as eager, bit for bit.

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <string>
#include <vector>

#include "tests/ops/graph/graph_test_util.h"

using namespace pacer;
using namespace pacer::graph;
using test::count_kind;
using test::max_rel_diff;

namespace {

// A linear classifier's loss and gradients: logits [N, 11] (N = 37: rows not a multiple of
// 8 columns either), targets with ignore_index entries.
struct Classifier {
  Tensor w = randn({11, 5}).set_requires_grad(), b = randn({11}).set_requires_grad();
  double smoothing = 0.0;
  bool extra_reader = false;  // the log-probabilities also used outside the loss
  void to(DType t) {
    for (Tensor* p : {&w, &b}) *p = detach(*p).to(t).set_requires_grad();
  }
  std::vector<Tensor> operator()(const std::vector<Tensor>& in) {
    for (Tensor* p : {&w, &b}) p->set_grad(Tensor());
    Tensor logits = linear(in[0], w, b);
    Tensor loss = cross_entropy(logits, in[1], "mean", -100, smoothing);
    if (extra_reader) loss = loss + sum(log_softmax(logits, 1) * 0.5);
    loss.backward();
    return {loss, w.grad(), b.grad()};
  }
};

std::vector<Tensor> inputs(DType t) {
  std::vector<int64_t> target(37);
  for (size_t i = 0; i < target.size(); ++i) target[i] = i % 9 == 4 ? -100 : int64_t(i * 7 % 11);  // some ignored
  return {randn({37, 5}).to(t), from_vector(target)};
}

}  // namespace

TEST_CASE("softmax_xent fuses cross-entropy around the log-softmax, forward and backward, bit for bit") {
  for (double smoothing : {0.0, 0.1}) {
    for (DType t : {DType::F32, DType::F64}) {
      INFO(dtype_name(t) << " smoothing " << smoothing);
      manual_seed(31);
      Classifier model;
      model.smoothing = smoothing;
      model.to(t);
      const std::vector<Tensor> in = inputs(t);
      Captured c = capture([&](const std::vector<Tensor>& v) { return model(v); }, in);
      const Graph unfused = c.graph;
      const auto reports = PassManager().add("softmax_xent").run(c.graph);
      CHECK(count_kind(c.graph, "log_softmax_pick") == 1);
      CHECK(count_kind(c.graph, "log_softmax_xent_backward") == 1);
      CHECK(count_kind(c.graph, "log_softmax") == 0);  // the log-probabilities are never stored
      CHECK(count_kind(c.graph, "exp") == 0);
      CHECK(count_kind(c.graph, "scatter_add") == 0);
      const std::vector<Tensor> want = Executor(unfused).run(in);
      const std::vector<Tensor> got = Executor(c.graph, {.verify_fusion = true}).run(in);
      REQUIRE(got.size() == want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        INFO("output " << i);
        CHECK(max_rel_diff(got[i], want[i]) == 0);
      }
      const std::vector<Tensor> eager = model(in);
      for (size_t i = 0; i < eager.size(); ++i) CHECK(max_rel_diff(got[i], eager[i]) == 0);
    }
  }
}

TEST_CASE("softmax_xent leaves log-probabilities that are read outside the loss") {
  Classifier model;
  model.smoothing = 0.1;
  model.extra_reader = true;
  const std::vector<Tensor> in = inputs(DType::F32);
  Captured c = capture([&](const std::vector<Tensor>& v) { return model(v); }, in);
  const Graph unfused = c.graph;
  PassManager().add("softmax_xent").run(c.graph);
  // The extra reader keeps its own log_softmax (CSE would merge it with the loss's).
  CHECK(count_kind(c.graph, "log_softmax_pick") == 1);
  CHECK(count_kind(c.graph, "log_softmax") == 1);
  const std::vector<Tensor> want = Executor(unfused).run(in);
  const std::vector<Tensor> got = Executor(c.graph, {.verify_fusion = true}).run(in);
  for (size_t i = 0; i < want.size(); ++i) CHECK(max_rel_diff(got[i], want[i]) == 0);
  // After CSE the two log_softmax nodes are one with an outside reader: nothing fuses there.
  Captured d = capture([&](const std::vector<Tensor>& v) { return model(v); }, in);
  PassManager().add_list("cse,softmax_xent").run(d.graph);
  CHECK(count_kind(d.graph, "log_softmax_pick") == 0);
  CHECK(count_kind(d.graph, "log_softmax") == 1);
}
