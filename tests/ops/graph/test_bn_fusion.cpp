// The batch-norm fusions (bn_relu, conv_bn) and recompute_bn_relu: patterns matched, left
// alone where the batch norm's output has another reader, and the same numbers as the
// unfused graph, bit for bit.

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <string>
#include <vector>

#include "models/resnet.h"
#include "tests/ops/graph/graph_test_util.h"

using namespace pacer;
using namespace pacer::graph;
using test::count_kind;
using test::joined;
using test::max_rel_diff;

namespace {

// relu(bn(x)) and relu(bn(x) + r), with their backward, as one step: loss and gradients out.
struct BnUnit {
  Tensor w = randn({6}).set_requires_grad(), b = randn({6}).set_requires_grad();
  Tensor s = full({1, 6, 1, 1}, 1.5).set_requires_grad();  // its gradient checks the input's
  Tensor rm = zeros({6}), rv = ones({6});
  bool residual = false;
  bool two_readers = false;  // the batch norm's output also read by a second op
  void to(DType t) {
    for (Tensor* p : {&w, &b, &s}) *p = detach(*p).to(t).set_requires_grad();
  }
  std::vector<Tensor> operator()(const std::vector<Tensor>& in) {
    for (Tensor* p : {&w, &b, &s}) p->set_grad(Tensor());
    Tensor y = batch_norm(in[0] * s, w, b, rm, rv, true);
    Tensor z = relu(residual ? in[1] + y : y);
    Tensor loss = sum(z * in[2]);
    if (two_readers) loss = loss + sum(y);
    loss.backward();
    return {loss, z, s.grad(), w.grad(), b.grad()};
  }
};

}  // namespace

TEST_CASE("bn_relu fuses batch norm with add + ReLU, forward and backward, with the unfused numerics") {
  for (DType t : {DType::F32, DType::BF16, DType::F64}) {
    for (bool residual : {false, true}) {
      const std::string label = std::string(dtype_name(t)) + (residual ? " residual" : "");
      INFO(label);
      manual_seed(5);
      BnUnit unit;
      unit.residual = residual;
      unit.to(t);
      const std::vector<Tensor> in = {randn({4, 6, 5, 7}).to(t), randn({4, 6, 5, 7}).to(t), randn({4, 6, 5, 7}).to(t)};
      Captured c = capture([&](const std::vector<Tensor>& v) { return unit(v); }, in);
      const Graph unfused = c.graph;
      const auto reports = PassManager().add("bn_relu").run(c.graph);
      CHECK(count_kind(c.graph, residual ? "bn_add_relu" : "bn_relu") == 1);
      CHECK(count_kind(c.graph, "relu") == 0);
      // ReLU's backward joins batch norm's (the residual here is an input: no gradient).
      CHECK(count_kind(c.graph, "bn_relu_backward") == 1);
      CHECK(count_kind(c.graph, "batch_norm_train") == 0);
      const Tensor rm0 = clone(unit.rm), rv0 = clone(unit.rv);
      const std::vector<Tensor> want = Executor(unfused).run(in);
      copy_(unit.rm, rm0);
      copy_(unit.rv, rv0);
      const std::vector<Tensor> got = Executor(c.graph, {.verify_fusion = true}).run(in);
      for (size_t i = 0; i < want.size(); ++i) {
        INFO("output " << i);
        CHECK(max_rel_diff(got[i], want[i]) == 0);  // the same loops, the same roundings
      }
    }
  }
}

TEST_CASE("bn_relu leaves a batch norm whose output has a second reader") {
  BnUnit unit;
  unit.two_readers = true;
  const std::vector<Tensor> in = {randn({2, 6, 3, 3}), randn({2, 6, 3, 3}), randn({2, 6, 3, 3})};
  Captured c = capture([&](const std::vector<Tensor>& v) { return unit(v); }, in);
  PassManager().add("bn_relu").run(c.graph);
  CHECK(count_kind(c.graph, "bn_relu") == 0);
  CHECK(count_kind(c.graph, "batch_norm_train") == 1);
  CHECK(count_kind(c.graph, "relu") == 1);
}

