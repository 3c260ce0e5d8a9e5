// The PassManager and the built-in passes: each pass's pattern matched, left alone where
// it must be, numerics unchanged; a user pass registered through the public API; dumps.

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

using namespace pacer;
using namespace pacer::graph;

namespace {

int count_kind(const Graph& g, const std::string& kind) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.kind() == kind ? 1 : 0;
  return n;
}

bool same(const Tensor& a, const Tensor& b) {
  return a.sizes() == b.sizes() && a.to(DType::F64).to_vector<double>() == b.to(DType::F64).to_vector<double>();
}

// The README's example of a user pass: x * 1.0 (a mul by a state scalar equal to one) is
// replaced by x itself.
class DropMulByOne final : public Pass {
 public:
  std::string name() const override { return "drop_mul_by_one"; }
  void run(Graph& g, PassContext& ctx) override {
    std::vector<int> replace(g.values.size());
    for (size_t v = 0; v < replace.size(); ++v) replace[v] = int(v);
    std::vector<Node> kept;
    for (Node& n : g.nodes) {
      for (int& in : n.inputs)
        if (in >= 0) in = replace[size_t(in)];
      if (n.kind() == "mul" && n.inputs.size() == 2 && is_one(g, n.inputs[1]) &&
          g.values[size_t(n.inputs[0])].meta.sizes == g.values[size_t(n.outputs[0])].meta.sizes &&
          g.values[size_t(n.inputs[0])].meta.dtype == g.values[size_t(n.outputs[0])].meta.dtype) {
        replace[size_t(n.outputs[0])] = n.inputs[0];
        ctx.fused("mul by one at node " + std::to_string(n.id));
        continue;
      }
      kept.push_back(std::move(n));
    }
    g.nodes = std::move(kept);
    for (int& v : g.outputs) v = replace[size_t(v)];
  }

 private:
  static bool is_one(const Graph& g, int v) {
    const Value& val = g.values[size_t(v)];
    return val.kind == ValueKind::State && val.state.numel() == 1 && val.state.is_cpu() &&
           val.state.item<double>() == 1.0;
  }
};
PACER_REGISTER_PASS(DropMulByOne);

}  // namespace

TEST_CASE("dce removes nodes whose results are unused and keeps updates of state") {
  Tensor w = randn({3});
  auto f = [&](const std::vector<Tensor>& in) {
    Tensor unused = exp(in[0]) + 1.0;  // dead
    NoGradGuard ng;
    add_(w, in[0]);  // an update of state: kept although nothing reads it
    return std::vector<Tensor>{relu(in[0])};
  };
  Captured c = capture(f, {randn({3})});
  REQUIRE(count_kind(c.graph, "exp") == 1);
  const auto reports = PassManager().add("dce").run(c.graph);
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].nodes_after == 2);  // exp, the scalar's cast and the add are gone
  CHECK(count_kind(c.graph, "exp") == 0);
  CHECK(count_kind(c.graph, "add_") == 1);
  CHECK(count_kind(c.graph, "relu") == 1);
  // The update still reaches the state on a replay.
  const Tensor before = clone(w), x = randn({3});
  Executor(c.graph).run({x});
  CHECK(same(w, before + x));
}

TEST_CASE("dce keeps an in-place update of a temporary that a view made earlier still reads") {
  auto f = [](const std::vector<Tensor>& in) {
    Tensor t = in[0] * 2.0;
    Tensor v = reshape(t, {6});  // a view of t, made before the update
    NoGradGuard ng;
    add_(t, wrap(1.0));          // its result value is never read by name ...
    return std::vector<Tensor>{v * 3.0};  // ... but through the view
  };
  const Tensor x = randn({2, 3});
  Captured c = capture(f, {x});
  PassManager().add("dce").run(c.graph);
  CHECK(count_kind(c.graph, "add_") == 1);
  CHECK(same(Executor(c.graph).run({x})[0], f({x})[0]));
}

TEST_CASE("cse merges repeated computations, but not over memory updated in place") {
  auto f = [](const std::vector<Tensor>& in) {
    Tensor a = exp(in[0]), b = exp(in[0]);  // the same twice
    return std::vector<Tensor>{a + b};
  };
  const Tensor x = randn({4});
  Captured c = capture(f, {x});
  REQUIRE(count_kind(c.graph, "exp") == 2);
  PassManager().add("cse").run(c.graph);
  CHECK(count_kind(c.graph, "exp") == 1);
  CHECK(same(Executor(c.graph).run({x})[0], f({x})[0]));

  auto g = [](const std::vector<Tensor>& in) {
    Tensor a = exp(in[0]);
    Tensor b = exp(in[0]);
    NoGradGuard ng;
    add_(a, wrap(1.0));  // a is updated: merging b into it would change b
    return std::vector<Tensor>{a + b};
  };
  Captured c2 = capture(g, {x});
  PassManager().add("cse").run(c2.graph);
  CHECK(count_kind(c2.graph, "exp") == 2);
  CHECK(same(Executor(c2.graph).run({x})[0], g({x})[0]));
}

TEST_CASE("a user pass registers through the public API and runs by name, reporting what it did") {
  CHECK(test::error_of([] { make_pass("no_such_pass"); }).find("unknown graph pass 'no_such_pass'") !=
        std::string::npos);
  bool listed = false;
  for (const std::string& n : registered_passes()) listed = listed || n == "drop_mul_by_one";
  CHECK(listed);
  const Tensor one = scalar_tensor(1.0, DType::F32);
  auto f = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{relu(in[0] * one)}; };
  const Tensor x = randn({5});
  Captured c = capture(f, {x});
  REQUIRE(count_kind(c.graph, "mul") == 1);
  const auto reports = PassManager().add_list("drop_mul_by_one,dce").run(c.graph);
  CHECK(count_kind(c.graph, "mul") == 0);
  REQUIRE(reports[0].fused_groups.size() == 1);
  CHECK(reports[0].fused_groups[0].find("mul by one") != std::string::npos);
  CHECK(same(Executor(c.graph).run({x})[0], relu(x)));
}

TEST_CASE("a pass that breaks the graph is caught by the verifier, naming the pass") {
  struct Breaker final : Pass {
    std::string name() const override { return "breaker"; }
    void run(Graph& g, PassContext&) override { std::reverse(g.nodes.begin(), g.nodes.end()); }
  };
  Captured c = capture([](const std::vector<Tensor>& in) { return std::vector<Tensor>{relu(neg(in[0]))}; },
                       {randn({3})});
  PassManager pm;
  pm.add(std::make_unique<Breaker>());
  const std::string e = test::error_of([&] { pm.run(c.graph); });
  CHECK(e.find("after pass 'breaker'") != std::string::npos);
}

TEST_CASE("dumping writes the graph before and after each pass, as text and DOT") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "pacer_graph_dump_test";
  std::filesystem::remove_all(dir);
  Captured c = capture([](const std::vector<Tensor>& in) { return std::vector<Tensor>{exp(in[0]) + exp(in[0])}; },
                       {randn({3})});
  PassManager().add("cse").add("dce").dump_to(dir.string()).run(c.graph);
  for (const char* f : {"01-before-cse.txt", "01-after-cse.txt", "01-after-cse.dot", "02-after-dce.txt"})
    CHECK_MESSAGE(std::filesystem::exists(dir / f), f);
  std::ifstream in(dir / "01-before-cse.txt");
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str().find("exp(") != std::string::npos);
  std::filesystem::remove_all(dir);
}
