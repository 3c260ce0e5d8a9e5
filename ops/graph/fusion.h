#pragma once
/// Shared by the fusion passes: replace groups of nodes with fused nodes, checking with
/// MemoryOrderCheck that nothing then reads a value at the wrong time or before it exists.

#include <string>
#include <vector>

#include "ops/graph/pass.h"

namespace pacer::graph {

struct Fusion {
  std::vector<size_t> members;  // positions of the nodes it replaces, in order
  Node node;                    // the fused node (its reference: those nodes)
  std::string what;             // for the report; empty: "<kind> -> node <id>"
  /// Put the node where the first member was (else where the last was). A fusion placed
  /// first that breaks the order is tried at the last place before it is dropped.
  bool at_first = false;
  /// Put the node where members[at_member] was, when set (< members.size()); a hazard there
  /// moves it to the last place, as for at_first.
  size_t at_member = size_t(-1);
};

/// Applies the fusions to `g`; those that would change what a node reads are dropped and
/// reported with ctx.rejected, the others reported with ctx.fused.
void apply_fusions(Graph& g, std::vector<Fusion> fusions, PassContext& ctx);

}  // namespace pacer::graph