TEST_CASE("conv_bn sums batch norm's statistics in the convolution's epilogue, bit for bit") {
  for (bool relu : {false, true}) {
    for (DType t : {DType::F32, DType::BF16}) {
      INFO((relu ? "relu " : "") << dtype_name(t));
      manual_seed(8);
      Tensor w = randn({6, 3, 3, 3}).to(t).set_requires_grad();
      Tensor gamma = randn({6}).to(t).set_requires_grad(), beta = randn({6}).to(t).set_requires_grad();
      Tensor rm = zeros({6}), rv = ones({6});
      auto f = [&](const std::vector<Tensor>& in) {
        for (Tensor* p : {&w, &gamma, &beta}) p->set_grad(Tensor());
        Tensor y = batch_norm(conv2d(in[0], w, Tensor(), {1, 1}, {1, 1}), gamma, beta, rm, rv, true);
        if (relu) y = pacer::relu(y);
        Tensor loss = sum(y * in[1]);
        loss.backward();
        return std::vector<Tensor>{loss, y, w.grad(), gamma.grad()};
      };
      const std::vector<Tensor> in = {randn({3, 3, 9, 9}).to(t), randn({3, 6, 9, 9}).to(t)};
      Captured c = capture(f, in);
      const Graph unfused = c.graph;
      PassManager().add_list("bn_relu,conv_bn").run(c.graph);
      CHECK(count_kind(c.graph, relu ? "conv_bn_relu" : "conv_bn") == 1);
      CHECK(count_kind(c.graph, "conv2d") == 0);
      const Tensor rm0 = clone(rm), rv0 = clone(rv);
      const std::vector<Tensor> want = Executor(unfused).run(in);
      copy_(rm, rm0);
      copy_(rv, rv0);
      const std::vector<Tensor> got = Executor(c.graph, {.verify_fusion = true}).run(in);
      for (size_t i = 0; i < want.size(); ++i) CHECK(max_rel_diff(got[i], want[i]) == 0);
    }
  }
}

TEST_CASE("recompute_bn_relu frees batch norm + ReLU outputs until the backward, with the same numbers") {
  test::ConvBnReluStack stack(8, 12);
  std::vector<Tensor>& rms = stack.rms;
  auto f = [&](const std::vector<Tensor>& in) {
    Tensor loss = stack.loss_backward(in);
    return std::vector<Tensor>{loss, stack.ws[0].grad(), stack.gs[1].grad(), stack.bs[2].grad()};
  };
  const std::vector<Tensor> in = {randn({4, 8, 12, 12}), randn({4, 8, 12, 12})};
  Captured c = capture(f, in);
  PassManager().add_list("bn_relu,conv_bn").run(c.graph);
  Graph kept = c.graph;
  const auto reports = PassManager().add("recompute_bn_relu").run(c.graph);
  CHECK(count_kind(c.graph, "bn_relu_apply") >= 1);  // the recomputations
  REQUIRE_FALSE(reports[0].fused_groups.empty());
  const Executor with_kept(kept), with_recompute(c.graph);
  CHECK(with_recompute.stats().planned_bytes < with_kept.stats().planned_bytes);
  std::vector<Tensor> saved;
  for (const Tensor& t : rms) saved.push_back(clone(t));
  const std::vector<Tensor> want = Executor(kept).run(in);
  for (size_t i = 0; i < rms.size(); ++i) copy_(rms[i], saved[i]);
  const std::vector<Tensor> got = Executor(c.graph, {.verify_fusion = true}).run(in);
  for (size_t i = 0; i < want.size(); ++i) CHECK(max_rel_diff(got[i], want[i]) == 0);
}

TEST_CASE("recompute_bn_relu recomputes a stage's residual units as a chain, shortcut first, with the same numbers") {
  manual_seed(21);
  // A stage of three bottlenecks: the first with a downsampling shortcut, the next two with
  // identity shortcuts, each unit's output the next one's residual.
  nn::Sequential stage;
  stage.push_back(std::make_shared<models::Bottleneck>(8, 4, 1, false));
  stage.push_back(std::make_shared<models::Bottleneck>(16, 4, 1, false));
  stage.push_back(std::make_shared<models::Bottleneck>(16, 4, 1, false));
  const std::vector<Tensor> params = stage.parameters();
  auto f = [&](const std::vector<Tensor>& in) {
    for (Tensor p : params) p.set_grad(Tensor());
    const Tensor d = stage.forward(in[0]) - in[1];
    Tensor loss = sum(d * d);
    loss.backward();
    std::vector<Tensor> out = {loss};
    for (const Tensor& p : params) out.push_back(p.grad());
    return out;
  };
  const std::vector<Tensor> in = {randn({2, 8, 10, 10}), randn({2, 16, 10, 10})};
  std::vector<Tensor> buffers;
  for (const auto& [name, t] : stage.state_dict()) buffers.push_back(t);
  std::vector<Tensor> saved;
  for (const Tensor& t : buffers) saved.push_back(clone(t));
  Captured c = capture(f, in);
  PassManager().add_list("bn_relu,conv_bn").run(c.graph);
  const Graph kept = c.graph;
  const auto reports = PassManager().add("recompute_bn_relu").run(c.graph);
  INFO(joined(reports[0].fused_groups) << joined(reports[0].rejected));
  // The three residual units' outputs (bn_add_relu_apply nodes) and the shortcut's batch
  // norm (bn_apply), which the first of them adds.
  CHECK(count_kind(c.graph, "bn_add_relu_apply") == 3);
  CHECK(count_kind(c.graph, "bn_apply") == 1);
  CHECK(Executor(c.graph).stats().planned_bytes < Executor(kept).stats().planned_bytes);
  const std::vector<Tensor> want = Executor(kept).run(in);
  {
    NoGradGuard no_grad;  // the running statistics back as they were
    for (size_t i = 0; i < buffers.size(); ++i) copy_(buffers[i], saved[i]);
  }
  const std::vector<Tensor> got = Executor(c.graph, {.verify_fusion = true}).run(in);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) CHECK(max_rel_diff(got[i], want[i]) == 0);
}

