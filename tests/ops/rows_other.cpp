// Op-table rows of factories (deterministic ones against references, random ones by
// their statistics and reproducibility) and of in-place ops.
#include <cmath>

#include <doctest/doctest.h>

#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

OpCase factory(const std::string& name, std::function<Tensor()> make, ref::Arr expected, std::vector<ErrorCase> errors) {
  OpCase c;
  c.name = name;
  c.covers = {name};
  c.inputs = [] { return std::vector<Tensor>{}; };
  c.run = [make](const std::vector<Tensor>&) { return make().to(DType::F64); };
  c.reference = [expected](const std::vector<ref::Arr>&) { return expected; };
  c.grad = false;
  c.half = false;
  c.errors = std::move(errors);
  return c;
}

// Mean and standard deviation of a random tensor, and that a seed replays it.
OpCase random_row(const std::string& name, std::function<Tensor(Generator*)> make, double mean, double sd,
                  std::vector<ErrorCase> errors) {
  OpCase c;
  c.name = name;
  c.covers = {name};
  c.errors = std::move(errors);
  c.custom = [make, mean, sd] {
    Generator g1(42), g2(42), g3(43);
    Tensor a = make(&g1), b = make(&g1), a2 = make(&g2), c3 = make(&g3);
    CHECK(a.to_vector<double>() == a2.to_vector<double>());  // same seed and offset: same numbers
    CHECK(a.to_vector<double>() != b.to_vector<double>());   // next offset: new numbers
    CHECK(a.to_vector<double>() != c3.to_vector<double>());  // other seed: new numbers
    std::vector<double> v = a.to_vector<double>();
    double m = 0, s = 0;
    for (double x : v) m += x;
    m /= double(v.size());
    for (double x : v) s += (x - m) * (x - m);
    s = std::sqrt(s / double(v.size()));
    CHECK(std::fabs(m - mean) < 0.02 * std::max(1.0, sd) * 5);
    CHECK(std::fabs(s - sd) < 0.02 * std::max(1.0, sd) * 5);
  };
  return c;
}

}  // namespace

std::vector<OpCase> other_rows() {
  std::vector<OpCase> rows;
  rows.push_back(factory("full", [] { return full({2, 2}, 2.5); }, {{2, 2}, {2.5, 2.5, 2.5, 2.5}},
                         {{[] { zeros({2, -1}); }, "expected non-negative sizes, got [2, -1]"}}));
  rows.push_back(factory("arange", [] { return arange(1, 2.0, 0.25); }, {{4}, {1, 1.25, 1.5, 1.75}},
                         {{[] { arange(0, 5, 0); }, "step must be non-zero"},
                          {[] { arange(5, 0, 1); }, "cannot be walked with step 1"}}));
  rows.push_back(factory("linspace", [] { return linspace(-1, 1, 5, {.dtype = DType::F64}); }, {{5}, {-1, -0.5, 0, 0.5, 1}},
                         {{[] { linspace(0, 1, -2); }, "expected steps >= 0"}}));
  rows.push_back(random_row("rand", [](Generator* g) { return rand({4000}, {.dtype = DType::F64}, g); }, 0.5,
                            std::sqrt(1.0 / 12), {{[] { rand({2}, {.dtype = DType::I64}); }, "expected a floating dtype"}}));
  rows.push_back(random_row("randn", [](Generator* g) { return randn({4000}, {}, g); }, 0.0, 1.0,
                            {{[] { randn({2}, {.dtype = DType::Bool}); }, "expected a floating dtype"}}));
  rows.push_back(random_row("randint", [](Generator* g) { return randint(0, 10, {4000}, {.dtype = DType::I64}, g); }, 4.5,
                            std::sqrt(99.0 / 12), {{[] { randint(3, 3, {2}); }, "expected low < high"}}));

  auto two = [] { return std::vector<Tensor>{uniform({3, 4}, -2, 2, 71), uniform({4}, -2, 2, 72)}; };
  rows.push_back(make_row(
      "add_", {"add_", "clone"}, two,
      [](const std::vector<Tensor>& in) {
        Tensor y = clone(in[0]);
        return add_(y, in[1]);
      },
      [](const std::vector<ref::Arr>& in) { return ref::zip(in, [](const std::vector<double>& v) { return v[0] + v[1]; }); },
      {{[] {
          Tensor x = ones({2}, {.requires_grad = true});
          add_(x, ones({2}));
        },
        "a leaf tensor that requires grad is being used in an in-place operation"},
       {[] {
          Tensor x = ones({2}, {.dtype = DType::I64});
          add_(x, ones({2}));
        },
        "result type float32 cannot be written into a int64 tensor in place"},
       {[] {
          Tensor x = ones({2});
          add_(x, ones({3, 2}));
        },
        "does not broadcast to self's shape [2]"}}));
  {
    OpCase c = make_row(
        "mul_", {"mul_", "clone"}, two,
        [](const std::vector<Tensor>& in) {
          Tensor y = clone(in[0]);
          return mul_(y, detach(in[1]));
        },
        [](const std::vector<ref::Arr>& in) { return ref::zip(in, [](const std::vector<double>& v) { return v[0] * v[1]; }); },
        {{[] {
            Tensor w = ones({2}, {.requires_grad = true});
            Tensor y = clone(w);
            mul_(y, w);
            sum(y).backward();
          },
          "the gradient for `other` needs self before the in-place update"}});
    c.grad_mask = 0b01;  // the gradient for `other` is refused (see the error case)
    rows.push_back(c);
  }
  rows.push_back(make_row(
      "copy_", {"copy_", "fill_"}, two,
      [](const std::vector<Tensor>& in) {
        // Row 0 is filled through a view without recording; then the whole tensor is
        // overwritten from the broadcast source (recorded) and scaled by the first input.
        Tensor y = zeros({3, 4}, {.dtype = in[0].dtype(), .device = in[0].device()});
        {
          NoGradGuard no_grad;
          Tensor row0 = slice(y, 0, 0, 1);
          fill_(row0, 3.0);
        }
        Tensor before = clone(y) * in[0];  // y itself is overwritten below
        copy_(y, in[1]);
        return before + y * in[0];
      },
      [](const std::vector<ref::Arr>& in) {
        ref::Arr r = in[0];
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 4; ++j) {
            const double x = in[0].v[size_t(i * 4 + j)];
            r.v[size_t(i * 4 + j)] = (i == 0 ? 3.0 : 0.0) * x + in[1].v[size_t(j)] * x;
          }
        return r;
      },
      {{[] {
          Tensor x = ones({2});
          copy_(x, ones({3}));
        },
        "shapes [2] and [3] cannot be broadcast"},
       {[] {
          Tensor w = ones({4}, {.requires_grad = true});
          Tensor y = zeros({2, 4});
          Tensor row = select(y, 0, 1);
          copy_(row, w);
        },
        "in-place update of a view while gradients are recorded is not supported"}}));
  return rows;
}

}  // namespace pacer::test
