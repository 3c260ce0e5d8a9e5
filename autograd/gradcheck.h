#pragma once
/// gradcheck: compares backward against central differences in f64 (DESIGN §4).

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pacer::autograd {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  uint64_t seed = 1234;  // for the random projection of the output
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // the first mismatch, naming input, element, analytic and numeric values
};

/// `f` maps inputs to one f64 output. Every input that requires grad must be f64; the
/// check projects the output on a random vector v and compares d(v.f)/dx both ways.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace pacer::autograd
