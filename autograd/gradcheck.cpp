#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "core/autograd_meta.h"
#include "core/philox.h"

namespace pacer::autograd {

namespace {

// Storage offsets (in elements) of every element of t, in logical row-major order.
std::vector<int64_t> element_offsets(const Tensor& t) {
  std::vector<int64_t> offs;
  offs.reserve(size_t(t.numel()));
  const int64_t n = t.dim();
  Shape index(size_t(n), 0);
  for (int64_t k = 0; k < t.numel(); ++k) {
    int64_t off = 0;
    for (int64_t d = 0; d < n; ++d) off += index[d] * t.strides()[d];
    offs.push_back(off);
    for (int64_t d = n - 1; d >= 0; --d) {
      if (++index[d] < t.sizes()[d]) break;
      index[d] = 0;
    }
  }
  return offs;
}

double project(const Tensor& out, const std::vector<double>& v) {
  std::vector<double> values = out.to_vector<double>();
  double s = 0;
  for (size_t i = 0; i < values.size(); ++i) s += values[i] * v[i];
  return s;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& o) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (x.defined() && x.requires_grad())
      PACER_CHECK(x.dtype() == DType::F64 && x.is_cpu() && x.is_leaf(),
                  "gradcheck: input {} must be a float64 CPU leaf, got {} on {}", i, x.dtype(), x.device());
  }
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) x.impl()->autograd_mut().grad = Tensor();

  Tensor out = f(inputs);
  PACER_CHECK(out.dtype() == DType::F64, "gradcheck: the function must return float64, got {}", out.dtype());
  std::vector<double> v(size_t(out.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(philox_normal(o.seed, 0, i));
  if (!out.requires_grad()) return {false, "gradcheck: the output does not require grad"};
  Tensor vt = empty(out.sizes(), {.dtype = DType::F64});
  std::copy(v.begin(), v.end(), static_cast<double*>(vt.data()));
  out.backward(vt);

  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    std::vector<double> analytic = x.grad().defined() ? x.grad().to_vector<double>()
                                                      : std::vector<double>(size_t(x.numel()), 0.0);
    double* base = static_cast<double*>(x.storage()->data());
    std::vector<int64_t> offs = element_offsets(x);
    for (size_t j = 0; j < offs.size(); ++j) {
      double& cell = base[offs[j]];
      const double orig = cell;
      cell = orig + o.eps;
      x.bump_version();
      double plus = project(f(inputs), v);
      cell = orig - o.eps;
      double minus = project(f(inputs), v);
      cell = orig;
      double numeric = (plus - minus) / (2 * o.eps);
      double a = analytic[j];
      if (!(std::fabs(a - numeric) <= o.atol + o.rtol * std::fabs(numeric))) {
        return {false, fmt::format("gradcheck: input {} element {}: analytic {:.8g} vs numeric {:.8g}", i, j, a,
                                   numeric)};
      }
    }
  }
  return {};
}

}  // namespace pacer::autograd
