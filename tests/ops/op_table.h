#pragma once
// The op test table (DESIGN §9): one row per op with sample inputs, an f64 reference,
// per-dtype tolerances, gradient settings and error inputs. test_op_table.cpp drives
// every row through forward, gradcheck, f16/bf16, non-contiguous and error checks; the
// registry self-test checks that every registered op has a row.

#include <functional>
#include <string>
#include <vector>

#include "tests/ops/reference.h"

namespace pacer::test {

struct ErrorCase {
  std::function<void()> call;
  std::string expect;  // a substring of the message
};

struct OpCase {
  std::string name;                 // row name (usually the op)
  std::vector<std::string> covers;  // registry ops this row exercises
  std::function<std::vector<Tensor>()> inputs;  // f64 for floating inputs
  std::function<Tensor(const std::vector<Tensor>&)> run;
  std::function<ref::Arr(const std::vector<ref::Arr>&)> reference;
  double tol = 1e-10;       // f64 vs reference
  double tol_f32 = 1e-5;
  double tol_f16 = 1e-2;
  double tol_bf16 = 4e-2;
  bool grad = true;         // gradcheck the floating inputs
  uint32_t grad_mask = ~0u;  // which inputs gradcheck differentiates (bit i = input i)
  autograd::GradcheckOptions grad_options;
  bool half = true;         // run in f16 / bf16 / f32
  std::vector<ErrorCase> errors;
  std::function<void()> custom;  // rows that are checked by properties instead (random ops)
};

/// A row from its parts (the other fields keep their defaults).
OpCase make_row(const std::string& name, std::vector<std::string> covers, std::function<std::vector<Tensor>()> inputs,
                std::function<Tensor(const std::vector<Tensor>&)> run,
                std::function<ref::Arr(const std::vector<ref::Arr>&)> reference, std::vector<ErrorCase> errors);

std::vector<OpCase> pointwise_rows();
std::vector<OpCase> reduction_rows();
std::vector<OpCase> shape_rows();
std::vector<OpCase> other_rows();
std::vector<OpCase> conv_rows();
std::vector<OpCase> loss_rows();
std::vector<OpCase> sort_rows();
std::vector<OpCase> rnn_rows();
std::vector<OpCase> detection_rows();
std::vector<OpCase> attention_rows();
std::vector<OpCase> amp_rows();
std::vector<OpCase> all_rows();

/// Uniform f64 values in [lo, hi), from a fixed seed per call site.
Tensor uniform(const Shape& sizes, double lo = -1, double hi = 1, uint64_t seed = 1);
/// Index tensor (i64) from values.
Tensor idx(const std::vector<int64_t>& v, const Shape& sizes = {});

}  // namespace pacer::test
