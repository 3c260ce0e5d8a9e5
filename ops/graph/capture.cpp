#include "ops/graph/capture.h"

#include <map>
#include <set>
#include <tuple>

#include "core/host_reads.h"

namespace pacer::graph {

namespace {

// A tensor as the recorder knows it: its storage (by serial, which no later storage
// reuses) and the geometry it has over it. Two handles with one key are the same value
// (autograd saves outputs as fresh handles over the same memory).
using Key = std::tuple<uint64_t, int64_t, DType, std::vector<int64_t>, std::vector<int64_t>>;

Key key_of(const Tensor& t) {
  return {t.storage()->serial(), t.storage_offset(), t.dtype(), std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
          std::vector<int64_t>(t.strides().begin(), t.strides().end())};
}

ops::TensorMeta meta_of(const Tensor& t) { return {t.sizes(), t.dtype(), t.device(), t.strides()}; }

class Recorder {
 public:
  Graph g;
  std::map<Key, int> by_key;
  std::set<uint64_t> internal_storages;  // made by a recorded op
  std::set<uint64_t> input_storages;
  std::string not_replayable;  // why the graph must not be replayed (first reason)

  int add_input(const Tensor& t, int index) {
    PACER_CHECK(t.defined(), "graph capture: input {} is undefined", index);
    const Key k = key_of(t);
    PACER_CHECK(!by_key.count(k), "graph capture: input {} is the same tensor as an earlier input", index);
    const int id = g.add_value(ValueKind::Input, meta_of(t));
    g.values[size_t(id)].input_index = index;
    g.inputs.push_back(id);
    by_key[k] = id;
    input_storages.insert(t.storage()->serial());
    return id;
  }

  // The value a tensor read by an op (or returned by the step) stands for.
  int value_of(const Tensor& t, const std::string& who) {
    const Key k = key_of(t);
    if (auto it = by_key.find(k); it != by_key.end()) return it->second;
    const uint64_t s = t.storage()->serial();
    PACER_CHECK(!internal_storages.count(s) && !input_storages.count(s),
                "graph capture: {} reads a {} {} view of a tensor made inside the step, but the view was made "
                "outside the op API (make_view, as_strided): the graph cannot follow it; make it with a view op",
                who, t.dtype(), t.sizes());
    const int id = g.add_value(ValueKind::State, meta_of(t));
    g.values[size_t(id)].state = t;
    by_key[k] = id;
    return id;
  }

  void record(const ops::OpCall& c) {
    const ops::OpDef& op = c.op;
    Node n;
    n.id = int(g.nodes.size());
    n.op = &op;
    n.attrs = c.attrs;
    n.device = c.device;
    const std::string who = fmt::format("op {}", op.name);
    for (const Tensor& t : c.inputs) n.inputs.push_back(t.defined() ? value_of(t, who) : -1);
    if (op.has(ops::kView) || op.has(ops::kInplace)) n.alias_input = 0;
    for (size_t i = 0; i < c.outputs.size() && n.alias_input < 0; ++i)
      for (size_t k = 0; k < c.inputs.size(); ++k)
        if (c.inputs[k].defined() && c.inputs[k].storage()->serial() == c.outputs[i].storage()->serial())
          n.alias_input = int(k);
    for (size_t i = 0; i < c.outputs.size(); ++i) {
      const Tensor& t = c.outputs[i];
      PACER_CHECK(t.defined(), "graph capture: op {} left output {} undefined", op.name, i);
      const bool allocated = n.allocates();
      ops::TensorMeta m = meta_of(t);
      // Allocated outputs keep the layout the dispatcher chose (empty strides: contiguous).
      if (allocated && i < c.output_meta.size()) m.strides = c.output_meta[i].strides;
      const int id = g.add_value(ValueKind::Internal, m);
      g.values[size_t(id)].producer = n.id;
      g.values[size_t(id)].output_index = int(i);
      n.outputs.push_back(id);
      by_key[key_of(t)] = id;  // an in-place op's output is the new version of its input
      // Views and in-place outputs share their input's storage, internal or not.
      if (allocated) internal_storages.insert(t.storage()->serial());
    }
    g.nodes.push_back(std::move(n));
  }
};

thread_local Recorder* t_recorder = nullptr;
thread_local int t_kernel_depth = 0;

}  // namespace

namespace detail {

bool recording() { return t_recorder != nullptr && t_kernel_depth == 0; }

void mark_not_replayable(const std::string& why) {
  if (t_recorder != nullptr && t_recorder->not_replayable.empty()) t_recorder->not_replayable = why;
}

void record_call(const ops::OpCall& c) { t_recorder->record(c); }

KernelScope::KernelScope() { ++t_kernel_depth; }
KernelScope::~KernelScope() { --t_kernel_depth; }

void check_capturable(const ops::OpDef& op) {
  PACER_CHECK(!op.has(ops::kRandom),
              "a random op cannot be captured yet (a replay would repeat the captured draws); draw it outside the "
              "captured step and pass it in as an input");
  PACER_CHECK(!op.has(ops::kDynamicShape),
              "an op whose output shape depends on the data cannot be captured (a replay could not plan it)");
}

}  // namespace detail

Captured capture(const StepFn& fn, const std::vector<Tensor>& inputs, const CaptureOptions& options) {
  PACER_CHECK(t_recorder == nullptr, "graph capture: a capture is already running in this thread (captures do not nest)");
  Recorder rec;
  for (size_t i = 0; i < inputs.size(); ++i) rec.add_input(inputs[i], int(i));
  // Gradients left by an earlier step: a step that reads them (accumulates into them
  // instead of starting with zero_grad) would read these very tensors in every replay.
  std::vector<Key> old_grads;
  for (const Tensor& p : options.params)
    if (p.defined() && p.grad().defined()) old_grads.push_back(key_of(p.grad()));
  Captured out;
  {
    t_recorder = &rec;
    struct Reset {
      ~Reset() { t_recorder = nullptr; }
    } reset;
    ForbidHostReads no_host_reads("graph capture");
    out.outputs = fn(inputs);
  }
  for (size_t i = 0; i < out.outputs.size(); ++i) {
    PACER_CHECK(out.outputs[i].defined(), "graph capture: output {} of the step is undefined", i);
    rec.g.outputs.push_back(rec.value_of(out.outputs[i], fmt::format("output {}", i)));
  }
  for (const Tensor& p : options.params) {
    if (!p.defined() || !p.grad().defined()) continue;
    auto it = rec.by_key.find(key_of(p.grad()));
    if (it == rec.by_key.end() || rec.g.values[size_t(it->second)].kind != ValueKind::Internal) continue;
    rec.g.grad_outputs.emplace_back(p, it->second);
  }
  rec.g.rebuild_uses();
  for (const Key& k : old_grads) {
    auto it = rec.by_key.find(k);
    PACER_CHECK(it == rec.by_key.end() || rec.g.values[size_t(it->second)].kind != ValueKind::State ||
                    rec.g.values[size_t(it->second)].uses.empty(),
                "graph capture: the step reads a gradient left in .grad by an earlier step (it accumulates instead "
                "of starting with zero_grad); a replay would read that old tensor every time: call zero_grad() (set "
                "to none) at the start of the step");
  }
  verify(rec.g, "capture");
  out.graph = std::move(rec.g);
  out.not_replayable = rec.not_replayable;
  return out;
}

}  // namespace pacer::graph
