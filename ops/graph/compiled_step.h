#pragma once
/// CompiledStep: a step function run through capture, passes and the static executor,
/// cached by input signature (shapes, dtypes, devices). The first calls with a new
/// signature run eagerly (`eager_warmup` of them: optimizers create their state on their
/// first step, and state made inside a captured step would live in the planned memory),
/// the next one runs eagerly while being captured, and later ones replay. A new shape
/// captures again; sequence workloads bucket their lengths so that this stays rare.
///
///   graph::CompiledStep step([&](const std::vector<Tensor>& in) {
///     Tensor loss = cross_entropy(model.forward(in[0]), in[1]);
///     backward_and_step(loss, opt, nullptr);
///     return std::vector<Tensor>{loss};
///   }, {.capture = {.params = model.parameters()}});
///   Tensor loss = step({x, y})[0];

#include <map>
#include <memory>
#include <string>

#include "ops/graph/capture.h"
#include "ops/graph/executor.h"
#include "ops/graph/pass.h"

namespace pacer::graph {

struct CompileOptions {
  /// Comma-separated pass names; "default" is default_passes(), "none" (or "") none.
  std::string passes = "default";
  int eager_warmup = 1;
  CaptureOptions capture = {};
  ExecutorOptions executor = {};
};

class CompiledStep {
 public:
  CompiledStep(StepFn fn, CompileOptions options = {});

  std::vector<Tensor> operator()(const std::vector<Tensor>& inputs);

  /// How many graphs were captured (one per signature seen past its warmup).
  int64_t captures() const { return captures_; }
  /// Why the last capture that could not be kept was dropped ("" when none was).
  const std::string& last_refusal() const { return last_refusal_; }
  /// The executor of the last signature run (null while it is still warming up).
  const Executor* last_executor() const { return last_; }
  /// The pass reports of the last capture.
  const std::vector<PassReport>& last_reports() const { return reports_; }

 private:
  struct Entry {
    int eager_runs = 0;
    std::unique_ptr<Executor> executor;
  };
  StepFn fn_;
  CompileOptions options_;
  std::map<std::string, Entry> cache_;
  const Executor* last_ = nullptr;
  std::vector<PassReport> reports_;
  int64_t captures_ = 0;
  std::string last_refusal_;
};

/// The pass list `names` ("default", "none", or "a,b,c") applied to `g`.
std::vector<PassReport> run_passes(Graph& g, const std::string& names);

}  // namespace pacer::graph