TEST_CASE("batch norm keeps float32 weight and bias beside half data: no casts, float32 gradients, fused kernels too") {
  for (DType t : {DType::BF16, DType::F16}) {
    INFO(dtype_name(t));
    manual_seed(41);
    Tensor w = randn({6}).set_requires_grad(), b = randn({6}).set_requires_grad();
    Tensor rm = zeros({6}), rv = ones({6});
    auto f = [&](const std::vector<Tensor>& in) {
      for (Tensor* p : {&w, &b}) p->set_grad(Tensor());
      Tensor z = relu(batch_norm(in[0], w, b, rm, rv, true));
      Tensor loss = sum(z * in[1]);
      loss.backward();
      return std::vector<Tensor>{loss, z, w.grad(), b.grad()};
    };
    const std::vector<Tensor> in = {randn({4, 6, 5, 5}).to(t), randn({4, 6, 5, 5}).to(t)};
    const std::vector<Tensor> eager = f(in);
    CHECK(eager[1].dtype() == t);
    CHECK(eager[2].dtype() == DType::F32);  // the parameters' gradients stay float32
    CHECK(eager[3].dtype() == DType::F32);
    // Against the same step in float32 from the same (half) values: half's rounding apart.
    const std::vector<Tensor> wide = f({in[0].to(DType::F32), in[1].to(DType::F32)});
    const double tol = t == DType::BF16 ? 3e-2 : 4e-3;
    CHECK(max_rel_diff(eager[1], wide[1]) <= tol);
    CHECK(max_rel_diff(eager[2], wide[2]) <= 1e-3);  // sums in f32 of the same half inputs
    CHECK(max_rel_diff(eager[3], wide[3]) <= 1e-3);
    // Captured: the parameters are read as they are, no casts to the data's type and back.
    Captured c = capture(f, in);
    int param_casts = 0;  // casts of [6] tensors (scalars of the loss and running-stat update aside)
    for (const graph::Node& n : c.graph.nodes)
      if (n.kind() == "cast" && c.graph.values[size_t(n.inputs[0])].meta.sizes == Shape{6}) ++param_casts;
    CHECK(param_casts == 0);
    const Graph unfused = c.graph;
    PassManager().add("bn_relu").run(c.graph);
    CHECK(count_kind(c.graph, "bn_relu") == 1);
    CHECK(count_kind(c.graph, "bn_relu_backward") == 1);
    const Tensor rm0 = clone(rm), rv0 = clone(rv);
    const std::vector<Tensor> want = Executor(unfused).run(in);
    copy_(rm, rm0);
    copy_(rv, rv0);
    const std::vector<Tensor> got = Executor(c.graph, {.verify_fusion = true}).run(in);
    for (size_t i = 0; i < want.size(); ++i) {
      INFO("output " << i);
      CHECK(max_rel_diff(got[i], want[i]) == 0);
    }
  }
}

TEST_CASE("float32 batch-norm parameters beside bf16 data through conv_bn and recompute_bn_relu, bit for bit") {
  manual_seed(43);
  Tensor cw1 = (randn({6, 6, 3, 3}) * 0.2).to(DType::BF16).set_requires_grad();
  Tensor cw2 = (randn({6, 6, 1, 1}) * 0.3).to(DType::BF16).set_requires_grad();
  Tensor w = randn({6}).set_requires_grad(), b = randn({6}).set_requires_grad();  // float32
  auto f = [&](const std::vector<Tensor>& in) {
    for (Tensor* p : {&cw1, &cw2, &w, &b}) p->set_grad(Tensor());
    // The ReLU output is read by the second convolution and by its weight gradient: kept for
    // the backward, unless recompute_bn_relu makes it again there.
    const Tensor h = relu(batch_norm(conv2d(in[0], cw1, Tensor(), {1, 1}, {1, 1}), w, b, Tensor(), Tensor(), true));
    Tensor loss = sum(conv2d(h, cw2) * in[1]);
    loss.backward();
    return std::vector<Tensor>{loss, cw1.grad(), cw2.grad(), w.grad(), b.grad()};
  };
  const std::vector<Tensor> in = {randn({2, 6, 7, 7}).to(DType::BF16), randn({2, 6, 7, 7}).to(DType::BF16)};
  Captured c = capture(f, in);
  const Graph unfused = c.graph;
  PassManager().add_list("bn_relu,conv_bn,recompute_bn_relu").run(c.graph);
  CHECK(count_kind(c.graph, "conv_bn_relu") == 1);
  CHECK(count_kind(c.graph, "bn_relu_apply") == 1);
  const std::vector<Tensor> want = Executor(unfused).run(in);
  const std::vector<Tensor> got = Executor(c.graph, {.verify_fusion = true}).run(in);
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("output " << i);
    CHECK(max_rel_diff(got[i], want[i]) == 0);
  }
  CHECK(got[3].dtype() == DType::F32);
}
