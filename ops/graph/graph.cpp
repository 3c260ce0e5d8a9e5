#include "ops/graph/graph.h"

#include <fmt/format.h>

#include <algorithm>

namespace pacer::graph {

std::string value_name(int id) { return id < 0 ? std::string("_") : fmt::format("%{}", id); }

std::string Node::kind() const { return op ? op->name : (fused ? fused->name() : std::string("?")); }

bool Node::is_inplace() const { return op && op->has(ops::kInplace); }

bool Node::allocates() const {
  if (!fused) return alias_input < 0;
  for (size_t k = 0; k < outputs.size(); ++k)
    if (aliased_input(k) < 0) return true;
  return false;
}

int Node::aliased_input(size_t k) const {
  if (!fused) return alias_input;
  return k < output_alias.size() ? output_alias[k] : -1;
}

std::vector<int> Node::written_inputs() const {
  if (is_inplace()) {
    std::vector<int> out = op->written_inputs(inputs.size());
    std::erase_if(out, [&](int i) { return inputs[size_t(i)] < 0; });  // an undefined optional input
    return out;
  }
  std::vector<int> out;
  if (fused)
    for (int a : output_alias)
      if (a >= 0) out.push_back(a);
  return out;
}

int Graph::add_value(ValueKind kind, const ops::TensorMeta& meta) {
  Value v;
  v.id = int(values.size());
  v.kind = kind;
  v.meta = meta;
  values.push_back(std::move(v));
  return values.back().id;
}

void Graph::rebuild_uses() {
  for (Value& v : values) {
    v.uses.clear();
    if (v.kind == ValueKind::Internal) v.producer = -1;
  }
  for (const Node& n : nodes) {
    for (int in : n.inputs)
      if (in >= 0) values[size_t(in)].uses.push_back(n.id);
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      values[size_t(n.outputs[k])].producer = n.id;
      values[size_t(n.outputs[k])].output_index = int(k);
    }
  }
}

std::vector<int> Graph::escaping_values() const {
  std::vector<int> out = outputs;
  for (const auto& [param, v] : grad_outputs) out.push_back(v);
  return out;
}

std::vector<bool> Graph::escaping_mask() const {
  std::vector<bool> mask(values.size(), false);
  for (int v : escaping_values()) mask[size_t(v)] = true;
  return mask;
}

bool is_contiguous(const ops::TensorMeta& m) { return m.strides.empty() || m.strides == contiguous_strides(m.sizes); }

int64_t Graph::launches() const {
  int64_t n = 0;
  for (const Node& node : nodes) n += node.fused ? node.fused->launches() : 1;
  return n;
}

namespace {

int max_id(const std::vector<Node>& nodes) {
  int m = -1;
  for (const Node& n : nodes) m = std::max({m, n.id, max_id(n.reference)});
  return m;
}

}  // namespace

int Graph::next_node_id() const { return max_id(nodes) + 1; }

std::vector<int> Graph::positions() const {
  std::vector<int> pos(size_t(next_node_id()), -1);
  for (size_t p = 0; p < nodes.size(); ++p) pos[size_t(nodes[p].id)] = int(p);
  return pos;
}

GraphIndex::GraphIndex(const Graph& graph) : g(graph), pos(graph.positions()), escaping(graph.escaping_mask()) {}

int GraphIndex::producer(int v) const {
  if (v < 0 || size_t(v) >= escaping.size()) return -1;
  const Value& val = g.values[size_t(v)];
  return val.kind == ValueKind::Internal && val.producer >= 0 ? pos[size_t(val.producer)] : -1;
}

const Node* GraphIndex::producer_node(int v) const {
  const int p = producer(v);
  return p < 0 ? nullptr : &g.nodes[size_t(p)];
}

int GraphIndex::only_reader(int v) const {
  if (v < 0 || size_t(v) >= escaping.size()) return -1;
  const Value& val = g.values[size_t(v)];
  if (val.uses.size() != 1 || escaping[size_t(v)]) return -1;
  return pos[size_t(val.uses[0])];
}

