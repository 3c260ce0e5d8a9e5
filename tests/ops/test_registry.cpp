// The registry self-test (DESIGN §3): every op has a kernel for each built device (or a
// decomposition), a backward (or is marked not differentiable), and a row in the op table.
#include <set>

#include <doctest/doctest.h>

#include "core/cuda/runtime.h"
#include "tests/ops/op_table.h"

namespace pacer::test {

TEST_CASE("registry self-test: kernels, backward and op-table rows for every op") {
  std::set<std::string> covered;
  for (const OpCase& row : all_rows()) {
    CHECK_MESSAGE(!row.errors.empty(), "row " << row.name << " has no error inputs");
    for (const auto& name : row.covers) {
      covered.insert(name);
      CHECK_NOTHROW(ops::find_op(name));  // a row names only real ops
    }
  }
  const auto ops = ops::all_ops();
  CHECK(ops.size() > 60);
  for (const ops::OpDef* op : ops) {
    INFO("op: " << op->name);
    if (op->decompose) {
      CHECK_MESSAGE(!op->backward, op->name << ": a composite op must not define a backward");
    } else {
      if (!op->has(ops::kDeviceSpecific))
        CHECK_MESSAGE(bool(op->kernels[int(DeviceType::CPU)]), op->name << " has no CPU kernel");
      // A build with the CUDA backend runs every op on CUDA too (DESIGN §3).
      if (cuda::is_built()) CHECK_MESSAGE(bool(op->kernels[int(DeviceType::CUDA)]), op->name << " has no CUDA kernel");
      CHECK_MESSAGE(bool(op->infer), op->name << " has no infer");
      CHECK_MESSAGE(bool(op->backward) != op->not_differentiable,
                    op->name << ": needs exactly one of backward and not_differentiable");
    }
    CHECK_MESSAGE(covered.count(op->name) == 1, op->name << " has no row in the op table");
  }
}

}  // namespace pacer::test
