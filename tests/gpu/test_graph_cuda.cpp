// Graph capture and the fusion passes on CUDA: fused pointwise nodes run as NVRTC-compiled
// kernels (one launch over every tensor set of a multi-tensor node), and a captured
// training step replays what the eager CUDA step computes.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "core/cuda/stream.h"
#include "ops/api.h"
#include "ops/cuda/conv.h"
#include "ops/graph/capture.h"
#include "ops/graph/compiled_step.h"
#include "ops/graph/executor.h"
#include "ops/graph/pass.h"
#include "optim/sgd.h"
#include "tests/ops/op_table.h"
#include "tests/test_util.h"

namespace pacer::test {

namespace {

int count_kind(const graph::Graph& g, const std::string& kind) {
  int n = 0;
  for (const graph::Node& node : g.nodes) n += node.kind() == kind ? 1 : 0;
  return n;
}

double max_rel(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to(kCPU).to(DType::F64).to_vector<double>();
  const std::vector<double> y = b.to(kCPU).to(DType::F64).to_vector<double>();
  REQUIRE(x.size() == y.size());
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]) / (1 + std::abs(y[i])));
  return m;
}

}  // namespace

TEST_CASE("cuda graph: a fused pointwise chain (f32, bf16) and a fused squared norm equal the eager CUDA ops") {
  const Device cuda("cuda");
  auto f = [](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{relu(in[0] * in[1] + 2.0) - sigmoid(in[0]), sum(in[0] * in[0])};
  };
  for (DType t : {DType::F32, DType::BF16}) {
    const Tensor x = cast(uniform({300, 257}, -2, 2, 41), t).to(cuda), y = cast(uniform({300, 257}, -2, 2, 42), t).to(cuda);
    graph::Captured c = graph::capture(f, {x, y});
    graph::PassManager().add_list("cast_elim,pointwise_fusion").run(c.graph);
    CHECK(count_kind(c.graph, "fused_pointwise") == 2);
    const std::vector<Tensor> got = graph::Executor(c.graph, {.verify_fusion = true}).run({x, y});
    const std::vector<Tensor> want = f({x, y});
    CHECK(got[0].device() == cuda);
    CHECK(max_rel(got[0], want[0]) <= 1e-6);
    CHECK(max_rel(got[1], want[1]) <= 1e-5);
  }
}

TEST_CASE("cuda graph: a captured SGD step (multi-tensor update in one launch) equals the eager CUDA step") {
  const Device cuda("cuda");
  auto make = [&] {
    std::vector<Tensor> ps = {cast(uniform({16, 8}, -0.5, 0.5, 51), DType::F32).to(cuda),
                              cast(uniform({16}, -0.1, 0.1, 52), DType::F32).to(cuda),
                              cast(uniform({4, 16}, -0.5, 0.5, 53), DType::F32).to(cuda)};
    for (Tensor& p : ps) p.set_requires_grad();
    return ps;
  };
  std::vector<Tensor> pe = make(), pg = make();
  optim::Sgd oe(pe, {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3});
  optim::Sgd og(pg, {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3});
  auto step = [](std::vector<Tensor>& p, optim::Optimizer& opt) {
    return [&p, &opt](const std::vector<Tensor>& in) {
      opt.zero_grad();
      const Tensor d = linear(relu(linear(in[0], p[0], p[1])), p[2]) - in[1];
      const Tensor loss = mean(d * d);
      loss.backward();
      opt.step();
      return std::vector<Tensor>{loss};
    };
  };
  graph::CompiledStep compiled(step(pg, og), {.capture = {.params = pg}});
  for (int i = 0; i < 4; ++i) {
    const Tensor x = cast(uniform({32, 8}, -1, 1, 60 + i), DType::F32).to(cuda);
    const Tensor t = cast(uniform({32, 4}, -1, 1, 70 + i), DType::F32).to(cuda);
    const Tensor le = step(pe, oe)({x, t})[0];
    const Tensor lg = compiled({x, t})[0];
    CHECK(max_rel(lg, le) <= 1e-5);
  }
  REQUIRE(compiled.last_executor() != nullptr);
  CHECK(count_kind(compiled.last_executor()->graph(), "multi_tensor_pointwise") >= 1);
  for (size_t i = 0; i < pe.size(); ++i) CHECK(max_rel(pg[i], pe[i]) <= 1e-5);
  // Runs 2-3 of the executor were CUDA graph launches (a refused capture would still match).
  CHECK(compiled.last_executor()->stats().cuda_graph == "on");
  CHECK(compiled.last_executor()->stats().cuda_graph_replays >= 1);
}

}  // namespace pacer::test

