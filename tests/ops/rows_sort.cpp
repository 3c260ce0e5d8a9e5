// Op-table rows of sorting, selection and resampling (sort, topk, nonzero, masked_select,
// upsample_nearest2d), with naive f64 references.
#include <cmath>

#include <doctest/doctest.h>

#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

// a before b in ascending order, NaN after every number.
bool ref_less(double a, double b) { return std::isnan(b) ? !std::isnan(a) : a < b; }

// Stable sort of each line along `dim` by insertion: {values, indices (as doubles)}.
std::pair<ref::Arr, ref::Arr> sort_ref(const ref::Arr& a, int64_t dim, bool descending) {
  const int64_t nd = int64_t(a.sizes.size());
  if (dim < 0) dim += nd;
  ref::Arr vals = a, ids = a;
  if (nd == 0) {
    ids.v = {0.0};
    return {vals, ids};
  }
  const int64_t L = a.sizes[size_t(dim)];
  for (int64_t k = 0; k < a.numel(); ++k) {
    auto start = ref::unravel(k, a.sizes);
    if (start[size_t(dim)] != 0) continue;
    std::vector<int64_t> order;
    auto at = [&](int64_t r) {
      auto i = start;
      i[size_t(dim)] = r;
      return a.v[size_t(ref::ravel(i, a.sizes))];
    };
    for (int64_t r = 0; r < L; ++r) {
      size_t pos = order.size();
      // insert after every element that does not come strictly after r (keeps ties in order)
      while (pos > 0) {
        const double prev = at(order[pos - 1]), cur = at(r);
        const bool after = descending ? ref_less(prev, cur) : ref_less(cur, prev);
        if (!after) break;
        --pos;
      }
      order.insert(order.begin() + int64_t(pos), r);
    }
    for (int64_t r = 0; r < L; ++r) {
      auto i = start;
      i[size_t(dim)] = r;
      const size_t flat = size_t(ref::ravel(i, a.sizes));
      vals.v[flat] = at(order[size_t(r)]);
      ids.v[flat] = double(order[size_t(r)]);
    }
  }
  return {vals, ids};
}

// The first k entries along dim.
ref::Arr take_first(const ref::Arr& a, int64_t dim, int64_t k) {
  Shape out = a.sizes;
  out[size_t(dim)] = k;
  return ref::gather_by(out, a, [](const std::vector<int64_t>& i) { return i; });
}

Tensor with_specials() {
  // ties, NaN and infinities, exactly representable in f16 / bf16
  return from_vector(std::vector<double>{3, 1, NAN, 1, -INFINITY, 2, 3, 0.5, 2, 1, INFINITY, NAN, 0, -1, 0, -1,
                                         5, 5, 5, 5},
                     {4, 5});
}

const double kInf = INFINITY;

}  // namespace

