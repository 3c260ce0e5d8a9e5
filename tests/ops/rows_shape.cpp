// Op-table rows of views, joins, splits and indexing.
#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

using V = std::vector<int64_t>;

OpCase shape_row(const std::string& name, std::vector<std::string> covers, std::function<std::vector<Tensor>()> inputs,
                 std::function<Tensor(const std::vector<Tensor>&)> run,
                 std::function<ref::Arr(const std::vector<ref::Arr>&)> reference, std::vector<ErrorCase> errors) {
  OpCase c = make_row(name, std::move(covers), std::move(inputs), std::move(run), std::move(reference),
                      std::move(errors));
  c.tol_f16 = c.tol_bf16 = 1e-2;  // pure data movement: only the input rounding
  return c;
}

auto one(Shape s, uint64_t seed = 51) {
  return [s, seed] { return std::vector<Tensor>{uniform(s, -2, 2, seed)}; };
}

}  // namespace

std::vector<OpCase> shape_rows() {
  std::vector<OpCase> rows;
  // to_device between CPU and CPU (the CUDA directions run in the GPU parity suite); the
  // errors are the refusals of Tensor::to for a device this build or machine lacks.
  rows.push_back(shape_row(
      "to_device", {"to_device"}, one({2, 3}),
      [](const std::vector<Tensor>& in) { return ops::call1(ops::find_op("to_device"), {in[0]}, {{"device", std::string("cpu")}}); },
      [](const std::vector<ref::Arr>& in) { return in[0]; },
      {{[] { ones({2}).to(Device("cuda:99")); }, "cuda:99 was asked for"},
       {[] { ops::call1(ops::find_op("to_device"), {ones({2})}, {{"device", std::string("gpu")}}); }, "gpu"}}));
  rows.push_back(shape_row(
      "view", {"view"}, one({2, 3, 4}), [](const std::vector<Tensor>& in) { return view(in[0], {4, -1}); },
      [](const std::vector<ref::Arr>& in) { return ref::Arr{{4, 6}, in[0].v}; },
      {{[] { view(ones({2, 3}), {4, -1}); }, "shape [4, -1] is invalid for 6 elements"},
       {[] { view(transpose(ones({2, 3}), 0, 1), {6}); }, "use reshape()"}}));
  rows.push_back(shape_row(
      "reshape_copy", {"view", "clone", "permute"}, one({2, 3, 4}),
      [](const std::vector<Tensor>& in) { return reshape(transpose(in[0], 0, 2), {-1}); },
      [](const std::vector<ref::Arr>& in) {
        return ref::gather_by({24}, in[0], [](const V& i) {
          V t = ref::unravel(i[0], {4, 3, 2});
          return V{t[2], t[1], t[0]};
        });
      },
      {{[] { reshape(ones({6}), {-1, -1}); }, "only one dimension can be -1"}}));
  rows.push_back(shape_row(
      "permute", {"permute"}, one({2, 3, 4}), [](const std::vector<Tensor>& in) { return permute(in[0], {2, 0, 1}); },
      [](const std::vector<ref::Arr>& in) {
        return ref::gather_by({4, 2, 3}, in[0], [](const V& i) { return V{i[1], i[2], i[0]}; });
      },
      {{[] { permute(ones({2, 3}), {0, 0}); }, "repeat dimension 0"},
       {[] { permute(ones({2, 3}), {0}); }, "expected 2 dims for a 2-d tensor"}}));
  rows.push_back(shape_row(
      "slice", {"slice", "slice_backward"}, one({5, 6}),
      [](const std::vector<Tensor>& in) { return slice(in[0], 1, 1, -1, 2); },
      [](const std::vector<ref::Arr>& in) {
        return ref::gather_by({5, 2}, in[0], [](const V& i) { return V{i[0], 1 + 2 * i[1]}; });
      },
      {{[] { slice(ones({2, 3}), 1, 0, 2, 0); }, "expected a positive step"},
       {[] { slice(ones({2, 3}), 2, 0, 1); }, "dimension 2 out of range"}}));
  rows.push_back(shape_row(
      "narrow_select", {"slice", "squeeze"}, one({4, 5}),
      [](const std::vector<Tensor>& in) { return select(narrow(in[0], 0, 1, 2), 1, -1); },
      [](const std::vector<ref::Arr>& in) { return ref::gather_by({2}, in[0], [](const V& i) { return V{1 + i[0], 4}; }); },
      {{[] { narrow(ones({4}), 0, 3, 2); }, "exceeds dimension 0 of size 4"},
       {[] { select(ones({4}), 0, 4); }, "index 4 out of range"}}));
  rows.push_back(shape_row(
      "cat", {"cat"}, [] { return std::vector<Tensor>{uniform({2, 3}, -2, 2, 1), uniform({2, 2}, -2, 2, 2)}; },
      [](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, 1); },
      [](const std::vector<ref::Arr>& in) {
        ref::Arr r{{2, 5}, {}};
        for (int64_t i = 0; i < 2; ++i) {
          for (int64_t j = 0; j < 3; ++j) r.v.push_back(in[0].v[size_t(i * 3 + j)]);
          for (int64_t j = 0; j < 2; ++j) r.v.push_back(in[1].v[size_t(i * 2 + j)]);
        }
        return r;
      },
      {{[] { cat({ones({2, 3}), ones({3, 3})}, 1); }, "sizes must match except in dimension 1"},
       {[] { cat({}, 0); }, "expected at least one tensor"}}));
  rows.push_back(shape_row(
      "stack_split_chunk", {"cat", "unsqueeze", "slice"}, one({4, 3}),
      [](const std::vector<Tensor>& in) {
        auto parts = chunk(in[0], 2, 0);     // [2,3] [2,3]
        auto more = split(in[0], 3, 0);      // [3,3] [1,3]
        return stack({parts[1], parts[0], slice(more[0], 0, 1, 3)}, 1);  // [2,3,3]
      },
      [](const std::vector<ref::Arr>& in) {
        return ref::gather_by({2, 3, 3}, in[0], [](const V& i) {
          int64_t row = i[1] == 0 ? 2 + i[0] : (i[1] == 1 ? i[0] : 1 + i[0]);
          return V{row, i[2]};
        });
      },
      {{[] { stack({ones({2}), ones({3})}); }, "tensor 1 has shape [3], expected [2]"},
       {[] { split_with_sizes(ones({4}), {1, 2}); }, "add up to 3, but dimension 0 has size 4"}}));
  rows.push_back(shape_row(
      "expand", {"expand", "sum"}, one({3, 1}), [](const std::vector<Tensor>& in) { return expand(in[0], {2, 3, 4}); },
      [](const std::vector<ref::Arr>& in) { return ref::gather_by({2, 3, 4}, in[0], [](const V& i) { return V{i[1], 0}; }); },
      {{[] { expand(ones({3, 2}), {3, 4}); }, "cannot expand shape [3, 2] to [3, 4]"}}));
  rows.push_back(shape_row(
      "squeeze_unsqueeze_flatten", {"squeeze", "unsqueeze", "view"}, one({2, 1, 3}),
      [](const std::vector<Tensor>& in) { return flatten(unsqueeze(squeeze(in[0]), 0), 1); },
      [](const std::vector<ref::Arr>& in) { return ref::Arr{{1, 6}, in[0].v}; },
      {{[] { unsqueeze(ones({2}), 3); }, "dimension 3 out of range"},
       {[] { flatten(ones({2, 3}), 1, 0); }, "must not come after"}}));
  rows.push_back(shape_row(
      "transpose_contiguous_t", {"permute", "clone"}, one({3, 4}),
      [](const std::vector<Tensor>& in) { return contiguous(t(in[0])); },
      [](const std::vector<ref::Arr>& in) { return ref::gather_by({4, 3}, in[0], [](const V& i) { return V{i[1], i[0]}; }); },
      {{[] { t(ones({2, 2, 2})); }, "expected a tensor of at most 2 dims"}}));
  rows.push_back(shape_row(
      "index_select", {"index_select", "scatter_add"}, one({4, 3}),
      [](const std::vector<Tensor>& in) { return index_select(in[0], 0, idx({3, 0, 3}).to(in[0].device())); },
      [](const std::vector<ref::Arr>& in) {
        return ref::gather_by({3, 3}, in[0], [](const V& i) { return V{i[0] == 1 ? 0 : 3, i[1]}; });
      },
      {{[] { index_select(ones({4, 3}), 0, idx({4})); }, "index 4 is out of range for dimension 0 of size 4"},
       {[] { index_select(ones({4, 3}), 0, ones({2})); }, "expected an int64 or int32 index, got float32"}}));
  rows.push_back(shape_row(
      "gather", {"gather", "scatter_add"}, one({3, 4}),
      [](const std::vector<Tensor>& in) { return gather(in[0], 1, idx({0, 3, 1, 1, 2, 0}, {3, 2}).to(in[0].device())); },
      [](const std::vector<ref::Arr>& in) {
        const int64_t ix[] = {0, 3, 1, 1, 2, 0};
        return ref::gather_by({3, 2}, in[0], [&](const V& i) { return V{i[0], ix[i[0] * 2 + i[1]]}; });
      },
      {{[] { gather(ones({3, 4}), 1, idx({0, 4}, {1, 2})); }, "index 4 is out of range for dimension 1 of size 4"},
       {[] { gather(ones({3, 4}), 1, idx({0, 1})); }, "index must have as many dims as the input (2)"}}));
  for (bool add : {false, true}) {
    rows.push_back(shape_row(
        add ? "scatter_add" : "scatter", {add ? "scatter_add" : "scatter", "gather", "pad"},
        [] { return std::vector<Tensor>{uniform({3, 4}, -2, 2, 61), uniform({3, 3}, -2, 2, 62)}; },
        [add](const std::vector<Tensor>& in) {
          Tensor ix = idx({2, 0, 1, 3, 3, 0}, {3, 2});  // distinct per row for scatter (no write races)
          if (add) ix = idx({2, 2, 1, 3, 3, 0}, {3, 2});
          ix = ix.to(in[0].device());
          return add ? scatter_add(in[0], 1, ix, in[1]) : scatter(in[0], 1, ix, in[1]);
        },
        [add](const std::vector<ref::Arr>& in) {
          ref::Arr r = in[0];
          const int64_t a[] = {2, 0, 1, 3, 3, 0}, b[] = {2, 2, 1, 3, 3, 0};
          for (int64_t i = 0; i < 3; ++i)
            for (int64_t j = 0; j < 2; ++j) {
              double& cell = r.v[size_t(i * 4 + (add ? b : a)[i * 2 + j])];
              cell = add ? cell + in[1].v[size_t(i * 3 + j)] : in[1].v[size_t(i * 3 + j)];
            }
          return r;
        },
        {{[add] {
            Tensor ix = idx({5}, {1, 1});
            add ? scatter_add(ones({2, 2}), 1, ix, ones({1, 1})) : scatter(ones({2, 2}), 1, ix, ones({1, 1}));
          },
          "index 5 is out of range"},
         {[] { scatter(ones({2, 2}), 0, idx({0, 1}, {1, 2}), ones({2})); }, "source must have as many dims"}}));
  }
  {
    OpCase c = shape_row(
        "masked_fill", {"where"}, one({3, 4}),
        [](const std::vector<Tensor>& in) { return masked_fill(in[0], in[0] > 0.5, -7.0); },
        [](const std::vector<ref::Arr>& in) { return ref::map(in[0], [](double x) { return x > 0.5 ? -7.0 : x; }); },
        {{[] { masked_fill(ones({2}), ones({2}), 1.0); }, "expected a bool mask, got float32"}});
    rows.push_back(c);
  }
  rows.push_back(shape_row(
      "pad", {"pad", "slice"}, one({2, 3}), [](const std::vector<Tensor>& in) { return pad(in[0], {1, 2, 0, 1}, 0.5); },
      [](const std::vector<ref::Arr>& in) {
        ref::Arr r{{3, 6}, std::vector<double>(18, 0.5)};
        for (int64_t i = 0; i < 2; ++i)
          for (int64_t j = 0; j < 3; ++j) r.v[size_t(i * 6 + j + 1)] = in[0].v[size_t(i * 3 + j)];
        return r;
      },
      {{[] { pad(ones({2}), {1}); }, "expected (before, after) pairs"},
       {[] { pad(ones({2}), {-1, 0}); }, "expected non-negative padding"}}));
  {
    OpCase c = shape_row(
        "one_hot", {"one_hot"}, [] { return std::vector<Tensor>{idx({2, 0, 1})}; },
        [](const std::vector<Tensor>& in) { return one_hot(in[0], 4); },
        [](const std::vector<ref::Arr>&) {
          return ref::Arr{{3, 4}, {0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0}};
        },
        {{[] { one_hot(idx({4}), 4); }, "class index 4 is out of range for num_classes 4"},
         {[] { one_hot(ones({2}), 4); }, "expected an int64 or int32 class index"}});
    c.grad = false;
    rows.push_back(c);
  }
  return rows;
}

}  // namespace pacer::test