namespace pacer::test {

TEST_CASE("cuda graph: a step called with a stream of its own current replays in order on it") {
  // The caller's stream is not the default one: the replays must wait for the work queued
  // before them on it (the inputs written just before) and the readers after them must see
  // their results.
  const Device cuda("cuda");
  cuda::Stream mine = cuda::Stream::create(0);
  cuda::StreamGuard on_mine(mine);
  auto make = [&] {
    std::vector<Tensor> ps = {cast(uniform({32, 16}, -0.5, 0.5, 81), DType::F32).to(cuda),
                              cast(uniform({8, 32}, -0.5, 0.5, 82), DType::F32).to(cuda)};
    for (Tensor& p : ps) p.set_requires_grad();
    return ps;
  };
  std::vector<Tensor> pe = make(), pg = make();
  optim::Sgd oe(pe, {.lr = 0.1, .momentum = 0.9});
  optim::Sgd og(pg, {.lr = 0.1, .momentum = 0.9});
  auto step = [](std::vector<Tensor>& p, optim::Optimizer& opt) {
    return [&p, &opt](const std::vector<Tensor>& in) {
      opt.zero_grad();
      const Tensor d = linear(relu(linear(in[0], p[0])), p[1]) - in[1];
      const Tensor loss = mean(d * d);
      loss.backward();
      opt.step();
      return std::vector<Tensor>{loss};
    };
  };
  graph::CompiledStep compiled(step(pg, og), {.capture = {.params = pg}});
  Tensor x = zeros({64, 16}, {.device = cuda}), t = zeros({64, 8}, {.device = cuda});
  for (int i = 0; i < 6; ++i) {
    INFO("step " << i);
    // Written on `mine` just before the step reads them.
    copy_(x, cast(uniform({64, 16}, -1, 1, 90 + i), DType::F32).to(cuda));
    copy_(t, cast(uniform({64, 8}, -1, 1, 100 + i), DType::F32).to(cuda));
    const Tensor le = step(pe, oe)({x, t})[0];
    const Tensor lg = compiled({x, t})[0];
    CHECK(max_rel(lg, le) <= 1e-5);
  }
  for (size_t i = 0; i < pe.size(); ++i) CHECK(max_rel(pg[i], pe[i]) <= 1e-5);
  REQUIRE(compiled.last_executor() != nullptr);
  CHECK(compiled.last_executor()->stats().cuda_graph == "on");
  CHECK(compiled.last_executor()->stats().cuda_graph_replays >= 2);
}

TEST_CASE("cuda graph: bn_relu fuses channels-last batch norm + add + ReLU and its backward, equal to the unfused graph") {
  const Device cuda("cuda");
  for (DType t : {DType::F16, DType::F32}) {
    INFO(dtype_name(t));
    auto cl = [&](const Tensor& v) { return permute(contiguous(permute(cast(v, t).to(cuda), {0, 2, 3, 1})), {0, 3, 1, 2}); };
    // Batch norm's parameters in float32, as mixed precision keeps them.
    Tensor w = cast(uniform({64}, 0.5, 1.5, 61), DType::F32).to(cuda).set_requires_grad();
    Tensor b = cast(uniform({64}, -1, 1, 62), DType::F32).to(cuda).set_requires_grad();
    // Scales the residual: its gradient is wanted, so the residual unit's ReLU gradient has
    // two readers and only the plain unit's backward fuses.
    Tensor s = cast(uniform({1, 64, 1, 1}, 0.5, 1.5, 66), t).to(cuda).set_requires_grad();
    auto f = [&](const std::vector<Tensor>& in) {
      for (Tensor* p : {&w, &b, &s}) p->set_grad(Tensor());
      // A residual unit (batch norm + residual + ReLU) and a plain one (batch norm + ReLU).
      // The residual first, in a statement of its own: bn_relu fuses a residual computed
      // before the batch norm (the operands of + have no fixed evaluation order).
      const Tensor residual = in[1] * s;
      const Tensor h = relu(batch_norm(in[0], w, b, Tensor(), Tensor(), true, 0.1, 1e-5) + residual);
      const Tensor z = relu(batch_norm(h, w, b, Tensor(), Tensor(), true, 0.1, 1e-5));
      Tensor loss = sum(z * in[2]);
      loss.backward();
      return std::vector<Tensor>{loss, z, w.grad(), b.grad(), s.grad()};
    };
    const std::vector<Tensor> in = {cl(uniform({4, 64, 9, 11}, -2, 3, 63)), cl(uniform({4, 64, 9, 11}, -1, 1, 64)),
                                    cl(uniform({4, 64, 9, 11}, -1, 1, 65))};
    graph::Captured c = graph::capture(f, in);
    const graph::Graph unfused = c.graph;
    const auto reports = graph::PassManager().add("bn_relu").run(c.graph);
    CHECK(count_kind(c.graph, "bn_add_relu") == 1);
    CHECK(count_kind(c.graph, "bn_relu") == 1);
    CHECK(count_kind(c.graph, "bn_relu_backward") == 1);  // the plain unit's; the residual's gradient is read twice
    const std::vector<Tensor> want = graph::Executor(unfused).run(in);
    const std::vector<Tensor> got = graph::Executor(c.graph, {.verify_fusion = true}).run(in);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      INFO("output " << i);
      CHECK(max_rel(got[i], want[i]) == 0);
    }
  }
}

