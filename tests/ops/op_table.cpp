#include "tests/ops/op_table.h"

namespace pacer::test {

Tensor uniform(const Shape& sizes, double lo, double hi, uint64_t seed) {
  Generator g(seed);
  Tensor u = rand(sizes, {.dtype = DType::F64}, &g);
  return u * (hi - lo) + lo;
}

Tensor idx(const std::vector<int64_t>& v, const Shape& sizes) { return from_vector(v, sizes); }

OpCase make_row(const std::string& name, std::vector<std::string> covers, std::function<std::vector<Tensor>()> inputs,
                std::function<Tensor(const std::vector<Tensor>&)> run,
                std::function<ref::Arr(const std::vector<ref::Arr>&)> reference, std::vector<ErrorCase> errors) {
  OpCase c;
  c.name = name;
  c.covers = std::move(covers);
  c.inputs = std::move(inputs);
  c.run = std::move(run);
  c.reference = std::move(reference);
  c.errors = std::move(errors);
  return c;
}

std::vector<OpCase> all_rows() {
  std::vector<OpCase> rows;
  for (auto part : {pointwise_rows, reduction_rows, shape_rows, other_rows, conv_rows, loss_rows, sort_rows, rnn_rows, detection_rows, attention_rows, amp_rows}) {
    auto r = part();
    rows.insert(rows.end(), r.begin(), r.end());
  }
  return rows;
}

}  // namespace pacer::test
