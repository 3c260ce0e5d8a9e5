// The pointwise fusion passes (cast_elim, pointwise_fusion, multi_tensor), MemoryOrderCheck
// and PACER_VERIFY_FUSION. Each pass: the pattern is matched, left alone where it must be
// (an intermediate read outside the group, memory updated in place in between, a lifetime
// that would grow), and the fused graph computes what the unfused one does, bit for bit.

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <cmath>
#include <string>
#include <vector>

#include "ops/graph/fused_pointwise.h"
#include "tests/ops/graph/graph_test_util.h"
#include "tests/test_util.h"

using namespace pacer;
using namespace pacer::graph;

using test::count_kind;
using test::joined;
using test::max_rel_diff;

TEST_CASE("pointwise_fusion turns a chain into one loop with the unfused numerics, in f32, bf16 and f16") {
  auto f = [](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{relu(in[0] * in[1] + 2.0) - sigmoid(in[0])};
  };
  for (DType t : {DType::F32, DType::BF16, DType::F16}) {
    INFO(dtype_name(t));
    const Tensor x = randn({37, 53}).to(t), y = randn({37, 53}).to(t);
    Captured c = capture(f, {x, y});
    Graph unfused = c.graph;
    const auto reports = PassManager().add_list("cast_elim,pointwise_fusion").run(c.graph);
    CHECK(c.graph.nodes.size() == 1);
    CHECK(count_kind(c.graph, "fused_pointwise") == 1);
    const std::string what = joined(reports[1].fused_groups);
    for (const char* op : {"mul", "add", "relu", "sigmoid", "sub"}) CHECK_MESSAGE(what.find(op) != std::string::npos, op);
    const Tensor want = Executor(unfused).run({x, y})[0], got = Executor(c.graph).run({x, y})[0];
    CHECK(got.dtype() == t);
    // Intermediates are rounded to t as the unfused ops store them: the same numbers.
    CHECK(max_rel_diff(got, want) == 0);
  }
}

TEST_CASE("executors built from copies of one graph run fused pointwise kernels of their own") {
  // A pointwise kernel keeps what it last uploaded for its node (the CUDA runner's tables,
  // which a captured CUDA graph goes on addressing): shared between two executors, one's
  // runs would change what the other's graph reads.
  auto f = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{relu(in[0] * 3.0 + 1.0)}; };
  const Tensor x = randn({64});
  Captured c = capture(f, {x});
  PassManager().add_list("cast_elim,pointwise_fusion").run(c.graph);
  REQUIRE(c.graph.nodes.size() == 1);
  const Graph copy = c.graph;
  REQUIRE(copy.nodes[0].fused == c.graph.nodes[0].fused);  // a copy shares them
  Executor a(c.graph), b(copy);
  const FusedPointwiseKernel* ka = pointwise_kernel_of(a.graph().nodes[0]);
  const FusedPointwiseKernel* kb = pointwise_kernel_of(b.graph().nodes[0]);
  REQUIRE(ka != nullptr);
  REQUIRE(kb != nullptr);
  CHECK(ka != kb);
  CHECK(ka != pointwise_kernel_of(c.graph.nodes[0]));
  CHECK(max_rel_diff(a.run({x})[0], b.run({x})[0]) == 0);
  CHECK(max_rel_diff(a.run({x})[0], f({x})[0]) == 0);
}

TEST_CASE("pointwise_fusion does not fuse across an intermediate that is also read outside the group") {
  auto f = [](const std::vector<Tensor>& in) {
    Tensor a = in[0] * in[1];                        // read by relu (pointwise) and by a row sum (not)
    return std::vector<Tensor>{relu(a), sum(a, {1})};
  };
  const Tensor x = randn({4, 6}), y = randn({4, 6});
  Captured c = capture(f, {x, y});
  PassManager().add("pointwise_fusion").run(c.graph);
  CHECK(count_kind(c.graph, "fused_pointwise") == 0);
  CHECK(count_kind(c.graph, "mul") == 1);
  CHECK(count_kind(c.graph, "relu") == 1);

  // Two readers that both join: the intermediate stays inside the loop.
  auto g = [](const std::vector<Tensor>& in) {
    Tensor a = in[0] * in[1];
    return std::vector<Tensor>{relu(a) + neg(a)};
  };
  Captured c2 = capture(g, {x, y});
  PassManager().add("pointwise_fusion").run(c2.graph);
  CHECK(c2.graph.nodes.size() == 1);
  CHECK(max_rel_diff(Executor(c2.graph).run({x, y})[0], g({x, y})[0]) == 0);
}