TEST_CASE("cuda graph: replays become one CUDA graph launch, equal to replays without it, and capture again when memory "
          "or a host scalar moves") {
  const Device cuda("cuda");
  auto make = [&] {
    std::vector<Tensor> ps = {cast(uniform({16, 8}, -0.5, 0.5, 81), DType::F32).to(cuda),
                              cast(uniform({16}, -0.1, 0.1, 82), DType::F32).to(cuda),
                              cast(uniform({4, 16}, -0.5, 0.5, 83), DType::F32).to(cuda)};
    for (Tensor& p : ps) p.set_requires_grad();
    return ps;
  };
  std::vector<Tensor> pa = make(), pb = make();
  optim::Sgd oa(pa, {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3});
  optim::Sgd ob(pb, {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3});
  oa.use_lr_tensors();
  ob.use_lr_tensors();
  // A CPU scalar the step reads: a kernel takes its value as an argument, which a CUDA graph
  // freezes; changing it must lead to a new capture.
  Tensor weight_a = full({}, 1.0), weight_b = full({}, 1.0);
  auto step = [](std::vector<Tensor>& p, optim::Optimizer& opt, Tensor& w) {
    return [&p, &opt, &w](const std::vector<Tensor>& in) {
      opt.zero_grad();
      const Tensor d = linear(relu(linear(in[0], p[0], p[1])), p[2]) - in[1];
      const Tensor loss = mean(d * d) * w;
      loss.backward();
      opt.step();
      return std::vector<Tensor>{loss};
    };
  };
  graph::CompiledStep with(step(pa, oa, weight_a), {.capture = {.params = pa}});
  graph::CompiledStep without(step(pb, ob, weight_b), {.capture = {.params = pb}, .executor = {.cuda_graph = false}});
  Tensor first_replay_loss, kept_grad;
  std::vector<double> first_replay_value, kept_value;
  for (int i = 0; i < 12; ++i) {
    INFO("step " << i);
    if (i == 5) {
      oa.set_lr(0.05);
      ob.set_lr(0.05);
    }
    if (i == 9) {
      fill_(weight_a, 0.5);
      fill_(weight_b, 0.5);
    }
    const Tensor x = cast(uniform({32, 8}, -1, 1, 90 + i), DType::F32).to(cuda);
    const Tensor t = cast(uniform({32, 4}, -1, 1, 110 + i), DType::F32).to(cuda);
    const Tensor la = with({x, t})[0];
    const Tensor lb = without({x, t})[0];
    CHECK(max_rel(la, lb) <= 1e-6);
    for (size_t k = 0; k < pa.size(); ++k) {
      CHECK(max_rel(pa[k], pb[k]) <= 1e-6);
      // The gradients a replay hands back (slots rebuilt from the captured arena offsets).
      CHECK(max_rel(pa[k].grad(), pb[k].grad()) <= 1e-6);
    }
    if (i == 3) {  // the first launch: its output is a copy, which later launches leave alone
      first_replay_loss = la;
      first_replay_value = la.to(kCPU).to(DType::F64).to_vector<double>();
    }
    if (i == 6) {  // a gradient the caller keeps: the next run takes a new arena (and graph)
      kept_grad = pa[0].grad();
      kept_value = kept_grad.to(kCPU).to(DType::F64).to_vector<double>();
    }
  }
  CHECK(first_replay_loss.to(kCPU).to(DType::F64).to_vector<double>() == first_replay_value);
  CHECK(kept_grad.to(kCPU).to(DType::F64).to_vector<double>() == kept_value);
  REQUIRE(with.last_executor() != nullptr);
  const graph::ExecutorStats& s = with.last_executor()->stats();
  CHECK(s.cuda_graph == "on");
  // Runs 0-1 eager (warm-up, capture), then per executor run: 2 warm-up, 3 capture + launch,
  // 4-6 launches, 7 warm-up (new arena), 8 capture, 9 warm-up (scalar changed), 10 capture, 11.
  CHECK(s.cuda_graph_captures == 3);
  CHECK(s.cuda_graph_replays == 7);
  CHECK(s.cuda_graph_nodes > 0);
  REQUIRE(without.last_executor() != nullptr);
  CHECK(without.last_executor()->stats().cuda_graph.rfind("off", 0) == 0);
  CHECK(without.last_executor()->stats().cuda_graph_replays == 0);
}

