// softmax and log_softmax along one dim (computed in a numerically stable way, f32 math
// for half inputs; autocast policy fp32).
#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

void infer_softmax(OpCall& c) {
  check_floating(c.in(0), "input");
  c.attrs.set("dim", wrap_dim(c.attrs.i("dim"), c.in(0).dim()));
  same_shape_output(c, c.in(0).dtype());
}

OpDef softmax_op(const char* name, BackwardFn bw) {
  OpDef d;
  d.name = name;
  d.tags = kReduction;
  d.amp = AmpPolicy::Fp32;
  d.infer = infer_softmax;
  d.backward = bw;
  d.save_outputs = 1;
  return d;
}

}  // namespace

// dx = y * (g - sum(g * y))
PACER_OP(softmax) {
  return softmax_op("softmax", [](const GradCall& g) -> std::vector<Tensor> {
    const Tensor& y = g.outputs[0];
    const int64_t dim = g.attrs.i("dim");
    Tensor gy = g.grad() * y;
    return {gy - y * sum(gy, {dim}, true)};
  });
}

// dx = g - exp(y) * sum(g)
PACER_OP(log_softmax) {
  return softmax_op("log_softmax", [](const GradCall& g) -> std::vector<Tensor> {
    const int64_t dim = g.attrs.i("dim");
    return {g.grad() - exp(g.outputs[0]) * sum(g.grad(), {dim}, true)};
  });
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

Tensor softmax(const Tensor& x, int64_t dim) { return call1(op_softmax(), {x}, {{"dim", dim}}); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return call1(op_log_softmax(), {x}, {{"dim", dim}}); }

}  // namespace pacer