namespace {

void verify_nodes(const Graph& g, const std::vector<Node>& nodes, std::vector<int>& defined_at,
                  const std::string& after, const std::string& where) {
  const int nv = int(g.values.size());
  for (size_t pos = 0; pos < nodes.size(); ++pos) {
    const Node& n = nodes[pos];
    const std::string who = fmt::format("graph verifier (after {}): node {} ({}{})", after, n.id, n.kind(), where);
    PACER_CHECK((n.op != nullptr) != (n.fused != nullptr), "{}: expected exactly one of an op or a fused kernel",
                who);
    for (int in : n.inputs) {
      if (in < 0) continue;
      PACER_CHECK(in < nv, "{}: input {} is not a value of the graph ({} values)", who, value_name(in), nv);
      const Value& v = g.values[size_t(in)];
      PACER_CHECK(v.kind != ValueKind::Internal || defined_at[size_t(in)] >= 0,
                  "{}: input {} is read before any node defines it", who, value_name(in));
    }
    PACER_CHECK(!n.is_inplace() || (!n.inputs.empty() && n.inputs[0] >= 0 && !n.outputs.empty()),
                "{}: an in-place op needs input 0 and output 0", who);
    PACER_CHECK(n.output_alias.empty() || (n.fused && n.output_alias.size() == n.outputs.size()),
                "{}: output_alias needs a fused node and one entry per output ({} entries, {} outputs)", who,
                n.output_alias.size(), n.outputs.size());
    for (int a : n.output_alias)
      PACER_CHECK(a < int(n.inputs.size()) && (a < 0 || n.inputs[size_t(a)] >= 0),
                  "{}: an output updates input {}, which the node does not have", who, a);
    for (int out : n.outputs) {
      PACER_CHECK(out >= 0 && out < nv, "{}: output {} is not a value of the graph", who, value_name(out));
      PACER_CHECK(g.values[size_t(out)].kind == ValueKind::Internal, "{}: output {} is a graph input or state",
                  who, value_name(out));
      PACER_CHECK(defined_at[size_t(out)] < 0, "{}: output {} is defined twice (SSA)", who, value_name(out));
      defined_at[size_t(out)] = int(pos);
    }
  }
}

}  // namespace

void verify(const Graph& g, const std::string& after) {
  const int nv = int(g.values.size());
  for (int i = 0; i < nv; ++i)
    PACER_CHECK(g.values[size_t(i)].id == i, "graph verifier (after {}): value at {} has id {}", after, i,
                g.values[size_t(i)].id);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    PACER_CHECK(g.nodes[i].id >= 0, "graph verifier (after {}): node at position {} has no id", after, i);
  std::vector<int> defined_at(size_t(nv), -1);
  verify_nodes(g, g.nodes, defined_at, after, "");

  // Use lists must match the node list exactly.
  std::vector<std::vector<int>> uses(static_cast<size_t>(nv));
  for (const Node& n : g.nodes)
    for (int in : n.inputs)
      if (in >= 0) uses[size_t(in)].push_back(n.id);
  for (int i = 0; i < nv; ++i) {
    std::vector<int> a = uses[size_t(i)], b = g.values[size_t(i)].uses;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    PACER_CHECK(a == b, "graph verifier (after {}): the use list of {} is stale ({} listed, {} actual)", after,
                value_name(i), b.size(), a.size());
  }
  for (int in : g.inputs)
    PACER_CHECK(in >= 0 && in < nv && g.values[size_t(in)].kind == ValueKind::Input,
                "graph verifier (after {}): graph input {} is not an input value", after, value_name(in));
  for (int out : g.escaping_values()) {
    PACER_CHECK(out >= 0 && out < nv, "graph verifier (after {}): output {} is not a value", after, value_name(out));
    PACER_CHECK(g.values[size_t(out)].kind != ValueKind::Internal || defined_at[size_t(out)] >= 0,
                "graph verifier (after {}): output {} is never defined", after, value_name(out));
  }
  // A fused node's reference reads the fused node's inputs and defines its outputs.
  for (const Node& n : g.nodes) {
    if (!n.fused) continue;
    PACER_CHECK(!n.reference.empty(), "graph verifier (after {}): fused node {} ({}) has no unfused reference",
                after, n.id, n.kind());
    std::vector<int> ref_defined(size_t(nv), -1);
    for (int i = 0; i < nv; ++i)
      if (defined_at[size_t(i)] >= 0 && std::find(n.outputs.begin(), n.outputs.end(), i) == n.outputs.end())
        ref_defined[size_t(i)] = 0;
    verify_nodes(g, n.reference, ref_defined, after, fmt::format(", in the reference of fused node {}", n.id));
    for (int out : n.outputs)
      PACER_CHECK(ref_defined[size_t(out)] >= 0,
                  "graph verifier (after {}): fused node {} ({}): its reference never defines output {}", after,
                  n.id, n.kind(), value_name(out));
  }
}

