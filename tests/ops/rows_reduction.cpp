// Op-table rows of reductions, softmax and matrix products.
#include <algorithm>
#include <cmath>

#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

OpCase reduction(const std::string& name, std::vector<std::string> covers, Shape sizes,
                 std::function<Tensor(const Tensor&)> f, std::function<ref::Arr(const ref::Arr&)> r) {
  OpCase c;
  c.name = name;
  c.covers = std::move(covers);
  c.inputs = [sizes] { return std::vector<Tensor>{uniform(sizes, -2, 2, 21)}; };
  c.run = [f](const std::vector<Tensor>& in) { return f(in[0]); };
  c.reference = [r](const std::vector<ref::Arr>& in) { return r(in[0]); };
  c.errors = {{[f] { f(Tensor()); }, "undefined"}};
  return c;
}

double gmax(const std::vector<double>& g) { return *std::max_element(g.begin(), g.end()); }
double gmin(const std::vector<double>& g) { return *std::min_element(g.begin(), g.end()); }
double gvar(const std::vector<double>& g) {
  double m = ref::gsum(g) / double(g.size()), s = 0;
  for (double x : g) s += (x - m) * (x - m);
  return s / double(g.size() - 1);
}

}  // namespace

std::vector<OpCase> reduction_rows() {
  std::vector<OpCase> rows;
  {
    OpCase c = reduction("sum", {"sum"}, {3, 4, 5}, [](const Tensor& x) { return sum(x, {1}); },
                         [](const ref::Arr& a) { return ref::reduce(a, {1}, false, ref::gsum); });
    c.errors.push_back({[] { sum(ones({2, 3}), {2}); }, "dimension 2 out of range: expected a value in [-2, 1]"});
    c.errors.push_back({[] { sum(ones({2, 3}), {1, -1}); }, "appears twice"});
    rows.push_back(c);
  }
  rows.push_back(reduction("sum_outer_keepdim", {"sum"}, {3, 4, 5}, [](const Tensor& x) { return sum(x, {0, 1}, true); },
                           [](const ref::Arr& a) { return ref::reduce(a, {0, 1}, true, ref::gsum); }));
  rows.push_back(reduction("sum_middle", {"sum"}, {3, 4, 5}, [](const Tensor& x) { return sum(x, {0, 2}); },
                           [](const ref::Arr& a) { return ref::reduce(a, {0, 2}, false, ref::gsum); }));
  rows.push_back(reduction("sum_all", {"sum"}, {3, 4, 5}, [](const Tensor& x) { return sum(x); },
                           [](const ref::Arr& a) { return ref::reduce(a, {}, false, ref::gsum); }));
  {
    OpCase c = reduction("mean", {"sum", "div"}, {3, 4}, [](const Tensor& x) { return mean(x, {-1}, true); },
                         [](const ref::Arr& a) {
                           return ref::reduce(a, {1}, true, [](const std::vector<double>& g) { return ref::gsum(g) / double(g.size()); });
                         });
    c.errors.push_back({[] { mean(ones({2}, {.dtype = DType::I64})); }, "expected a floating tensor, got int64"});
    rows.push_back(c);
  }
  {
    OpCase c = reduction("max", {"amax"}, {3, 4}, [](const Tensor& x) { return max(x); },
                         [](const ref::Arr& a) { return ref::reduce(a, {}, false, gmax); });
    c.errors.push_back({[] { max(zeros({0})); }, "expected a non-empty tensor"});
    rows.push_back(c);
  }
  rows.push_back(reduction("min", {"amin"}, {3, 4}, [](const Tensor& x) { return min(x); },
                           [](const ref::Arr& a) { return ref::reduce(a, {}, false, gmin); }));
  rows.push_back(reduction("max_dim", {"max_dim", "scatter"}, {3, 4, 5}, [](const Tensor& x) { return max(x, 1).first; },
                           [](const ref::Arr& a) { return ref::reduce(a, {1}, false, gmax); }));
  {
    OpCase c = reduction("min_dim_keepdim", {"min_dim"}, {3, 4}, [](const Tensor& x) { return min(x, 0, true).first; },
                         [](const ref::Arr& a) { return ref::reduce(a, {0}, true, gmin); });
    c.errors.push_back({[] { min(zeros({2, 0}), 1); }, "expected a non-empty dimension 1"});
    rows.push_back(c);
  }
  {
    OpCase c = reduction("argmax", {"max_dim"}, {3, 4, 5}, [](const Tensor& x) { return argmax(x, -1); },
                         [](const ref::Arr& a) {
                           return ref::reduce(a, {2}, false, [](const std::vector<double>& g) {
                             return double(std::max_element(g.begin(), g.end()) - g.begin());
                           });
                         });
    c.grad = false;
    c.half = false;  // rounding to half can create ties that change the index
    rows.push_back(c);
  }
  rows.push_back(reduction("var", {"sum"}, {4, 6}, [](const Tensor& x) { return var(x, {1}); },
                           [](const ref::Arr& a) { return ref::reduce(a, {1}, false, gvar); }));
  rows.push_back(reduction("std", {"sqrt"}, {4, 6}, [](const Tensor& x) { return pacer::std(x, {0}); },
                           [](const ref::Arr& a) {
                             return ref::reduce(a, {0}, false, [](const std::vector<double>& g) { return std::sqrt(gvar(g)); });
                           }));
  rows.push_back(reduction("logsumexp", {"amax", "exp", "log"}, {3, 5}, [](const Tensor& x) { return logsumexp(x * 10.0, {1}); },
                           [](const ref::Arr& a) {
                             return ref::reduce(a, {1}, false, [](const std::vector<double>& g) {
                               double s = 0;
                               for (double x : g) s += std::exp(10 * x);
                               return std::log(s);
                             });
                           }));
  for (double p : {1.0, 2.0, 3.0, double(INFINITY)}) {
    OpCase c = reduction(fmt::format("norm_p{}", p), {"abs"}, {3, 5}, [p](const Tensor& x) { return norm(x, p, {1}); },
                         [p](const ref::Arr& a) {
                           return ref::reduce(a, {1}, false, [p](const std::vector<double>& g) {
                             double s = 0;
                             for (double x : g) s = std::isinf(p) ? std::max(s, std::fabs(x)) : s + std::pow(std::fabs(x), p);
                             return std::isinf(p) ? s : std::pow(s, 1 / p);
                           });
                         });
    c.tol_bf16 = 6e-2;
    rows.push_back(c);
  }
  for (bool log_form : {false, true}) {
    OpCase c = reduction(log_form ? "log_softmax" : "softmax", {log_form ? "log_softmax" : "softmax"}, {3, 4, 5},
                         [log_form](const Tensor& x) { return log_form ? log_softmax(x * 3.0, 1) : softmax(x * 3.0, 1); },
                         [log_form](const ref::Arr& a) {
                           ref::Arr r = a;
                           for (int64_t i = 0; i < 3; ++i)
                             for (int64_t k = 0; k < 5; ++k) {
                               double s = 0;
                               for (int64_t j = 0; j < 4; ++j) s += std::exp(3 * a.v[size_t(i * 20 + j * 5 + k)]);
                               for (int64_t j = 0; j < 4; ++j) {
                                 double x = 3 * a.v[size_t(i * 20 + j * 5 + k)];
                                 r.v[size_t(i * 20 + j * 5 + k)] = log_form ? x - std::log(s) : std::exp(x) / s;
                               }
                             }
                           return r;
                         });
    c.errors.push_back({[] { softmax(ones({2}, {.dtype = DType::I64}), 0); }, "expected a floating input"});
    rows.push_back(c);
  }

  // --- matrix products ---
  {
    OpCase c;
    c.name = "mm";
    c.covers = {"mm"};
    c.inputs = [] { return std::vector<Tensor>{uniform({3, 4}, -1, 1, 31), uniform({4, 5}, -1, 1, 32)}; };
    c.run = [](const std::vector<Tensor>& in) { return mm(in[0], in[1]); };
    c.reference = [](const std::vector<ref::Arr>& in) { return ref::matmul2d(in[0], in[1]); };
    c.errors = {{[] { mm(ones({2, 3}), ones({4, 5})); }, "shapes [2, 3] and [4, 5] cannot be multiplied (3 != 4)"},
                {[] { mm(ones({2, 3, 1}), ones({3, 5})); }, "expected two 2-d tensors"},
                {[] { mm(ones({2, 3}), ones({3, 5}, {.dtype = DType::F64})); }, "expected operands of one dtype, got float32 and float64"}};
    rows.push_back(c);
  }
  {
    OpCase c;
    c.name = "bmm";
    c.covers = {"bmm"};
    c.inputs = [] { return std::vector<Tensor>{uniform({2, 3, 4}, -1, 1, 33), uniform({2, 4, 2}, -1, 1, 34)}; };
    c.run = [](const std::vector<Tensor>& in) { return bmm(in[0], in[1]); };
    c.reference = [](const std::vector<ref::Arr>& in) {
      ref::Arr out{{2, 3, 2}, {}};
      for (int64_t b = 0; b < 2; ++b) {
        ref::Arr x{{3, 4}, std::vector<double>(in[0].v.begin() + b * 12, in[0].v.begin() + (b + 1) * 12)};
        ref::Arr y{{4, 2}, std::vector<double>(in[1].v.begin() + b * 8, in[1].v.begin() + (b + 1) * 8)};
        auto r = ref::matmul2d(x, y);
        out.v.insert(out.v.end(), r.v.begin(), r.v.end());
      }
      return out;
    };
    c.errors = {{[] { bmm(ones({2, 3, 4}), ones({3, 4, 2})); }, "cannot be batch-multiplied"}};
    rows.push_back(c);
  }
  {
    OpCase c;
    c.name = "linear";
    c.covers = {"linear"};
    c.inputs = [] {
      return std::vector<Tensor>{uniform({2, 3, 4}, -1, 1, 35), uniform({5, 4}, -1, 1, 36), uniform({5}, -1, 1, 37)};
    };
    c.run = [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); };
    c.reference = [](const std::vector<ref::Arr>& in) {
      ref::Arr x{{6, 4}, in[0].v};
      ref::Arr wt{{4, 5}, std::vector<double>(20)};
      for (int64_t o = 0; o < 5; ++o)
        for (int64_t i = 0; i < 4; ++i) wt.v[size_t(i * 5 + o)] = in[1].v[size_t(o * 4 + i)];
      ref::Arr r = ref::matmul2d(x, wt);
      for (int64_t n = 0; n < 6; ++n)
        for (int64_t o = 0; o < 5; ++o) r.v[size_t(n * 5 + o)] += in[2].v[size_t(o)];
      r.sizes = {2, 3, 5};
      return r;
    };
    c.errors = {{[] { linear(ones({2, 3}), ones({5, 4})); }, "does not match weight of shape [5, 4]"},
                {[] { linear(ones({2, 4}), ones({5, 4}), ones({4})); }, "expected a bias of shape [5]"}};
    rows.push_back(c);
  }
  {
    OpCase c;
    c.name = "matmul";
    c.covers = {"matmul", "bmm", "expand", "view"};
    // Broadcast batch: [2, 1, 3, 4] @ [3, 4, 2] -> [2, 3, 3, 2].
    c.inputs = [] { return std::vector<Tensor>{uniform({2, 1, 3, 4}, -1, 1, 38), uniform({3, 4, 2}, -1, 1, 39)}; };
    c.run = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
    c.reference = [](const std::vector<ref::Arr>& in) {
      ref::Arr out{{2, 3, 3, 2}, {}};
      for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 3; ++j) {
          ref::Arr x{{3, 4}, std::vector<double>(in[0].v.begin() + i * 12, in[0].v.begin() + (i + 1) * 12)};
          ref::Arr y{{4, 2}, std::vector<double>(in[1].v.begin() + j * 8, in[1].v.begin() + (j + 1) * 8)};
          auto r = ref::matmul2d(x, y);
          out.v.insert(out.v.end(), r.v.begin(), r.v.end());
        }
      return out;
    };
    c.errors = {{[] { matmul(ones({2, 3}), ones({4})); }, "cannot be multiplied"},
                {[] { matmul(ones({2, 2, 3}), ones({3, 3, 2})); }, "cannot be broadcast"}};
    rows.push_back(c);
  }
  {
    OpCase c;
    c.name = "matmul_vec";
    c.covers = {"matmul", "mm", "squeeze", "unsqueeze"};
    c.inputs = [] { return std::vector<Tensor>{uniform({4}, -1, 1, 40), uniform({4, 3}, -1, 1, 41)}; };
    c.run = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
    c.reference = [](const std::vector<ref::Arr>& in) {
      auto r = ref::matmul2d({{1, 4}, in[0].v}, in[1]);
      r.sizes = {3};
      return r;
    };
    c.errors = {{[] { matmul(ones({3}), ones({4, 3})); }, "cannot be multiplied"},
                {[] { matmul(ones({}), ones({3})); }, "expected tensors of at least 1 dim"}};
    rows.push_back(c);
  }
  return rows;
}

}  // namespace pacer::test