TEST_CASE("cuda graph: softmax_xent fuses the cross-entropy's log-softmax forward and backward on CUDA (f32, f64), and "
          "names a target out of range") {
  const Device cuda("cuda");
  for (double smoothing : {0.0, 0.1}) {
    for (DType t : {DType::F32, DType::F64}) {
      INFO(dtype_name(t) << " smoothing " << smoothing);
      Tensor w = cast(uniform({1000, 64}, -0.2, 0.2, 121), t).to(cuda).set_requires_grad();
      auto f = [&](const std::vector<Tensor>& in) {
        w.set_grad(Tensor());
        const Tensor loss = cross_entropy(linear(in[0], w), in[1], "mean", -100, smoothing);
        loss.backward();
        return std::vector<Tensor>{loss, w.grad()};
      };
      std::vector<int64_t> target(48);
      for (size_t i = 0; i < target.size(); ++i) target[i] = i % 7 == 3 ? -100 : int64_t(i * 37 % 1000);
      const std::vector<Tensor> in = {cast(uniform({48, 64}, -1, 1, 122), t).to(cuda), from_vector(target).to(cuda)};
      graph::Captured c = graph::capture(f, in, {.params = {w}});
      const graph::Graph unfused = c.graph;
      graph::PassManager().add("softmax_xent").run(c.graph);
      CHECK(count_kind(c.graph, "log_softmax_pick") == 1);
      CHECK(count_kind(c.graph, "log_softmax_xent_backward") == 1);
      CHECK(count_kind(c.graph, "log_softmax") == 0);
      const std::vector<Tensor> want = graph::Executor(unfused).run(in);
      const std::vector<Tensor> got = graph::Executor(c.graph, {.verify_fusion = true}).run(in);
      REQUIRE(got.size() == want.size());
      for (size_t i = 0; i < want.size(); ++i) CHECK(max_rel(got[i], want[i]) <= (t == DType::F32 ? 1e-5 : 1e-12));
      std::vector<int64_t> bad = target;
      bad[5] = 1000;
      const std::string e =
          test::error_of([&] { graph::Executor(c.graph).run({in[0], from_vector(bad).to(cuda)}); });
      CHECK(e.find("index 1000 is out of range for dimension 1 of size 1000") != std::string::npos);
    }
  }
}

