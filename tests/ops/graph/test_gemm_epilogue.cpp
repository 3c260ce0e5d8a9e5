// gemm_epilogue: ReLU fused into the linear before it, and ReLU's backward + the bias
// gradient into the GEMM before them; left alone where an intermediate has another reader
// or there is no bias; the same numbers as the unfused graph, bit for bit.

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

// linear -> relu -> linear over [4, 5, 6] inputs (the linears see [20, 6] views), as one step.
struct Mlp {
  Tensor w1 = randn({7, 6}).set_requires_grad(), b1 = randn({7}).set_requires_grad();
  Tensor w2 = randn({3, 7}).set_requires_grad(), b2 = randn({3}).set_requires_grad();
  bool bias = true;
  bool second_reader = false;  // the pre-activation also read by the loss
  void to(DType t) {
    for (Tensor* p : {&w1, &b1, &w2, &b2}) *p = detach(*p).to(t).set_requires_grad();
  }
  std::vector<Tensor> operator()(const std::vector<Tensor>& in) {
    for (Tensor* p : {&w1, &b1, &w2, &b2}) p->set_grad(Tensor());
    Tensor x = in[0] * 1.0;  // a gradient for the input too
    Tensor pre = linear(x, w1, bias ? b1 : Tensor());
    Tensor h = relu(pre);
    Tensor loss = sum(linear(h, w2, b2) * in[1]);
    if (second_reader) loss = loss + sum(pre);
    loss.backward();
    std::vector<Tensor> out = {loss, h, w1.grad(), w2.grad(), b2.grad()};
    if (bias) out.push_back(b1.grad());
    return out;
  }
};

}  // namespace

TEST_CASE("gemm_epilogue fuses ReLU into the linear, and ReLU's backward + bias gradient into the GEMM, bit for bit") {
  for (DType t : {DType::F32, DType::BF16, DType::F64}) {
    INFO(dtype_name(t));
    manual_seed(21);
    Mlp mlp;
    mlp.to(t);
    const std::vector<Tensor> in = {randn({4, 5, 6}).to(t), randn({4, 5, 3}).to(t)};
    Captured c = capture([&](const std::vector<Tensor>& v) { return mlp(v); }, in);
    const Graph unfused = c.graph;
    const auto reports = PassManager().add("gemm_epilogue").run(c.graph);
    CHECK(count_kind(c.graph, "linear_relu") == 1);
    CHECK(count_kind(c.graph, "mm_relu_bgrad") == 1);
    CHECK(count_kind(c.graph, "relu") == 0);
    CHECK(count_kind(c.graph, "relu_backward") == 0);
    CHECK(test::joined(reports[0].fused_groups).find("mm_relu_bgrad") != std::string::npos);
    const std::vector<Tensor> want = Executor(unfused).run(in);
    const std::vector<Tensor> got = Executor(c.graph, {.verify_fusion = true}).run(in);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      INFO("output " << i);
      CHECK(max_rel_diff(got[i], want[i]) == 0);  // the same GEMMs, loops and roundings
    }
    // And against eager: the step run again outside any graph.
    const std::vector<Tensor> eager = mlp(in);
    for (size_t i = 0; i < eager.size(); ++i) CHECK(max_rel_diff(got[i], eager[i]) == 0);
  }
}

TEST_CASE("gemm_epilogue leaves a pre-activation with a second reader, and a layer without a bias gradient") {
  {
    Mlp mlp;
    mlp.second_reader = true;
    const std::vector<Tensor> in = {randn({4, 5, 6}), randn({4, 5, 3})};
    Captured c = capture([&](const std::vector<Tensor>& v) { return mlp(v); }, in);
    PassManager().add("gemm_epilogue").run(c.graph);
    CHECK(count_kind(c.graph, "linear_relu") == 0);
    CHECK(count_kind(c.graph, "relu") == 1);
    // The pre-activation's gradient is then relu_backward's plus the second reader's, and
    // the bias gradient sums that: no ReLU backward + bias gradient pattern either.
    CHECK(count_kind(c.graph, "mm_relu_bgrad") == 0);
    CHECK(count_kind(c.graph, "relu_backward") == 1);
  }
  {
    Mlp mlp;
    mlp.bias = false;
    const std::vector<Tensor> in = {randn({4, 5, 6}), randn({4, 5, 3})};
    Captured c = capture([&](const std::vector<Tensor>& v) { return mlp(v); }, in);
    const Graph unfused = c.graph;
    PassManager().add("gemm_epilogue").run(c.graph);
    CHECK(count_kind(c.graph, "linear_relu") == 1);  // no bias: still a linear + ReLU
    CHECK(count_kind(c.graph, "mm_relu_bgrad") == 0);
    CHECK(count_kind(c.graph, "relu_backward") == 1);
    const std::vector<Tensor> want = Executor(unfused).run(in);
    const std::vector<Tensor> got = Executor(c.graph, {.verify_fusion = true}).run(in);
    for (size_t i = 0; i < want.size(); ++i) CHECK(max_rel_diff(got[i], want[i]) == 0);
  }
}

TEST_CASE("gemm_epilogue runs ReLU in a biased convolution's epilogue and joins its backward with the bias gradient, bit for bit") {
  for (DType t : {DType::F32, DType::BF16, DType::F64}) {
    for (bool bias : {true, false}) {
      INFO(dtype_name(t) << (bias ? " bias" : " no bias"));
      manual_seed(23);
      Tensor w = randn({5, 3, 3, 3}).to(t).set_requires_grad(), b = randn({5}).to(t).set_requires_grad();
      auto f = [&](const std::vector<Tensor>& in) {
        for (Tensor* p : {&w, &b}) p->set_grad(Tensor());
        Tensor y = pacer::relu(conv2d(in[0], w, bias ? b : Tensor(), {1, 1}, {1, 1}));
        Tensor loss = sum(y * in[1]);
        loss.backward();
        std::vector<Tensor> out = {loss, y, w.grad()};
        if (bias) out.push_back(b.grad());
        return out;
      };
      const std::vector<Tensor> in = {randn({3, 3, 7, 6}).to(t), randn({3, 5, 7, 6}).to(t)};
      Captured c = capture(f, in);
      const Graph unfused = c.graph;
      PassManager().add("gemm_epilogue").run(c.graph);
      CHECK(count_kind(c.graph, "conv_bias_relu") == (bias ? 1 : 0));
      CHECK(count_kind(c.graph, "relu") == (bias ? 0 : 1));
      // The backward: ReLU's and the bias gradient in one sweep (no bias: nothing to join).
      CHECK(count_kind(c.graph, "relu_bgrad") == (bias ? 1 : 0));
      CHECK(count_kind(c.graph, "relu_backward") == (bias ? 0 : 1));
      const std::vector<Tensor> want = Executor(unfused).run(in);
      const std::vector<Tensor> got = Executor(c.graph, {.verify_fusion = true}).run(in);
      for (size_t i = 0; i < want.size(); ++i) CHECK(max_rel_diff(got[i], want[i]) == 0);
      const std::vector<Tensor> eager = f(in);
      for (size_t i = 0; i < eager.size(); ++i) CHECK(max_rel_diff(got[i], eager[i]) == 0);
    }
  }
}
