#pragma once
/// The static executor (DESIGN §5): runs a graph's nodes in their order, with the memory
/// of every intermediate planned ahead of time. Planning: each tensor a node allocates
/// (with the views and in-place versions that share it) lives from its producer to its
/// last reader; tensors whose lifetimes overlap get disjoint ranges of one arena per
/// device, placed largest first at the lowest free offset. The arena is allocated once and
/// reused by every run. The step's outputs, which the caller keeps, are allocated fresh;
/// rebound gradients are planned, alive to the end of the run (a run first unbinds the last
/// run's, and takes a new arena when a gradient of an earlier run is still held elsewhere).
///
/// Kernel scratch (core/scratch.h) is planned too: the first run measures what each CPU node
/// asks for, and the arena is planned again with a workspace range per node that asked,
/// alive while it runs and placed with the tensors, largest first, in gaps where it fits;
/// later runs serve
/// each node's scratch from its range. So an algorithm's workspace (Winograd's filter
/// transform, im2col's columns) costs the step's peak nothing where the arena has room.
///
/// On CUDA the whole run becomes one CUDA graph (executor_cuda_graph.cpp): the first run
/// warms up (kernels compiled, algorithms chosen, workspaces sized), the second is captured
/// and launched, later ones copy their inputs into the captured input memory, launch the
/// graph once, and return copies of its outputs. It is captured again when what it froze
/// has moved: a new arena, or a value changed in a CPU tensor its kernels read.

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ops/graph/graph.h"

namespace pacer::graph {

namespace detail {
/// A copy of `t` in fresh memory, laid out as `t` when it covers its memory exactly in some
/// dimension order (contiguous, channels-last, ...), else contiguous.
Tensor copy_keeping_layout(const Tensor& t);
}  // namespace detail

struct ExecutorOptions {
  /// Place intermediates in the planned arena (off: each is allocated as eager would).
  bool plan_memory = true;
  /// Plan CPU nodes' kernel scratch in the arena from the second run on (above).
  bool plan_workspace = true;
  /// Run a convolution's input and weight gradients at once, one per thread, where they are
  /// adjacent (the conv_backward_pairs pass puts them so): CPU, with a pool of exactly 2
  /// threads (with more, each node would still get one, and the rest would sit idle).
  bool concurrent_pairs = true;
  /// Run each fused node's unfused reference too and compare (PACER_VERIFY_FUSION=1 turns it on for every executor).
  bool verify_fusion = false;
  /// Time each node and add it up per node kind (profile()).
  bool profile = false;
  /// On CUDA, replay each run from the second on as one CUDA graph (PACER_CUDA_GRAPH=0 turns
  /// it off for every executor).
  bool cuda_graph = true;
  /// Tests: a graph of CPU nodes takes the CUDA-graph path anyway (warm-up, capture, replays
  /// that copy inputs in, hand out copies of outputs, rebuild gradients, and capture again
  /// when memory or a host scalar moves), a "launch" running the nodes again over the same
  /// memory: that bookkeeping is tested where there is no GPU. PACER_EMULATE_CUDA_GRAPH=1
  /// turns it on for every executor (to run a whole test suite through it).
  bool emulate_cuda_graph = false;
};

/// Wall time of one kind of node (op name or fused kernel) summed over runs.
struct KindProfile {
  std::string kind;
  int64_t calls = 0;
  double seconds = 0;
  /// Process CPU time over those calls (all threads): cpu_seconds / (seconds x threads) is how
  /// busy the pool kept (CPU nodes; serial stretches show as low ratios).
  double cpu_seconds = 0;
};

struct ExecutorStats {
  int64_t nodes = 0;
  int64_t launches = 0;
  /// Bytes of the planned arenas (all devices): the peak of the planned intermediates.
  size_t planned_bytes = 0;
  /// What the same tensors would take with no reuse at all (each its own memory).
  size_t unplanned_bytes = 0;
  /// Tensors placed in the arena.
  int64_t planned_tensors = 0;
  /// Adjacent node pairs run at once (concurrent_pairs).
  int64_t concurrent_pairs = 0;
  /// Nodes given a workspace range (after the first run), and the largest range.
  int64_t workspace_nodes = 0;
  size_t largest_workspace = 0;
  /// Where the planned tensors alive at once add up to the most (a node position), and what
  /// holds that memory: bytes per kind of the node that made each tensor, largest first.
  int64_t peak_position = -1;
  std::vector<std::pair<std::string, size_t>> peak_holders;
  /// CUDA graphs: "" for a graph that runs on the CPU; "on" when runs are replayed as one
  /// CUDA graph; otherwise "off: " or "refused: " and why (a capture that failed says what
  /// could not be recorded).
  std::string cuda_graph;
  int64_t cuda_graph_captures = 0;
  int64_t cuda_graph_replays = 0;  // runs that were one graph launch (the capturing run included)
  int64_t cuda_graph_nodes = 0;    // kernels and copies in the last captured graph
};

class Executor {
 public:
  explicit Executor(Graph graph, ExecutorOptions options = {});
  Executor(const Executor&) = delete;  // a copy would share the arenas and the CUDA graph
  Executor& operator=(const Executor&) = delete;
  Executor(Executor&&) = default;
  // No move assignment: the old arenas would go before the old CUDA graph stopped using them.
  Executor& operator=(Executor&&) = delete;

