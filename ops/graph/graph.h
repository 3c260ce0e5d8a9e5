#pragma once
/// The graph IR (DESIGN §5): a captured step as an SSA program. Every Value is defined
/// once: by a Node, or as a graph input (a tensor the caller passes each run) or a state
/// tensor (read and written by reference: parameters, optimizer buffers, constants). An
/// in-place op defines a new Value for the tensor it modifies, so a read names the version
/// it sees. Nodes are kept in their execution order, which is a topological order.

#include <memory>
#include <string>
#include <vector>

#include "ops/op_def.h"

namespace pacer::graph {

class Graph;

enum class ValueKind : uint8_t { Internal, Input, State };

struct Value {
  int id = -1;
  ValueKind kind = ValueKind::Internal;
  ops::TensorMeta meta;     // sizes, dtype, device, strides
  int producer = -1;        // the defining node's id (Internal values)
  int output_index = 0;     // which output of the producer
  std::vector<int> uses;    // ids of the nodes that read it (recomputed by Graph::rebuild_uses)
  Tensor state;             // State values: the tensor itself, read and written by reference
  int input_index = -1;     // Input values: position in the run's input list
};

/// What a fused node runs: built by a pass, with the unfused nodes it replaces kept as its
/// reference (PACER_VERIFY_FUSION runs both).
class FusedKernel {
 public:
  virtual ~FusedKernel() = default;
  /// Short name for dumps ("fused_pointwise", "bn_add_relu").
  virtual std::string name() const = 0;
  /// One line describing what it computes (the fused ops), for dumps.
  virtual std::string describe() const = 0;
  /// Computes the outputs into `outputs` (allocated by the executor with the outputs'
  /// metadata) from `inputs`.
  virtual void run(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const = 0;
  /// Kernel launches it counts as (1 for one fused loop or kernel).
  virtual int launches() const { return 1; }
};

struct Node {
  int id = -1;
  const ops::OpDef* op = nullptr;         // an op call ...
  std::shared_ptr<FusedKernel> fused;     // ... or a fused kernel (op is null)
  ops::Attrs attrs;
  std::vector<int> inputs;                // value ids; -1 for an undefined optional input
  std::vector<int> outputs;               // value ids
  Device device = kCPU;
  /// The input whose memory the outputs share: 0 for views and in-place ops; set at
  /// capture for an op that returned (a view of) an input although it is no view op;
  /// -1 when the outputs are fresh memory.
  int alias_input = -1;
  /// Fused nodes only, one entry per output: the input whose memory that output updates in
  /// place (the output is the new version of that tensor), or -1 for fresh memory.
  std::vector<int> output_alias;
  /// The unfused nodes a fused node replaces (in order), over the same value ids.
  std::vector<Node> reference;

  std::string kind() const;
  /// Modifies its input 0 in place (output 0 is the new version of that tensor).
  bool is_inplace() const;
  /// Whether the outputs are fresh memory (not a view or update of an input); for a fused
  /// node, whether any output is.
  bool allocates() const;
  /// The input (index) whose memory output `k` shares, or -1 when it is fresh memory.
  int aliased_input(size_t k) const;
  /// The inputs (indices) this node writes in place: an in-place op's (OpDef::writes: input 0,
  /// and more for ops such as amp_unscale_), the updated inputs of a fused node.
  std::vector<int> written_inputs() const;
};

class Graph {
 public:
  std::vector<Value> values;
  std::vector<Node> nodes;     // in execution order
  std::vector<int> inputs;     // value ids of the run's inputs, in order
  std::vector<int> outputs;    // value ids the run returns, in order
  /// State tensors whose .grad is rebound to a value after each run (parameters whose
  /// gradients the step computes): (parameter, value id).
  std::vector<std::pair<Tensor, int>> grad_outputs;

  /// A new value (not yet defined by a node); returns its id.
  int add_value(ValueKind kind, const ops::TensorMeta& meta);
  /// Recomputes every value's use list and producer from the node list.
  void rebuild_uses();
  /// Values the run must keep (outputs and rebound gradients).
  std::vector<int> escaping_values() const;
  /// Per value id: whether it is one of escaping_values().
  std::vector<bool> escaping_mask() const;
  /// Kernel launches one run of the graph makes.
  int64_t launches() const;
  /// An id no node has used (fused nodes' references included), for a node a pass adds.
  int next_node_id() const;
  /// Per node id: its position in `nodes` (-1 for ids not in the list).
  std::vector<int> positions() const;
};

/// Where a graph's values are made and read, for passes that match patterns over it. Taken
/// once (it copies nothing of the graph); valid until the node list or use lists change.
struct GraphIndex {
  explicit GraphIndex(const Graph& graph);
  const Graph& g;
  std::vector<int> pos;        // node id -> position in g.nodes (-1: none)
  std::vector<bool> escaping;  // value id -> whether a run keeps it (escaping_values)
  /// The position of the node that makes value v, or -1 (an input, state, a value added
  /// since, or v < 0).
  int producer(int v) const;
  /// The node that makes value v, or null where producer(v) is -1.
  const Node* producer_node(int v) const;
  /// The position of v's reader when it has exactly one and does not escape, else -1.
  int only_reader(int v) const;
};

/// Checks the SSA invariants: each value defined once, before its uses; ids in range; use
/// lists match; outputs defined; fused nodes' references well formed. Throws naming the
/// pass that broke it (`after`) and the node.
void verify(const Graph& g, const std::string& after);

/// Text form: one line per node, `%5 = relu(%4)   # f32[8, 64, 56, 56]`.
std::string to_text(const Graph& g);
/// Graphviz DOT form.
std::string to_dot(const Graph& g);

/// Whether tensors of this metadata are contiguous (empty strides mean contiguous).
bool is_contiguous(const ops::TensorMeta& m);

/// "%12" for value 12.
std::string value_name(int id);

}  // namespace pacer::graph