TEST_CASE("pointwise_fusion ends a chain with its full sum (a squared norm) and keeps partial sums apart") {
  auto f = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{sqrt(sum(in[0] * in[0]))}; };
  const Tensor x = randn({300, 257});
  Captured c = capture(f, {x});
  PassManager().add("pointwise_fusion").run(c.graph);
  REQUIRE(count_kind(c.graph, "fused_pointwise") == 1);
  CHECK(count_kind(c.graph, "sum") == 0);
  CHECK(max_rel_diff(Executor(c.graph).run({x})[0], f({x})[0]) == 0);  // summed in the sum op's order
}

TEST_CASE("pointwise_fusion writes in-place updates of state in place (an SGD momentum step)") {
  Tensor p = randn({1000}), buf = randn({1000});
  Tensor p_eager = clone(p), buf_eager = clone(buf);
  auto step_on = [](Tensor& param, Tensor& momentum) {
    return [&param, &momentum](const std::vector<Tensor>& in) {
      NoGradGuard ng;
      mul_(momentum, wrap(0.9));
      add_(momentum, in[0] + param * 1e-4);
      add_(param, momentum, -0.1);
      return std::vector<Tensor>{};
    };
  };
  const Tensor g0 = randn({1000});
  Captured c = capture(step_on(p, buf), {g0});  // the capture runs one step
  step_on(p_eager, buf_eager)({g0});
  PassManager().add_list("cast_elim,pointwise_fusion").run(c.graph);
  REQUIRE(c.graph.nodes.size() == 1);
  const Node& n = c.graph.nodes[0];
  CHECK(n.kind() == "fused_pointwise");
  CHECK(n.written_inputs().size() == 2);  // the momentum buffer and the parameter
  Executor ex(c.graph, {.verify_fusion = true});  // the reference runs on copies: no double update
  for (int i = 0; i < 3; ++i) {
    const Tensor g = randn({1000});
    ex.run({g});
    step_on(p_eager, buf_eager)({g});
  }
  CHECK(max_rel_diff(p, p_eager) == 0);
  CHECK(max_rel_diff(buf, buf_eager) == 0);
}

TEST_CASE("pointwise_fusion refuses a group that would read memory after an update made between its ops") {
  Tensor s = randn({8});
  auto f = [&](const std::vector<Tensor>& in) {
    Tensor u = s * 2.0;  // reads s before the copy_ below ...
    NoGradGuard ng;
    copy_(s, in[0]);     // (copy_ is not fused)
    return std::vector<Tensor>{relu(u) + in[0]};  // ... so u's loop cannot move after it
  };
  Tensor s_keep = clone(s);
  const Tensor x = randn({8});
  Captured c = capture(f, {x});
  copy_(s, s_keep);
  PassContext ctx;
  auto pass = make_pass("pointwise_fusion");
  pass->run(c.graph, ctx);
  CHECK(count_kind(c.graph, "copy_") == 1);
  CHECK(joined(ctx.rejections()).find("would read") != std::string::npos);
  const Tensor got = Executor(c.graph).run({x})[0];
  copy_(s, s_keep);
  CHECK(max_rel_diff(got, f({x})[0]) == 0);
}