std::vector<OpCase> sort_rows() {
  std::vector<OpCase> rows;

  rows.push_back(make_row(
      "sort", {"sort"}, [] { return std::vector<Tensor>{uniform({4, 6}, -1, 1, 301)}; },
      [](const std::vector<Tensor>& in) { return sort(in[0]).first; },
      [](const std::vector<ref::Arr>& in) { return sort_ref(in[0], -1, false).first; },
      {{[] { sort(ones({2, 3}), 2); }, "dimension 2 out of range"},
       {[] { sort(Tensor()); }, "input 0 is undefined"}}));

  rows.push_back(make_row(
      "sort_descending_dim0", {"sort"}, [] { return std::vector<Tensor>{uniform({5, 3, 2}, -1, 1, 302)}; },
      [](const std::vector<Tensor>& in) { return sort(in[0], 0, true).first; },
      [](const std::vector<ref::Arr>& in) { return sort_ref(in[0], 0, true).first; },
      {{[] { sort(ones({2}), -2); }, "dimension -2 out of range"}}));

  {  // stable ties and NaN: indices
    OpCase c = make_row(
        "sort_indices_stable_nan", {"sort"}, [] { return std::vector<Tensor>{with_specials()}; },
        [](const std::vector<Tensor>& in) { return sort(in[0], 1).second; },
        [](const std::vector<ref::Arr>& in) { return sort_ref(in[0], 1, false).second; },
        {{[] { sort(ones({3}), 1); }, "out of range"}});
    c.grad = false;
    rows.push_back(c);
  }
  {
    OpCase c = make_row(
        "sort_values_nan_descending", {"sort"}, [] { return std::vector<Tensor>{with_specials()}; },
        [](const std::vector<Tensor>& in) { return sort(in[0], -1, true).first; },
        [](const std::vector<ref::Arr>& in) { return sort_ref(in[0], -1, true).first; },
        {{[] { sort(ones({3}), 1, true); }, "out of range"}});
    c.grad = false;
    rows.push_back(c);
  }
  {
    OpCase c = make_row(
        "argsort_descending_stable", {"sort"}, [] { return std::vector<Tensor>{with_specials()}; },
        [](const std::vector<Tensor>& in) { return argsort(in[0], 0, true); },
        [](const std::vector<ref::Arr>& in) { return sort_ref(in[0], 0, true).second; },
        {{[] { argsort(ones({3}), 3); }, "out of range"}});
    c.grad = false;
    rows.push_back(c);
  }
  {  // integer input
    OpCase c = make_row(
        "sort_int64", {"sort"},
        [] { return std::vector<Tensor>{idx({4, -2, 7, 4, 0, -2, 9, 1}, {2, 4})}; },
        [](const std::vector<Tensor>& in) { return cast(sort(in[0], 1).first * from_vector(std::vector<int64_t>{10}).to(in[0].device()) + sort(in[0], 1).second, DType::F64); },
        [](const std::vector<ref::Arr>& in) {
          auto [v, i] = sort_ref(in[0], 1, false);
          for (size_t k = 0; k < v.v.size(); ++k) v.v[k] = v.v[k] * 10 + i.v[k];
          return v;
        },
        {{[] { sort(idx({1, 2}), 5); }, "out of range"}});
    c.grad = false;
    rows.push_back(c);
  }

  rows.push_back(make_row(
      "topk", {"topk", "sort"}, [] { return std::vector<Tensor>{uniform({3, 7}, -1, 1, 303)}; },
      [](const std::vector<Tensor>& in) { return topk(in[0], 3).first; },
      [](const std::vector<ref::Arr>& in) { return take_first(sort_ref(in[0], 1, true).first, 1, 3); },
      {{[] { topk(ones({2, 3}), 4); }, "topk: k=4 out of range"},
       {[] { topk(ones({2, 3}), -1); }, "k=-1 out of range"},
       {[] { topk(ones({2, 3}), 1, 2); }, "topk: dimension 2 out of range"}}));
  {
    OpCase c = make_row(
        "topk_smallest_indices", {"topk"}, [] { return std::vector<Tensor>{with_specials()}; },
        [](const std::vector<Tensor>& in) { return topk(in[0], 2, 0, false).second; },
        [](const std::vector<ref::Arr>& in) { return take_first(sort_ref(in[0], 0, false).second, 0, 2); },
        {{[] { topk(ones({2, 3}), 3, 0); }, "k=3 out of range"}});
    c.grad = false;
    rows.push_back(c);
  }
  rows.push_back(make_row(
      "topk_dim0_smallest_values", {"topk"}, [] { return std::vector<Tensor>{uniform({6, 4}, -1, 1, 304)}; },
      [](const std::vector<Tensor>& in) { return topk(in[0], 4, 0, false).first; },
      [](const std::vector<ref::Arr>& in) { return take_first(sort_ref(in[0], 0, false).first, 0, 4); },
      {{[] { topk(ones({2, 3}), 7, -1, false); }, "out of range"}}));

  // nonzero: the coordinates of the nonzero elements, row-major.
  const auto nonzero_ref = [](const ref::Arr& a) {
    const int64_t nd = int64_t(a.sizes.size());
    ref::Arr r{{0, nd}, {}};
    for (int64_t k = 0; k < a.numel(); ++k) {
      if (a.v[size_t(k)] == 0) continue;
      for (int64_t i : ref::unravel(k, a.sizes)) r.v.push_back(double(i));
      ++r.sizes[0];
    }
    return r;
  };
  {
    OpCase c = make_row(
        "nonzero", {"nonzero"},
        [] {
          return std::vector<Tensor>{from_vector(
              std::vector<double>{0, 1.5, 0, -2, NAN, 0, 0, 0, 3, 0, -kInf, 0.25}, {2, 3, 2})};
        },
        [](const std::vector<Tensor>& in) { return nonzero(in[0]); },
        [=](const std::vector<ref::Arr>& in) { return nonzero_ref(in[0]); },
        {{[] { nonzero(Tensor()); }, "nonzero: input 0 is undefined"}});
    c.grad = false;
    rows.push_back(c);
  }
  {
    OpCase c = make_row(
        "nonzero_empty_and_bool", {"nonzero"}, [] { return std::vector<Tensor>{zeros({3, 2}, {.dtype = DType::F64})}; },
        [](const std::vector<Tensor>& in) {
          Tensor none = nonzero(in[0]);
          Tensor b = nonzero(from_vector(std::vector<bool>{false, true, true, false}, {4}).to(in[0].device()));
          CHECK(none.sizes() == Shape{0, 2});
          return cat({reshape(b, {-1}), reshape(none, {-1})});
        },
        [](const std::vector<ref::Arr>&) { return ref::Arr{{2}, {1, 2}}; },
        {{[] { nonzero(Tensor()); }, "undefined"}});
    c.grad = false;
    rows.push_back(c);
  }

  // masked_select: mask broadcast to x's shape; the gradient goes back to the selected places.
  {
    OpCase c = make_row(
        "masked_select", {"masked_select", "nonzero"},
        [] {
          return std::vector<Tensor>{uniform({3, 4}, -1, 1, 305),
                                     from_vector(std::vector<bool>{true, false, true, true}, {4})};
        },
        [](const std::vector<Tensor>& in) { return masked_select(in[0], in[1]); },
        [](const std::vector<ref::Arr>& in) {
          ref::Arr r{{0}, {}};
          for (int64_t k = 0; k < in[0].numel(); ++k)
            if (in[1].v[size_t(k % 4)] != 0) r.v.push_back(in[0].v[size_t(k)]);
          r.sizes[0] = r.numel();
          return r;
        },
        {{[] { masked_select(ones({2, 3}), ones({3})); }, "masked_select: expected a bool mask"},
         {[] { masked_select(ones({2, 3}), from_vector(std::vector<bool>{true, false}, {2})); },
          "masked_select: shapes"},
         {[] { masked_select(ones({3}), from_vector(std::vector<bool>{true, false, true, true, false, true}, {2, 3})); },
          "cannot be broadcast to the input's shape [3]"}});
    c.grad_mask = 1;
    rows.push_back(c);
  }

  // upsample_nearest2d: src = floor(dst * in / out) per axis.
  const auto upsample_ref = [](const ref::Arr& x, int64_t oh, int64_t ow) {
    const int64_t H = x.sizes[2], W = x.sizes[3];
    return ref::gather_by({x.sizes[0], x.sizes[1], oh, ow}, x, [=](const std::vector<int64_t>& i) {
      return std::vector<int64_t>{i[0], i[1], i[2] * H / oh, i[3] * W / ow};
    });
  };
  const std::vector<ErrorCase> upsample_errors = {
      {[] { upsample_nearest2d(ones({2, 3, 4}), Shape{4, 4}); }, "upsample_nearest2d: expected a 4-d input"},
      {[] { upsample_nearest2d(ones({1, 1, 2, 2}), Shape{0, 4}); }, "expected a positive output size"},
      {[] { upsample_nearest2d(ones({1, 1, 2, 2}), -2.0); }, "expected a positive scale factor"},
      {[] { upsample_nearest2d(ones({1, 1, 2, 2}, {.dtype = DType::I64}), 2.0); }, "expected a floating input"}};
  rows.push_back(make_row(
      "upsample_nearest2d", {"upsample_nearest2d"}, [] { return std::vector<Tensor>{uniform({2, 3, 4, 5}, -1, 1, 306)}; },
      [](const std::vector<Tensor>& in) { return upsample_nearest2d(in[0], Shape{7, 3}); },
      [=](const std::vector<ref::Arr>& in) { return upsample_ref(in[0], 7, 3); }, upsample_errors));
  rows.push_back(make_row(
      "upsample_nearest2d_scale2", {"upsample_nearest2d"},
      [] { return std::vector<Tensor>{uniform({1, 2, 3, 4}, -1, 1, 307)}; },
      [](const std::vector<Tensor>& in) { return upsample_nearest2d(in[0], 2.0); },
      [=](const std::vector<ref::Arr>& in) { return upsample_ref(in[0], 6, 8); }, upsample_errors));

  return rows;
}

}  // namespace pacer::test
