// Redundant-cast elimination. Type promotion turns every Python-style number in an op call
// (the optimizer's lr and momentum, the loss scale) into a float64 scalar and a cast to the
// op's dtype, recomputed each step; mixed precision adds casts that undo each other.
//   - a cast of a number (a wrapped 0-d scalar the step made, which nothing else can change)
//     becomes a constant of the target dtype;
//   - a cast to the dtype its input already has is dropped;
//   - cast(cast(x, wide), dtype of x) is x when `wide` holds every value of x exactly
//     (f16/bf16 -> f32 -> back, f32 -> f64 -> back).
// The latter two stay off memory updated in place (the result would become an alias).
#include <fmt/format.h>

#include "ops/api.h"
#include "ops/graph/alias.h"
#include "ops/graph/pass.h"

namespace pacer::graph {

namespace {

// Whether every value of `narrow` is exactly a value of `wide`.
bool holds_exactly(DType wide, DType narrow) {
  if (wide == narrow) return true;
  if (wide == DType::F64) return narrow == DType::F32 || narrow == DType::F16 || narrow == DType::BF16;
  if (wide == DType::F32) return narrow == DType::F16 || narrow == DType::BF16;
  return false;
}

class CastElimination final : public Pass {
 public:
  std::string name() const override { return "cast_elim"; }
  std::string summary() const override { return "folds casts of numbers into constants and drops casts that undo each other"; }

  void run(Graph& g, PassContext& ctx) override {
    const std::vector<int> roots = memory_roots(g);
    const std::vector<bool> mutated = mutated_roots(g, roots);
    std::vector<int> replace(g.values.size());
    for (size_t v = 0; v < replace.size(); ++v) replace[v] = int(v);
    std::vector<int> producer_cast(g.values.size(), -1);  // value -> input of the cast that made it
    int folded = 0, dropped = 0;
    std::vector<Node> kept;
    for (Node& n : g.nodes) {
      for (int& in : n.inputs)
        if (in >= 0) in = replace[size_t(in)];
      if (n.kind() != "cast" || n.inputs.size() != 1 || n.inputs[0] < 0) {
        kept.push_back(std::move(n));
        continue;
      }
      const int x = n.inputs[0], out = n.outputs[0];
      const Value& xv = g.values[size_t(x)];
      const ops::TensorMeta out_meta = g.values[size_t(out)].meta;
      if (xv.kind == ValueKind::State && xv.state.dim() == 0 && xv.state.impl()->is_wrapped_number &&
          xv.uses.size() == 1 && !mutated[size_t(x)]) {
        Tensor constant = cast(xv.state, out_meta.dtype);
        if (constant.device() != out_meta.device) constant = constant.to(out_meta.device);
        const int c = g.add_value(ValueKind::State, out_meta);
        g.values[size_t(c)].state = constant;
        g.values[size_t(c)].meta.strides = {};
        replace.push_back(c);
        producer_cast.push_back(-1);
        replace[size_t(out)] = c;
        ++folded;
        continue;
      }
      const bool free_to_alias = !mutated[size_t(x)] && !mutated[size_t(out)];
      int same = -1;
      if (xv.meta.dtype == out_meta.dtype && xv.meta.sizes == out_meta.sizes) same = x;
      const int before_cast = producer_cast[size_t(x)];
      if (before_cast >= 0 && g.values[size_t(before_cast)].meta.dtype == out_meta.dtype &&
          g.values[size_t(before_cast)].meta.sizes == out_meta.sizes && holds_exactly(xv.meta.dtype, out_meta.dtype) &&
          !mutated[size_t(before_cast)])
        same = before_cast;
      if (same >= 0 && free_to_alias) {
        replace[size_t(out)] = same;
        ++dropped;
        continue;
      }
      producer_cast[size_t(out)] = x;
      kept.push_back(std::move(n));
    }
    g.nodes = std::move(kept);
    for (int& v : g.outputs) v = replace[size_t(v)];
    for (auto& [param, v] : g.grad_outputs) v = replace[size_t(v)];
    g.rebuild_uses();
    if (folded > 0) ctx.fused(fmt::format("{} casts of numbers folded into constants", folded));
    if (dropped > 0) ctx.fused(fmt::format("{} redundant casts dropped", dropped));
  }
};

PACER_REGISTER_PASS(CastElimination);

}  // namespace

}  // namespace pacer::graph