TEST_CASE("cuda graph: gemm_epilogue fuses linear + ReLU (cuBLASLt RELU_BIAS) and ReLU's backward + bias gradient after "
          "the GEMM, and a channels-last biased convolution's, equal to the unfused graph") {
  const Device cuda("cuda");
  for (DType t : {DType::F32, DType::F16, DType::F64}) {
    INFO(dtype_name(t));
    const double tol = t == DType::F16 ? 2e-2 : t == DType::F32 ? 2e-3 : 1e-12;  // f32: TF32 GEMMs
    Tensor w1 = cast(uniform({96, 64}, -0.2, 0.2, 131), t).to(cuda).set_requires_grad();
    Tensor b1 = cast(uniform({96}, -0.2, 0.2, 132), t).to(cuda).set_requires_grad();
    Tensor w2 = cast(uniform({16, 96}, -0.2, 0.2, 133), t).to(cuda).set_requires_grad();
    auto mlp = [&](const std::vector<Tensor>& in) {
      for (Tensor* p : {&w1, &b1, &w2}) p->set_grad(Tensor());
      const Tensor x = in[0] * 1.0;  // a gradient for the input too
      const Tensor h = relu(linear(x, w1, b1));
      const Tensor loss = sum(linear(h, w2) * in[1]);
      loss.backward();
      return std::vector<Tensor>{loss, h, w1.grad(), b1.grad(), w2.grad()};
    };
    const std::vector<Tensor> in = {cast(uniform({40, 64}, -1, 1, 134), t).to(cuda),
                                    cast(uniform({40, 16}, -1, 1, 135), t).to(cuda)};
    graph::Captured c = graph::capture(mlp, in);
    const graph::Graph unfused = c.graph;
    graph::PassManager().add("gemm_epilogue").run(c.graph);
    CHECK(count_kind(c.graph, "linear_relu") == 1);
    CHECK(count_kind(c.graph, "mm_relu_bgrad") == 1);
    CHECK(count_kind(c.graph, "relu_backward") == 0);
    const std::vector<Tensor> want = graph::Executor(unfused).run(in);
    const std::vector<Tensor> got = graph::Executor(c.graph, {.verify_fusion = t != DType::F32}).run(in);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) CHECK(max_rel(got[i], want[i]) <= tol);
  }
  // A biased convolution in channels-last: ReLU's backward and the bias gradient in one sweep.
  for (DType t : {DType::F32, DType::F16}) {
    INFO(dtype_name(t) << " conv");
    auto cl = [&](const Tensor& v) { return permute(contiguous(permute(cast(v, t).to(cuda), {0, 2, 3, 1})), {0, 3, 1, 2}); };
    Tensor w = cl(uniform({32, 16, 3, 3}, -0.2, 0.2, 141)).set_requires_grad();
    Tensor b = cast(uniform({32}, -0.2, 0.2, 142), t).to(cuda).set_requires_grad();
    auto f = [&](const std::vector<Tensor>& in) {
      for (Tensor* p : {&w, &b}) p->set_grad(Tensor());
      const Tensor y = relu(conv2d(in[0], w, b, {1, 1}, {1, 1}));
      const Tensor loss = sum(y * in[1]);
      loss.backward();
      return std::vector<Tensor>{loss, w.grad(), b.grad()};
    };
    const std::vector<Tensor> in = {cl(uniform({4, 16, 10, 12}, -1, 1, 143)), cl(uniform({4, 32, 10, 12}, -1, 1, 144))};
    graph::Captured c = graph::capture(f, in);
    const graph::Graph unfused = c.graph;
    graph::PassManager().add("gemm_epilogue").run(c.graph);
    CHECK(count_kind(c.graph, "relu_bgrad") == 1);
    CHECK(count_kind(c.graph, "conv_bias_relu") == 0);  // CPU only
    const std::vector<Tensor> want = graph::Executor(unfused).run(in);
    const std::vector<Tensor> got = graph::Executor(c.graph).run(in);
    for (size_t i = 0; i < want.size(); ++i) CHECK(max_rel(got[i], want[i]) <= (t == DType::F16 ? 2e-2 : 1e-4));
  }
}

