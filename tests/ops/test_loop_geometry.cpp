// The elementwise engine's geometry (ops/cpu/loops.h, shared by the CUDA loops): dims are
// walked in the output's memory order, so that operands laid out alike merge into one dense
// run (the CUDA fast path) whatever their logical order; results stay elementwise-correct.
#include <doctest/doctest.h>

#include "ops/api.h"
#include "ops/cpu/loops.h"
#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

Tensor nhwc(const Tensor& t) { return permute(contiguous(permute(t, {0, 2, 3, 1})), {0, 3, 1, 2}); }

}  // namespace

TEST_CASE("loop geometry: channels-last operands merge into one dense run, mixed layouts follow the output") {
  const Tensor a = nhwc(cast(uniform({2, 3, 4, 5}, -1, 1, 1), DType::F32)), b = nhwc(cast(uniform({2, 3, 4, 5}, -1, 1, 2), DType::F32));
  const Tensor out = nhwc(zeros({2, 3, 4, 5}));
  const auto g = ops::cpu::make_geometry<3>(out, {&a, &b});
  REQUIRE(g.sizes.size() == 1);
  CHECK(g.sizes[0] == 120);
  for (size_t k = 0; k < 3; ++k) CHECK(g.strides[k][0] == 4);  // float32, dense
  // A contiguous input against a channels-last output: the output's memory order, outermost
  // first (N, then H*W merged, then C), the input's strides permuted alike.
  const Tensor c = cast(uniform({2, 3, 4, 5}, -1, 1, 3), DType::F32);
  const auto m = ops::cpu::make_geometry<2>(out, {&c});
  REQUIRE(m.sizes == Shape{2, 20, 3});
  CHECK(m.strides[0] == Shape{240, 12, 4});
  CHECK(m.strides[1] == Shape{240, 4, 80});
  // And the values are those of the contiguous computation.
  Tensor sum_mixed = nhwc(zeros({2, 3, 4, 5}));
  copy_(sum_mixed, a + c);
  CHECK(max(abs(sum_mixed - (contiguous(a) + c))).item<double>() == 0.0);
  CHECK(max(abs((a * b) - contiguous(a) * contiguous(b))).item<double>() == 0.0);
}

}  // namespace pacer::test