TEST_CASE("cast_elim folds casts of numbers and drops casts that undo each other") {
  auto f = [](const std::vector<Tensor>& in) {
    Tensor back = cast(cast(in[0], DType::F32), DType::F16);  // f16 -> f32 -> f16 is x
    return std::vector<Tensor>{back * 3.0 + 1.0};
  };
  const Tensor x = randn({5}).to(DType::F16);
  Captured c = capture(f, {x});
  const int casts = count_kind(c.graph, "cast");
  REQUIRE(casts >= 4);  // two explicit, one per number
  const auto reports = PassManager().add_list("cast_elim,dce").run(c.graph);
  CHECK(count_kind(c.graph, "cast") == 0);
  CHECK(joined(reports[0].fused_groups).find("2 casts of numbers folded") != std::string::npos);
  CHECK(max_rel_diff(Executor(c.graph).run({x})[0], f({x})[0]) == 0);

  // f32 -> f16 -> f32 loses precision: kept.
  auto g = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{cast(cast(in[0], DType::F16), DType::F32)}; };
  Captured c2 = capture(g, {randn({3})});
  PassManager().add("cast_elim").run(c2.graph);
  CHECK(count_kind(c2.graph, "cast") == 2);
}

TEST_CASE("multi_tensor runs an optimizer's per-parameter updates in one loop, equal to eager") {
  manual_seed(3);
  auto make = [] {
    manual_seed(3);
    return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::UnaryModule>>{
        std::make_shared<nn::Linear>(6, 9), std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(9, 4)});
  };
  auto eager_model = make(), graph_model = make();
  optim::Sgd eager_opt(eager_model->parameters(), {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3});
  optim::Sgd graph_opt(graph_model->parameters(), {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3});
  auto step = [](nn::UnaryModule& m, optim::Optimizer& opt) {
    return [&m, &opt](const std::vector<Tensor>& in) {
      opt.zero_grad();
      const Tensor d = m.forward(in[0]) - in[1];
      const Tensor loss = mean(d * d);
      loss.backward();
      opt.step();
      return std::vector<Tensor>{loss};
    };
  };
  CompiledStep compiled(step(*graph_model, graph_opt), {.capture = {.params = graph_model->parameters()}});
  for (int i = 0; i < 4; ++i) {
    const Tensor x = randn({5, 6}), t = randn({5, 4});
    const Tensor le = step(*eager_model, eager_opt)({x, t})[0];
    const Tensor lg = compiled({x, t})[0];
    CHECK(max_rel_diff(lg, le) == 0);
  }
  REQUIRE(compiled.last_executor() != nullptr);
  const Graph& g = compiled.last_executor()->graph();
  CHECK(count_kind(g, "multi_tensor_pointwise") == 1);  // the four parameters' updates
  CHECK(count_kind(g, "add_") == 0);
  CHECK(count_kind(g, "mul_") == 0);
  const auto pe = eager_model->parameters(), pg = graph_model->parameters();
  for (size_t i = 0; i < pe.size(); ++i) CHECK(max_rel_diff(pg[i], pe[i]) == 0);
}

TEST_CASE("multi_tensor batches each batch norm's running statistics update at the last one's place, equal to eager") {
  // Each layer's update reads statistics its own batch norm computes: the batch cannot sit at
  // the first update (the later layers' statistics do not exist yet), so it sinks to the last.
  std::vector<Tensor> w, b, rm, rv;
  for (int k = 0; k < 3; ++k) {
    w.push_back(randn({6}));
    b.push_back(randn({6}));
    rm.push_back(randn({6}));
    rv.push_back(rand({6}) + 0.5);
  }
  auto f = [&](const std::vector<Tensor>& in) {
    NoGradGuard ng;
    Tensor h = in[0];
    for (int k = 0; k < 3; ++k) h = relu(batch_norm(h, w[k], b[k], rm[k], rv[k], true, 0.1, 1e-5));
    return std::vector<Tensor>{sum(h)};
  };
  std::vector<Tensor> rm0, rv0;
  for (int k = 0; k < 3; ++k) {
    rm0.push_back(clone(rm[k]));
    rv0.push_back(clone(rv[k]));
  }
  const Tensor x = randn({4, 6, 5, 5});
  Captured c = capture(f, {x});
  PassManager().add_list("cast_elim,pointwise_fusion,multi_tensor").run(c.graph);
  int batched = 0;
  for (const Node& n : c.graph.nodes)
    if (const FusedPointwiseKernel* k = pointwise_kernel_of(n); k && k->members() == 3) ++batched;
  CHECK(batched == 2);  // the running means' update, and the running variances'
  // From the same state, the replay and the eager function update it alike, bit for bit.
  for (int k = 0; k < 3; ++k) {
    copy_(rm[k], rm0[k]);
    copy_(rv[k], rv0[k]);
  }
  const Tensor got = Executor(c.graph).run({x})[0];
  std::vector<Tensor> rm1, rv1;
  for (int k = 0; k < 3; ++k) {
    rm1.push_back(clone(rm[k]));
    rv1.push_back(clone(rv[k]));
    copy_(rm[k], rm0[k]);
    copy_(rv[k], rv0[k]);
  }
  const Tensor want = f({x})[0];
  CHECK(max_rel_diff(got, want) == 0);
  for (int k = 0; k < 3; ++k) {
    CHECK(max_rel_diff(rm1[size_t(k)], rm[k]) == 0);
    CHECK(max_rel_diff(rv1[size_t(k)], rv[k]) == 0);
    CHECK(max_rel_diff(rm1[size_t(k)], rm0[size_t(k)]) > 0);  // they did move
  }
}