namespace {

std::string meta_text(const ops::TensorMeta& m) { return fmt::format("{}{}", m.dtype, m.sizes); }

std::string args_text(const std::vector<int>& ids) {
  std::string s;
  for (int id : ids) s += (s.empty() ? "" : ", ") + value_name(id);
  return s;
}

std::string node_text(const Graph& g, const Node& n, const std::string& indent) {
  std::string s = indent + args_text(n.outputs) + " = " + n.kind() + "(" + args_text(n.inputs);
  const std::string attrs = n.attrs.to_string();
  if (!attrs.empty()) s += "; " + attrs;
  s += ")";
  std::string types;
  for (int out : n.outputs) types += (types.empty() ? "" : ", ") + meta_text(g.values[size_t(out)].meta);
  s += "   # " + types;
  if (n.fused) s += "  [" + n.fused->describe() + "]";
  s += "\n";
  for (const Node& r : n.reference) s += node_text(g, r, indent + "  | ");
  return s;
}

}  // namespace

std::string to_text(const Graph& g) {
  std::string s;
  for (const Value& v : g.values) {
    if (v.kind == ValueKind::Input)
      s += fmt::format("input {} {}\n", value_name(v.id), meta_text(v.meta));
    else if (v.kind == ValueKind::State && !v.uses.empty())
      s += fmt::format("state {} {}\n", value_name(v.id), meta_text(v.meta));
  }
  for (const Node& n : g.nodes) s += node_text(g, n, "");
  s += "return " + args_text(g.outputs) + "\n";
  for (const auto& [param, v] : g.grad_outputs) s += fmt::format("grad {} -> parameter {}\n", value_name(v), meta_text(g.values[size_t(v)].meta));
  return s;
}

std::string to_dot(const Graph& g) {
  std::string s = "digraph pacer {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n";
  for (const Value& v : g.values) {
    if (v.kind == ValueKind::Internal || v.uses.empty()) continue;
    s += fmt::format("  v{} [shape=ellipse, label=\"{} {}\\n{}\"];\n", v.id, v.kind == ValueKind::Input ? "input" : "state",
                     value_name(v.id), meta_text(v.meta));
  }
  for (const Node& n : g.nodes) {
    s += fmt::format("  n{} [shape=box, style=filled, fillcolor=\"{}\", label=\"{}\\n{}\"];\n", n.id,
                     n.fused ? "#ffd27f" : "#dde8ff", n.kind(), meta_text(g.values[size_t(n.outputs.at(0))].meta));
    for (int in : n.inputs) {
      if (in < 0) continue;
      const Value& v = g.values[size_t(in)];
      if (v.kind == ValueKind::Internal) s += fmt::format("  n{} -> n{} [label=\"{}\"];\n", v.producer, n.id, value_name(in));
      else s += fmt::format("  v{} -> n{};\n", in, n.id);
    }
  }
  s += "}\n";
  return s;
}

}  // namespace pacer::graph