TEST_CASE("cuda graph: conv_bn sums batch norm's statistics with the convolution (cuDNN conv + genstats, or the "
          "unfused passes where no engine takes it), equal to the unfused graph") {
  const Device cuda("cuda");
  for (DType t : {DType::F16, DType::BF16}) {
    INFO(dtype_name(t));
    auto cl = [&](const Tensor& v) { return permute(contiguous(permute(cast(v, t).to(cuda), {0, 2, 3, 1})), {0, 3, 1, 2}); };
    Tensor w1 = cl(uniform({64, 64, 3, 3}, -0.05, 0.05, 151)).set_requires_grad();
    Tensor w2 = cl(uniform({64, 64, 3, 3}, -0.05, 0.05, 152)).set_requires_grad();
    // Batch norm's parameters in float32, as mixed precision keeps them.
    Tensor g = cast(uniform({64}, 0.5, 1.5, 153), DType::F32).to(cuda).set_requires_grad();
    Tensor b = cast(uniform({64}, -0.5, 0.5, 154), DType::F32).to(cuda).set_requires_grad();
    // Running statistics too: their update reads the fused node's mean and invstd.
    Tensor rm = zeros({64}, {.device = cuda}), rv = ones({64}, {.device = cuda});
    auto f = [&](const std::vector<Tensor>& in) {
      for (Tensor* p : {&w1, &w2, &g, &b}) p->set_grad(Tensor());
      // A residual unit: conv -> batch norm -> ReLU, conv -> batch norm -> + x -> ReLU.
      const Tensor h =
          relu(batch_norm(conv2d(in[0], w1, Tensor(), {1, 1}, {1, 1}), g, b, rm, rv, true, 0.1, 1e-5));
      const Tensor z = relu(batch_norm(conv2d(h, w2, Tensor(), {1, 1}, {1, 1}), g, b, rm, rv, true, 0.1, 1e-5) +
                            in[0]);
      const Tensor loss = sum(z * in[1]);
      loss.backward();
      return std::vector<Tensor>{loss, z, w1.grad(), w2.grad(), g.grad(), b.grad()};
    };
    const std::vector<Tensor> in = {cl(uniform({8, 64, 14, 14}, -1, 1, 155)), cl(uniform({8, 64, 14, 14}, -1, 1, 156))};
    graph::Captured c = graph::capture(f, in);
    const graph::Graph unfused = c.graph;
    graph::PassManager().add_list("bn_relu,conv_bn").run(c.graph);
    CHECK(count_kind(c.graph, "conv_bn_relu") == 1);
    CHECK(count_kind(c.graph, "conv_bn_add_relu") == 1);
    CHECK(count_kind(c.graph, "conv2d") == 0);
    const Tensor rm0 = clone(rm), rv0 = clone(rv);
    const std::vector<Tensor> want = graph::Executor(unfused).run(in);
    const Tensor rm_want = clone(rm), rv_want = clone(rv);
    copy_(rm, rm0);
    copy_(rv, rv0);
    const std::vector<Tensor> got = graph::Executor(c.graph).run(in);
    REQUIRE(got.size() == want.size());
    const double tol = t == DType::F16 ? 3e-2 : 6e-2;
    for (size_t i = 0; i < want.size(); ++i) {
      INFO("output " << i);
      CHECK(max_rel(got[i], want[i]) <= tol);
    }
    CHECK(max_rel(rm, rm_want) <= 1e-3);
    CHECK(max_rel(rv, rv_want) <= 1e-3);
  }
  // The fused convolution + statistics itself: cuDNN must take this f16 3x3 problem (an
  // H100 / H200 with cuDNN 9 has runtime fusion engines for it), and its sums must be the
  // output's.
  auto cl = [&](const Tensor& v) {
    return permute(contiguous(permute(cast(v, DType::F16).to(cuda), {0, 2, 3, 1})), {0, 3, 1, 2});
  };
  const Tensor x = cl(uniform({8, 64, 14, 14}, -1, 1, 161)), w = cl(uniform({64, 64, 3, 3}, -0.05, 0.05, 162));
  Tensor y = permute(empty({8, 14, 14, 64}, {.dtype = DType::F16, .device = cuda}), {0, 3, 1, 2});
  Tensor sums = empty({2, 64}, {.device = cuda});
  ops::Attrs conv;
  conv.set("stride", Shape{1, 1});
  conv.set("padding", Shape{1, 1});
  conv.set("dilation", Shape{1, 1});
  conv.set("groups", int64_t(1));
  const bool engaged = ops::cuda::conv2d_forward_with_sums(x, w, conv, y, sums);
  INFO("cuDNN's conv + genstats graph " << (engaged ? "ran" : "found no engine"));
  CHECK(engaged);
  if (engaged) {
    const Tensor y64 = cast(y.to(kCPU), DType::F64);
    CHECK(max_rel(y, conv2d(x, w, Tensor(), {1, 1}, {1, 1})) <= 2e-2);
    CHECK(max_rel(select(sums, 0, 0), sum(y64, {0, 2, 3})) <= 1e-3);
    CHECK(max_rel(select(sums, 0, 1), sum(y64 * y64, {0, 2, 3})) <= 1e-3);
  }
}

}  // namespace pacer::test
