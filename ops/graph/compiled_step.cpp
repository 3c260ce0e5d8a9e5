#include "ops/graph/compiled_step.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

namespace pacer::graph {

namespace {

std::string signature_of(const std::vector<Tensor>& inputs) {
  std::string s;
  for (const Tensor& t : inputs)
    s += t.defined() ? fmt::format("{}{}@{};", t.dtype(), t.sizes(), t.device()) : std::string("undefined;");
  return s;
}

}  // namespace

std::vector<PassReport> run_passes(Graph& g, const std::string& names) {
  PassManager pm;
  pm.add_list(names);
  return pm.run(g);
}

CompiledStep::CompiledStep(StepFn fn, CompileOptions options) : fn_(std::move(fn)), options_(std::move(options)) {
  PACER_CHECK(fn_ != nullptr, "CompiledStep: the step function is empty");
  PACER_CHECK(options_.eager_warmup >= 0, "CompiledStep: expected eager_warmup >= 0, got {}", options_.eager_warmup);
}

std::vector<Tensor> CompiledStep::operator()(const std::vector<Tensor>& inputs) {
  Entry& e = cache_[signature_of(inputs)];
  if (e.executor) {
    last_ = e.executor.get();
    return e.executor->run(inputs);
  }
  if (e.eager_runs < options_.eager_warmup) {
    ++e.eager_runs;
    last_ = nullptr;
    return fn_(inputs);
  }
  Captured c = capture(fn_, inputs, options_.capture);
  if (!c.not_replayable.empty()) {  // a correct step, but no graph: capture again next call
    last_ = nullptr;
    last_refusal_ = c.not_replayable;
    return c.outputs;
  }
  reports_ = run_passes(c.graph, options_.passes);
  e.executor = std::make_unique<Executor>(std::move(c.graph), options_.executor);
  last_ = e.executor.get();
  ++captures_;
  return c.outputs;
}

}  // namespace pacer::graph