TEST_CASE("PACER_VERIFY_FUSION names a fused node whose result differs from its reference") {
  // A deliberately wrong kernel: relu(x) computed as x.
  struct WrongRelu final : FusedKernel {
    std::string name() const override { return "wrong_relu"; }
    std::string describe() const override { return "relu, wrongly"; }
    void run(const std::vector<Tensor>& in, std::vector<Tensor>& out) const override { copy_(out[0], in[0]); }
  };
  struct FuseWrong final : Pass {
    std::string name() const override { return "fuse_wrong"; }
    void run(Graph& g, PassContext&) override {
      Node& n = g.nodes.back();
      Node f;
      f.id = g.next_node_id();
      f.fused = std::make_shared<WrongRelu>();
      f.inputs = n.inputs;
      f.outputs = n.outputs;
      f.reference = {n};
      n = f;
      g.rebuild_uses();
    }
  };
  const Tensor x = randn({16});
  Captured c = capture([](const std::vector<Tensor>& in) { return std::vector<Tensor>{relu(in[0])}; }, {x});
  PassManager pm;
  pm.add(std::make_unique<FuseWrong>());
  pm.run(c.graph);
  Executor quiet(c.graph);
  CHECK(max_rel_diff(quiet.run({x})[0], x) == 0);  // the wrong result goes unnoticed ...
  Executor checked(c.graph, {.verify_fusion = true});
  const std::string e = test::error_of([&] { checked.run({x}); });  // ... unless verified
  CHECK(e.find("differs from its unfused reference") != std::string::npos);
  CHECK(e.find("wrong_relu") != std::string::npos);
}

TEST_CASE("MemoryOrderCheck: moving a read past an in-place update, or a read before its value, is a hazard") {
  Tensor s = randn({4});
  auto f = [&](const std::vector<Tensor>& in) {
    Tensor a = exp(in[0]);  // node 0
    Tensor u = s * 2.0;     // reads s before ...
    NoGradGuard ng;
    add_(s, a);             // ... this update
    return std::vector<Tensor>{u + s};
  };
  const Tensor s0 = clone(s);
  Captured c = capture(f, {randn({4})});
  copy_(s, s0);
  PassManager().add("cast_elim").run(c.graph);
  const Graph& g = c.graph;
  const MemoryOrderCheck check(g);
  CHECK_FALSE(check.hazard(g));  // the graph itself is fine
  auto moved = [&](const std::string& kind, int by) {
    Graph h = g;
    size_t at = 0;
    while (h.nodes[at].kind() != kind) ++at;
    Node n = h.nodes[at];
    h.nodes.erase(h.nodes.begin() + long(at));
    h.nodes.insert(h.nodes.begin() + long(at) + by, n);
    h.rebuild_uses();
    return h;
  };
  // The mul after the add_: it would read s's new version.
  const Hazard late = check.hazard(moved("mul", 1));
  CHECK(late);
  CHECK(late.what.find("would read") != std::string::npos);
  // The add_ before exp: it would read exp's result before it is computed.
  const Hazard early = check.hazard(moved("exp", 2));
  CHECK(early);
  CHECK(early.what.find("before it is computed") != std::string::npos);
  // Swapping two independent reads is fine: exp and mul read different memory.
  CHECK_FALSE(check.hazard(moved("exp", 1)));
}

