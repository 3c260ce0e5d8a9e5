// amp_skip: a captured step with dynamic loss scaling keeps no copies of the tensors the
// optimizer updates; the skip of an overflowed step runs inside the update loops, with the
// same numbers as the unfused graph on a normal step and on an overflowed one.

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <string>
#include <vector>

#include "models/precision_step.h"
#include "optim/loss_scaler.h"
#include "optim/sgd.h"
#include "tests/ops/graph/graph_test_util.h"

using namespace pacer;
using namespace pacer::graph;
using test::count_kind;
using test::max_rel_diff;

namespace {

// A linear layer trained by SGD with momentum under a dynamic loss scaler; returns the loss,
// the parameters and the scaler's scale.
struct ScaledStep {
  Tensor w = randn({4, 6}).set_requires_grad(), b = randn({4}).set_requires_grad();
  optim::Sgd opt{{w, b}, optim::SgdOptions{.lr = 0.1, .momentum = 0.9}};
  optim::LossScaler scaler{optim::LossScalerOptions{.init_scale = 4.0}};
  std::vector<Tensor> operator()(const std::vector<Tensor>& in) {
    const Tensor loss = sum(linear(in[0], w, b) * in[1]);
    models::backward_and_step(loss, opt, &scaler);
    return {loss};
  }
  // w, b and their momentum buffers (the live tensors).
  std::vector<Tensor> live() {
    std::vector<Tensor> out = {w, b};
    for (const auto& [name, t] : opt.state_dict())
      if (name.rfind("state.", 0) == 0) out.push_back(t);
    return out;
  }
  std::vector<Tensor> state() {
    std::vector<Tensor> out;
    for (const Tensor& t : live()) out.push_back(clone(t));
    return out;
  }
};

}  // namespace

TEST_CASE("amp_skip runs the overflow skip inside the update loops, without copies, with the unfused numbers") {
  manual_seed(3);
  ScaledStep unit;
  const std::vector<Tensor> in = {randn({5, 6}), randn({5, 4})};
  unit(in);  // eager: the momentum buffers exist before the capture
  Captured c = capture([&](const std::vector<Tensor>& v) { return unit(v); }, in);
  const Graph unfused = c.graph;
  const auto reports = PassManager().add_list("pointwise_fusion,amp_skip").run(c.graph);
  // Each parameter's guarded step and its buffer's guarded update run as one loop.
  const std::string fused = test::joined(reports[1].fused_groups);
  int joined = 0;
  for (size_t at = fused.find("guarded updates"); at != std::string::npos; at = fused.find("guarded updates", at + 1))
    ++joined;
  CHECK(joined == 2);
  // Each of w, b and their two momentum buffers: no clone, select or write-back left.
  CHECK(count_kind(unfused, "clone") >= 4);
  CHECK(count_kind(c.graph, "clone") == 0);
  CHECK(count_kind(c.graph, "copy_") == 0);
  for (bool overflow : {false, true}) {
    INFO((overflow ? "an overflowed step" : "a normal step"));
    std::vector<Tensor> x = in;
    if (overflow) x[0] = x[0] * INFINITY;
    const std::vector<Tensor> start = unit.state();
    const std::vector<Tensor> want_out = Executor(unfused).run(x);
    const std::vector<Tensor> want = unit.state();
    std::vector<Tensor> live = unit.live();
    REQUIRE(live.size() == 4);
    for (size_t k = 0; k < start.size(); ++k) {  // rewind, then the fused graph
      NoGradGuard no_grad;
      copy_(live[k], start[k]);
    }
    const std::vector<Tensor> got_out = Executor(c.graph, {.verify_fusion = true}).run(x);
    const std::vector<Tensor> got = unit.state();
    for (size_t k = 0; k < want.size(); ++k) {
      INFO("state " << k);
      CHECK(max_rel_diff(got[k], want[k]) == 0);
      if (overflow) CHECK(max_rel_diff(got[k], start[k]) == 0);  // skipped: nothing moved
    }
  }
}
