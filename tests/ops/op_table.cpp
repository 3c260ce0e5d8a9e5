#include "tests/ops/op_table.h"

namespace pacer::test {

Tensor uniform(const Shape& sizes, double lo, double hi, uint64_t seed) {
  Generator g(seed);
  Tensor u = rand(sizes, {.dtype = DType::F64}, &g);
  return u * (hi - lo) + lo;
}

Tensor idx(const std::vector<int64_t>& v, const Shape& sizes) { return from_vector(v, sizes); }

std::vector<OpCase> all_rows() {
  std::vector<OpCase> rows;
  for (auto part : {pointwise_rows, reduction_rows, shape_rows, other_rows}) {
    auto r = part();
    rows.insert(rows.end(), r.begin(), r.end());
  }
  return rows;
}

}  // namespace pacer::test