TEST_CASE("MemoryOrderCheck: an in-place op's writes to inputs it has no output for count (amp_unscale_'s gradients)") {
  Tensor g = randn({4}), found = zeros({1}), inv = full({1}, 0.5);
  auto f = [&](const std::vector<Tensor>& in) {
    Tensor r = g * in[0];  // reads the gradient before ...
    NoGradGuard ng;
    amp_unscale_({g}, found, inv);  // ... it is unscaled in place
    return std::vector<Tensor>{r + g};
  };
  const Tensor g0 = clone(g);
  Captured c = capture(f, {randn({4})});
  copy_(g, g0);
  const Graph& gr = c.graph;
  const MemoryOrderCheck check(gr);
  CHECK_FALSE(check.hazard(gr));
  size_t at = 0;
  while (gr.nodes[at].kind() != "mul") ++at;
  Graph h = gr;  // the mul moved past the unscale: it would read the unscaled gradient
  Node n = h.nodes[at];
  h.nodes.erase(h.nodes.begin() + long(at));
  h.nodes.insert(h.nodes.begin() + long(at) + 1, n);
  h.rebuild_uses();
  REQUIRE(h.nodes[at].kind() == "amp_unscale_");
  const Hazard late = check.hazard(h);
  CHECK(late);
  CHECK(late.what.find("would read") != std::string::npos);
}

TEST_CASE("pointwise_fusion runs over channels-last tensors in memory order, and leaves mixed layouts apart") {
  auto nhwc = [](const Tensor& x) { return permute(contiguous(permute(x, {0, 2, 3, 1})), {0, 3, 1, 2}); };
  const Tensor x = nhwc(randn({2, 5, 3, 4})), y = nhwc(randn({2, 5, 3, 4})), z = randn({2, 5, 3, 4});
  auto f = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{relu(in[0] * in[1] + in[0])}; };
  Captured c = capture(f, {x, y});
  const Graph unfused = c.graph;
  PassManager().add("pointwise_fusion").run(c.graph);
  const Tensor want = Executor(unfused).run({x, y})[0];
  const Tensor got = Executor(c.graph).run({x, y})[0];
  CHECK(max_rel_diff(got, want) == 0);
  CHECK(got.strides() == want.strides());
  // A chain whose outputs all keep x's layout is one loop.
  if (want.strides() == x.strides()) CHECK(c.graph.nodes.size() == 1);
  // Mixed layouts (x channels-last, z contiguous): still right, whatever is fused.
  Captured c2 = capture(f, {x, z});
  const Graph unfused2 = c2.graph;
  PassManager().add("pointwise_fusion").run(c2.graph);
  CHECK(max_rel_diff(Executor(c2.graph).run({x, z})[0], Executor(unfused2).run({x, z})[0]) == 0);
}

TEST_CASE("pointwise_fusion does not keep big inputs alive across allocating nodes (a sum over time steps)") {
  auto f = [](const std::vector<Tensor>& in) {
    Tensor acc = in[1];
    for (int t = 0; t < 6; ++t) {
      const Tensor m = mm(in[0], in[0] * (1.0 + t));  // a fresh 256 KiB tensor per step
      acc = acc + m * 0.5;                             // the chain that would span every step
    }
    return std::vector<Tensor>{acc};
  };
  const std::vector<Tensor> in = {randn({256, 256}), randn({256, 256})};
  Captured c = capture(f, in);
  const Graph unfused = c.graph;
  PassContext ctx;
  make_pass("pointwise_fusion")->run(c.graph, ctx);
  c.graph.rebuild_uses();
  const Executor before(unfused), after(c.graph);
  CHECK(after.stats().planned_bytes <= before.stats().planned_bytes);
  CHECK(count_kind(c.graph, "fused_pointwise") >= 1);  // each step's own ops still fuse
  CHECK(joined(ctx.rejections()).find("would stay alive") != std::string::npos);
  CHECK(max_rel_diff(Executor(c.graph).run(in)[0], Executor(unfused).run(in)[0]) == 0);
}
