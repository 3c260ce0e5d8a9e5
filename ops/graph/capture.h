#pragma once
/// Graph capture (DESIGN §5): runs a step eagerly once while recording every op call it
/// makes (forward, the backward's gradient ops, the optimizer's updates) into a Graph.
///
/// What becomes what:
///  - the tensors passed as `inputs` are the graph's inputs: a replay binds new ones;
///  - any other tensor the step reads that no recorded op made (parameters, optimizer
///    buffers, constants) is state, read and written by reference: a replay sees its value
///    then, and in-place updates of it (optimizer steps, running statistics) reach it;
///  - the step's returned tensors are the outputs; the gradients it leaves in `params`'
///    .grad are rebound to the replay's values after each run.
/// Refused during capture, with a clear error: host reads of values (item, to_vector:
/// they would be frozen), random ops (their draws would repeat), ops with data-dependent
/// shapes, and views made outside the op API. Attributes (scalars such as a learning rate
/// passed as a number) are frozen into the graph: a value that changes per step must be a
/// tensor.

#include <functional>
#include <string>
#include <vector>

#include "ops/graph/graph.h"

namespace pacer::graph {

using StepFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

struct CaptureOptions {
  /// Parameters whose .grad the step computes and a replay must rebind.
  std::vector<Tensor> params = {};
};

struct Captured {
  Graph graph;
  /// What the eager run returned (the captured run is a real step).
  std::vector<Tensor> outputs;
  /// Empty when the graph can be replayed; else why not (a step that made persistent state,
  /// such as an optimizer's first update). The run itself was a correct step.
  std::string not_replayable;
};

/// Runs fn(inputs) eagerly and records it.
Captured capture(const StepFn& fn, const std::vector<Tensor>& inputs, const CaptureOptions& options = {});

namespace detail {
/// Whether this thread is capturing and not inside a kernel (the dispatcher asks).
bool recording();
/// Records one op call whose kernel has run (called by the dispatcher).
void record_call(const ops::OpCall& c);
/// Marks this thread as inside a kernel for the guard's lifetime: the op calls a kernel
/// makes internally are its own business, not nodes of the graph.
class KernelScope {
 public:
  KernelScope();
  ~KernelScope();
  KernelScope(const KernelScope&) = delete;
  KernelScope& operator=(const KernelScope&) = delete;
};
/// Refuses the call when capturing (random ops, data-dependent shapes); `op` names it.
void check_capturable(const ops::OpDef& op);
/// Marks the step being captured as one whose graph must not be replayed (it made state
/// that later steps keep: replays would make it again); no-op when not capturing.
void mark_not_replayable(const std::string& why);
}  // namespace detail

}  // namespace pacer::graph
