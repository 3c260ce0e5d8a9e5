// Op-table rows of the pointwise ops.
#include <cmath>

#include "ops/dispatch.h"
#include "ops/registry.h"
#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

ErrorCase undefined_input(const std::function<Tensor(const Tensor&)>& f) {
  return {[f] { f(Tensor()); }, "undefined"};
}

OpCase unary(const std::string& name, std::function<Tensor(const Tensor&)> f, std::function<double(double)> r,
             double lo = -2, double hi = 2, std::vector<ErrorCase> errors = {}) {
  OpCase c;
  c.name = name;
  c.covers = {name};
  c.inputs = [lo, hi] { return std::vector<Tensor>{uniform({3, 4}, lo, hi, 7)}; };
  c.run = [f](const std::vector<Tensor>& in) { return f(in[0]); };
  c.reference = [r](const std::vector<ref::Arr>& in) { return ref::map(in[0], r); };
  errors.push_back(undefined_input(f));
  c.errors = errors;
  return c;
}

OpCase binary(const std::string& name, std::function<Tensor(const Tensor&, const Tensor&)> f,
              std::function<double(double, double)> r, double lo = -2, double hi = 2, double lo_b = -2,
              double hi_b = 2) {
  OpCase c;
  c.name = name;
  c.covers = {name};
  // Broadcasting on both sides: [3, 1, 4] with [2, 1].
  c.inputs = [=] { return std::vector<Tensor>{uniform({3, 1, 4}, lo, hi, 11), uniform({2, 1}, lo_b, hi_b, 12)}; };
  c.run = [f](const std::vector<Tensor>& in) { return f(in[0], in[1]); };
  c.reference = [r](const std::vector<ref::Arr>& in) {
    return ref::zip(in, [r](const std::vector<double>& v) { return r(v[0], v[1]); });
  };
  c.errors = {{[f] { f(ones({2, 3}), ones({4})); }, "cannot be broadcast: dimension -1 has sizes 3 and 4"},
              {[f] { f(ones({2}), Tensor()); }, "undefined"}};
  return c;
}

OpCase predicate(const std::string& name, std::function<Tensor(const Tensor&, const Tensor&)> f,
                 std::function<bool(double, double)> r) {
  OpCase c = binary(name, f, [r](double a, double b) { return r(a, b) ? 1.0 : 0.0; });
  // Small integers make ties likely, so equality is exercised.
  c.inputs = [] {
    return std::vector<Tensor>{cast(uniform({3, 1, 4}, -2, 2, 5) * 2.0, DType::I64).to(DType::F64),
                               cast(uniform({2, 1}, -2, 2, 6) * 2.0, DType::I64).to(DType::F64)};
  };
  c.grad = false;
  c.errors.erase(c.errors.begin() + 1);  // undefined operand: covered by the arithmetic rows
  return c;
}

double erf_gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }

}  // namespace