  /// Runs the graph on `inputs` (the shapes, dtypes and devices it was captured with);
  /// returns its outputs and rebinds the parameters' gradients.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);

  const Graph& graph() const { return graph_; }
  /// Whether `t`'s memory lies in one of the arenas this executor now uses.
  bool in_arena(const Tensor& t) const;
  const ExecutorStats& stats() const { return stats_; }
  /// Per node kind, slowest first (empty unless options.profile).
  std::vector<KindProfile> profile() const;
  /// Forgets the times so far (the first run pays for first touches of the arena).
  void clear_profile() { profile_.clear(); }

 private:
  struct Arena {
    Device device;
    size_t bytes = 0;
    Storage storage;
  };
  struct CudaGraphReplay;  // executor_cuda_graph.cpp
  /// Marks the pairs of adjacent nodes that run at once (options_.concurrent_pairs).
  void find_pairs();
  void plan();
  /// After the run that measured the nodes' scratch: plans again with workspaces (the next
  /// run allocates and first touches the new arenas).
  void plan_with_workspaces();
  /// Plans again from nothing (with the current pairs and workspaces); the planned bytes.
  size_t replan();
  Tensor planned_tensor(int value);
  /// A tensor laid out as `m` at byte `offset` of arena `arena` (allocated on first use).
  Tensor arena_tensor(size_t arena, size_t offset, const ops::TensorMeta& m);
  /// Runs every node on `inputs` (checked), rebinds the gradients, returns the outputs.
  std::vector<Tensor> run_nodes(const std::vector<Tensor>& inputs);
  /// Why this graph's runs cannot be one CUDA graph ("" when they can; "cpu" on the CPU).
  std::string cuda_graph_refusal() const;
  /// The device-independent part of it (all an emulated CUDA graph checks).
  std::string emulation_refusal() const;
  /// Sets stats_.cuda_graph, and the replay state when runs can be one CUDA graph.
  void setup_cuda_graph();
  /// Copies of a run's outputs (state outputs as they are), for outputs in planned memory.
  std::vector<Tensor> handed_out(const std::vector<Tensor>& outputs) const;
  /// A run through the CUDA graph: warm-up, capture or replay.
  std::vector<Tensor> run_cuda_graph(const std::vector<Tensor>& inputs, bool arena_replaced);
  /// `planned`: outputs go to their arena ranges; false: fresh memory (a fused node's reference).
  std::vector<Tensor> allocate_outputs(const Node& n, const std::vector<Tensor>& inputs, bool planned);
  void run_node(const Node& n, std::vector<Tensor>& env, bool planned = true);
  std::vector<Tensor> run_reference(const Node& n, const std::vector<Tensor>& env);
  void check_fused(const Node& n, const std::vector<Tensor>& env, const std::vector<Tensor>& reference);

  Graph graph_;
  ExecutorOptions options_;
  ExecutorStats stats_;
  std::vector<Arena> arenas_;
  std::vector<int> arena_of_;            // per value: arena index, -1 when not planned
  std::vector<size_t> offset_of_;        // per value: byte offset in its arena
  std::vector<std::vector<int>> release_after_;  // per node position: values to drop after it
  std::vector<bool> with_next_;  // per node position: runs at once with the next node
  std::vector<int64_t> live_bytes_;  // per node position: planned tensor bytes alive there
  // Kernel scratch per node position: measured bytes (in the first run), and the arena and
  // offset of its range once planned (-1: none).
  enum class Workspaces { Measure, Planned, Off };
  Workspaces workspaces_ = Workspaces::Off;
  std::vector<size_t> workspace_bytes_;
  std::vector<int> workspace_arena_;
  std::vector<size_t> workspace_offset_;
  bool touch_new_arenas_ = false;
  int workspace_threads_ = 0;  // the pool's size when the workspaces were measured
  std::map<std::string, KindProfile> profile_;
  bool profile_shapes_ = false;  // PACER_PROFILE_SHAPES: profile keys add the output shape
  // Null unless runs can be one CUDA graph (shared_ptr: its type is complete in one file only).
  std::shared_ptr<CudaGraphReplay> cuda_graph_;
  // Outputs planned in the arenas and handed out as copies (set with a CUDA graph, and kept
  // when its capture is refused).
  bool outputs_planned_ = false;
};

}  // namespace pacer::graph