std::vector<OpCase> pointwise_rows() {
  std::vector<OpCase> rows;
  const ErrorCase bool_input{[] { neg(ones({2}).to(DType::Bool)); }, "expected a numeric tensor, got bool"};
  rows.push_back(unary("neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, -2, 2, {bool_input}));
  rows.push_back(unary("exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }));
  rows.push_back(unary("log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 0.5, 3));
  rows.push_back(unary("sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0.5, 3));
  rows.push_back(unary("rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); }, 0.5, 3));
  rows.push_back(unary("abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::fabs(x); }));
  {
    OpCase c = unary("sign", [](const Tensor& x) { return sign(x); }, [](double x) { return double((x > 0) - (x < 0)); });
    rows.push_back(c);
  }
  {
    // Backward runs relu_backward (test_autograd differentiates it once more).
    OpCase c = unary("relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0; }, -2, 2,
                     {{[] { relu(ones({2}).to(DType::Bool)); }, "expected a numeric tensor, got bool"},
                      {[] { ops::call1(ops::find_op("relu_backward"), {ones({2}), ones({3})}); },
                       "expected the gradient and the saved tensor to have one shape, got [2] and [3]"},
                      {[] { ops::call1(ops::find_op("relu_backward"), {ones({2}, {.dtype = DType::I64}), ones({2})}); },
                       "gradient"}});
    c.covers = {"relu", "relu_backward"};
    rows.push_back(c);
  }
  rows.push_back(unary("sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](double x) { return 1 / (1 + std::exp(-x)); }));
  rows.push_back(unary("tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }));
  {
    OpCase c = unary("gelu", [](const Tensor& x) { return gelu(x); }, erf_gelu, -3, 3,
                     {{[] { gelu(ones({2}), "fast"); }, "approximate must be 'none' or 'tanh', got 'fast'"}});
    c.covers = {"gelu", "gelu_backward"};
    rows.push_back(c);
  }
  {
    OpCase c = unary("gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); },
                     [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); },
                     -3, 3);
    c.covers = {"gelu", "gelu_backward"};
    rows.push_back(c);
  }
  rows.push_back(unary("clamp", [](const Tensor& x) { return clamp(x, Scalar(-0.5), Scalar(0.75)); },
                       [](double x) { return std::min(std::max(x, -0.5), 0.75); }, -2, 2,
                       {{[] { clamp(ones({2}), std::nullopt, std::nullopt); }, "expected at least one of min and max"}}));
  {
    OpCase c = unary("logical_not", [](const Tensor& x) { return logical_not(x > 0.0); },
                     [](double x) { return x > 0 ? 0.0 : 1.0; });
    c.grad = false;
    c.covers = {"logical_not", "gt"};
    rows.push_back(c);
  }
  {
    // cast through the half types and back: the f64 reference is the value itself.
    OpCase c = unary("cast", [](const Tensor& x) { return cast(cast(x, DType::F32), DType::F64); },
                     [](double x) { return double(float(x)); });
    c.errors.push_back({[] { cast(ones({2}), DType::I64).set_requires_grad(); }, "only floating tensors can require gradients"});
    // The f32 round trip rounds the perturbation too: use steps far above f32's resolution.
    c.grad_options = {.eps = 1e-3, .atol = 1e-3, .rtol = 1e-2};
    c.half = false;
    rows.push_back(c);
  }
  rows.push_back(unary("pow_scalar", [](const Tensor& x) { return pow(x, Scalar(2.5)); },
                       [](double x) { return std::pow(x, 2.5); }, 0.5, 2,
                       {{[] { pow(ones({2}).to(DType::Bool), Scalar(2)); }, "expected a numeric tensor, got bool"}}));

  rows.push_back(binary("add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, [](double a, double b) { return a + b; }));
  rows.push_back(binary("sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, [](double a, double b) { return a - b; }));
  rows.push_back(binary("mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, [](double a, double b) { return a * b; }));
  rows.push_back(binary("div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, [](double a, double b) { return a / b; },
                        -2, 2, 0.5, 2));
  rows.push_back(binary("pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); },
                        [](double a, double b) { return std::pow(a, b); }, 0.5, 2, -1, 2));
  rows.push_back(binary("maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
                        [](double a, double b) { return std::max(a, b); }));
  rows.push_back(binary("minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
                        [](double a, double b) { return std::min(a, b); }));
  rows.push_back(predicate("eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); }, [](double a, double b) { return a == b; }));
  rows.push_back(predicate("ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); }, [](double a, double b) { return a != b; }));
  rows.push_back(predicate("lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }, [](double a, double b) { return a < b; }));
  rows.push_back(predicate("le", [](const Tensor& a, const Tensor& b) { return le(a, b); }, [](double a, double b) { return a <= b; }));
  rows.push_back(predicate("gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); }, [](double a, double b) { return a > b; }));
  rows.push_back(predicate("ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); }, [](double a, double b) { return a >= b; }));
  rows.push_back(predicate("logical_and", [](const Tensor& a, const Tensor& b) { return logical_and(a, b); },
                           [](double a, double b) { return a != 0 && b != 0; }));
  rows.push_back(predicate("logical_or", [](const Tensor& a, const Tensor& b) { return logical_or(a, b); },
                           [](double a, double b) { return a != 0 || b != 0; }));
  rows.push_back(predicate("logical_xor", [](const Tensor& a, const Tensor& b) { return logical_xor(a, b); },
                           [](double a, double b) { return (a != 0) != (b != 0); }));
  {
    OpCase c;
    c.name = "where";
    c.covers = {"where"};
    c.inputs = [] { return std::vector<Tensor>{uniform({3, 4}, -1, 1, 3), uniform({3, 4}, -2, 2, 4), uniform({4}, -2, 2, 5)}; };
    c.run = [](const std::vector<Tensor>& in) { return where(in[0] > 0.0, in[1], in[2]); };
    c.reference = [](const std::vector<ref::Arr>& in) {
      return ref::zip(in, [](const std::vector<double>& v) { return v[0] > 0 ? v[1] : v[2]; });
    };
    c.errors = {{[] { where(ones({2}), ones({2}), ones({2})); }, "expected a bool condition, got float32"},
                {[] { where(ones({2}) > 0.0, ones({3}), ones({2})); }, "cannot be broadcast"}};
    rows.push_back(c);
  }
  return rows;
}

}  // namespace pacer::test
