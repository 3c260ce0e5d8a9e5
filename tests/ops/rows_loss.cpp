// Op-table rows of layer_norm, embedding and the losses (cross_entropy, nll_loss,
// smooth_l1_loss, bce_with_logits, mse_loss), with naive f64 references. These are
// composites, so `covers` names the registered ops they run through.
#include <cmath>

#include <doctest/doctest.h>

#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

// Sum, mean or identity of per-element losses; "mean" divides by `count` (the number of
// counted elements).
ref::Arr reduce_ref(const ref::Arr& loss, const std::string& reduction, double count) {
  if (reduction == "none") return loss;
  double s = 0;
  for (double v : loss.v) s += v;
  return {{}, {reduction == "sum" ? s : s / count}};
}

ref::Arr reduce_ref(const ref::Arr& loss, const std::string& reduction) {
  return reduce_ref(loss, reduction, double(loss.numel()));
}

// Per-element losses of logp-like scores x [N, C, d...] (or [C]) at targets t; `log_softmax`
// normalizes over C first; smoothing mixes in the mean over classes.
ref::Arr class_loss_ref(const ref::Arr& x, const std::vector<int64_t>& t, bool log_softmax, double smoothing,
                        int64_t ignore, const std::string& reduction) {
  const bool unbatched = x.sizes.size() == 1;
  const int64_t N = unbatched ? 1 : x.sizes[0], C = unbatched ? x.sizes[0] : x.sizes[1];
  int64_t S = 1;
  for (size_t d = 2; d < x.sizes.size(); ++d) S *= x.sizes[d];
  Shape out = x.sizes;
  out.erase(unbatched ? 0 : 1);
  ref::Arr loss{out, std::vector<double>(size_t(N * S), 0.0)};
  double count = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < S; ++s) {
      const int64_t k = t[size_t(n * S + s)];
      if (k == ignore) continue;
      count += 1;
      std::vector<double> lp(static_cast<size_t>(C));
      double mx = -INFINITY;
      for (int64_t c = 0; c < C; ++c) mx = std::max(mx, x.v[size_t((n * C + c) * S + s)]);
      double z = 0;
      for (int64_t c = 0; c < C; ++c) z += std::exp(x.v[size_t((n * C + c) * S + s)] - mx);
      for (int64_t c = 0; c < C; ++c) {
        const double v = x.v[size_t((n * C + c) * S + s)];
        lp[size_t(c)] = log_softmax ? v - mx - std::log(z) : v;
      }
      double uniform = 0;
      for (double v : lp) uniform -= v / double(C);
      loss.v[size_t(n * S + s)] = (1 - smoothing) * -lp[size_t(k)] + smoothing * uniform;
    }
  return reduce_ref(loss, reduction, count);
}

OpCase class_loss_row(const std::string& name, bool ce, Shape xs, std::vector<int64_t> target, const std::string& reduction,
                      int64_t ignore, double smoothing, DType target_dtype = DType::I64) {
  OpCase c;
  c.name = name;
  c.covers = ce ? std::vector<std::string>{"log_softmax", "gather", "where", "sum"}
                : std::vector<std::string>{"gather", "where", "eq", "logical_not"};
  Shape ts = xs;
  ts.erase(xs.size() == 1 ? 0 : 1);
  c.inputs = [=] { return std::vector<Tensor>{uniform(xs, -2, 2, 101), cast(reshape(idx(target), ts), target_dtype)}; };
  c.run = [=](const std::vector<Tensor>& in) {
    return ce ? cross_entropy(in[0], in[1], reduction, ignore, smoothing) : nll_loss(in[0], in[1], reduction, ignore);
  };
  c.reference = [=](const std::vector<ref::Arr>& in) {
    return class_loss_ref(in[0], target, ce, smoothing, ignore, reduction);
  };
  const char* fn = ce ? "cross_entropy" : "nll_loss";
  auto call = [ce](const Tensor& x, const Tensor& t, const std::string& r = "mean", int64_t ig = -100, double s = 0) {
    return ce ? cross_entropy(x, t, r, ig, s) : nll_loss(x, t, r, ig);
  };
  c.errors = {
      {[=] { call(ones({3, 4}), idx({0, 4, 1})); },
       std::string(fn) + ": target 4 is out of range for 4 classes (expected 0 <= target < 4 or ignore_index -100)"},
      {[=] { call(ones({3, 4}), idx({0, 1})); }, "expected a target of shape [3] for an input of shape [3, 4], got shape [2]"},
      {[=] { call(ones({3, 4}), ones({3})); }, "expected int64 (or int32) class-index targets, got float32"},
      {[=] { call(ones({3, 4}), idx({0, 1, 2}), "avg"); }, "expected reduction 'mean', 'sum' or 'none', got 'avg'"},
      {[=] { call(idx({1, 2}), idx({0})); }, "expected a floating input"},
      {[=] { call(ones({2, 3, 5}), idx({0, 1}, {2})); }, "expected a target of shape [2, 5]"}};
  if (ce)
    c.errors.push_back({[] { cross_entropy(ones({2, 3}), idx({0, 1}), "mean", -100, 1.5); },
                        "expected label_smoothing in [0, 1], got 1.5"});
  return c;
}

// x and y floating inputs of one shape, with a per-element loss reference.
OpCase pair_row(const std::string& name, std::vector<std::string> covers, Shape xs, double ylo, double yhi,
                std::function<Tensor(const Tensor&, const Tensor&, const std::string&)> run, std::string reduction,
                std::function<double(double, double)> elem, std::vector<ErrorCase> errors) {
  OpCase c;
  c.name = name;
  c.covers = std::move(covers);
  c.inputs = [=] { return std::vector<Tensor>{uniform(xs, -2, 2, 111), uniform(xs, ylo, yhi, 112)}; };
  c.run = [=](const std::vector<Tensor>& in) { return run(in[0], in[1], reduction); };
  c.reference = [=](const std::vector<ref::Arr>& in) {
    return reduce_ref(ref::zip(in, [&](const std::vector<double>& v) { return elem(v[0], v[1]); }), reduction);
  };
  c.errors = std::move(errors);
  return c;
}

// Both terms of torch's definition -[pw y log s(x) + (1 - y) log(1 - s(x))], with
// -log s(x) = log1p(exp(-x)) and -log(1 - s(x)) = log1p(exp(x)) (exact in f64 for |x| < 700).
double bce_ref(double x, double y, double pw) { return pw * y * std::log1p(std::exp(-x)) + (1 - y) * std::log1p(std::exp(x)); }

ref::Arr layer_norm_ref(const ref::Arr& x, int64_t inner, const ref::Arr* w, const ref::Arr* b, double eps) {
  ref::Arr y = x;
  for (int64_t o = 0; o < x.numel() / inner; ++o) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < inner; ++i) m += x.v[size_t(o * inner + i)];
    m /= double(inner);
    for (int64_t i = 0; i < inner; ++i) v += (x.v[size_t(o * inner + i)] - m) * (x.v[size_t(o * inner + i)] - m);
    v /= double(inner);
    for (int64_t i = 0; i < inner; ++i) {
      double r = (x.v[size_t(o * inner + i)] - m) / std::sqrt(v + eps);
      if (w) r *= w->v[size_t(i)];
      if (b) r += b->v[size_t(i)];
      y.v[size_t(o * inner + i)] = r;
    }
  }
  return y;
}

ref::Arr embedding_ref(const ref::Arr& w, const std::vector<int64_t>& ids, const Shape& ids_shape) {
  const int64_t D = w.sizes[1];
  Shape out = ids_shape;
  out.push_back(D);
  ref::Arr y{out, {}};
  for (int64_t k : ids)
    for (int64_t j = 0; j < D; ++j) y.v.push_back(w.v[size_t(k * D + j)]);
  return y;
}

std::vector<ErrorCase> embedding_errors() {
  return {{[] { embedding(ones({5, 3}), idx({0, 5, 1})); },
           "embedding: index 5 is out of range for a weight of 5 rows (expected 0 <= index < 5)"},
          {[] { embedding(ones({5, 3}), idx({-1})); }, "index -1 is out of range"},
          {[] { embedding(ones({5}), idx({0})); }, "expected a 2-d weight [num_embeddings, embedding_dim], got shape [5]"},
          {[] { embedding(ones({5, 3}), ones({2})); }, "expected int64 or int32 indices, got float32"},
          {[] { embedding(ones({5, 3}), idx({0}), 5); }, "expected padding_idx in [0, 5) or -1 (none), got 5"}};
}

}  // namespace

std::vector<OpCase> loss_rows() {
  std::vector<OpCase> rows;

  // --- layer_norm ---
  {
    OpCase c;
    c.name = "layer_norm_affine";
    c.covers = {"sum", "rsqrt", "mul", "add"};
    c.inputs = [] {
      return std::vector<Tensor>{uniform({3, 2, 2, 4}, -2, 2, 121), uniform({2, 4}, 0.5, 1.5, 122), uniform({2, 4}, -1, 1, 123)};
    };
    c.run = [](const std::vector<Tensor>& in) { return layer_norm(in[0], {2, 4}, in[1], in[2], 1e-5); };
    c.reference = [](const std::vector<ref::Arr>& in) { return layer_norm_ref(in[0], 8, &in[1], &in[2], 1e-5); };
    c.errors = {{[] { layer_norm(ones({2, 3}), {4}); },
                 "layer_norm: expected an input whose trailing dims are normalized_shape [4], got shape [2, 3]"},
                {[] { layer_norm(ones({2, 3}), {2, 3, 1}); }, "trailing dims are normalized_shape [2, 3, 1]"},
                {[] { layer_norm(ones({2, 3}), {3}, ones({4})); }, "expected weight of shape [3] (normalized_shape), got [4]"},
                {[] { layer_norm(ones({2, 3}), {3}, Tensor(), ones({3, 1})); }, "expected bias of shape [3] (normalized_shape), got [3, 1]"},
                {[] { layer_norm(ones({2, 3}), {}); }, "expected a non-empty normalized_shape, got []"},
                {[] { layer_norm(idx({1, 2}), {2}); }, "layer_norm: expected a floating input"}};
    rows.push_back(c);
  }
  {
    OpCase c;
    c.name = "layer_norm_plain";
    c.covers = {"sum", "rsqrt"};
    c.inputs = [] { return std::vector<Tensor>{uniform({4, 6}, -3, 1, 124)}; };
    c.run = [](const std::vector<Tensor>& in) { return layer_norm(in[0], {6}, Tensor(), Tensor(), 1e-3); };
    c.reference = [](const std::vector<ref::Arr>& in) { return layer_norm_ref(in[0], 6, nullptr, nullptr, 1e-3); };
    c.errors = {{[] { layer_norm(ones({2, 3}), {3}, Tensor(), Tensor(), -1); }, "expected eps >= 0, got -1"}};
    rows.push_back(c);
  }

  // --- embedding ---
  {
    const std::vector<int64_t> ids = {4, 0, 2, 2, 5, 0};
    OpCase c;
    c.name = "embedding";
    c.covers = {"index_select", "scatter_add"};
    c.inputs = [=] { return std::vector<Tensor>{uniform({6, 3}, -2, 2, 131), idx(ids, {2, 3})}; };
    c.run = [](const std::vector<Tensor>& in) { return embedding(in[0], in[1]); };
    c.reference = [=](const std::vector<ref::Arr>& in) { return embedding_ref(in[0], ids, {2, 3}); };
    c.errors = embedding_errors();
    rows.push_back(c);
  }
  {
    // int32 indices, 0-d; output [D].
    OpCase c;
    c.name = "embedding_int32_scalar_index";
    c.covers = {"index_select"};
    c.inputs = [] { return std::vector<Tensor>{uniform({4, 5}, -2, 2, 132), cast(reshape(idx({3}), {}), DType::I32)}; };
    c.run = [](const std::vector<Tensor>& in) { return embedding(in[0], in[1]); };
    c.reference = [](const std::vector<ref::Arr>& in) { return embedding_ref(in[0], {3}, {}); };
    c.errors = {{[] { embedding(ones({4, 5}), cast(idx({7}), DType::I32)); }, "index 7 is out of range for a weight of 4 rows"}};
    rows.push_back(c);
  }
  {
    // padding_idx: the forward reads the row as any other; the gradient (checked below by
    // embedding_padding_idx_grad) skips it, so central differences do not apply here.
    const std::vector<int64_t> ids = {1, 3, 1, 0, 2, 1};
    OpCase c;
    c.name = "embedding_padding_idx";
    c.covers = {"index_select", "where", "eq"};
    c.inputs = [=] { return std::vector<Tensor>{uniform({4, 3}, -2, 2, 133), idx(ids, {6})}; };
    c.run = [](const std::vector<Tensor>& in) { return embedding(in[0], in[1], 1); };
    c.reference = [=](const std::vector<ref::Arr>& in) { return embedding_ref(in[0], ids, {6}); };
    c.grad = false;
    c.errors = {{[] { embedding(ones({4, 3}), idx({0}), -2); }, "expected padding_idx in [0, 4) or -1 (none), got -2"}};
    rows.push_back(c);
  }
  {
    OpCase c;
    c.name = "embedding_padding_idx_grad";
    c.covers = {"index_select", "where", "scatter_add"};
    c.errors = {{[] { embedding(ones({4, 3}), idx({0}), 4); }, "expected padding_idx in [0, 4) or -1 (none), got 4"}};
    c.custom = [] {
      const std::vector<int64_t> ids = {1, 3, 1, 0, 2, 1, 3};
      for (int64_t pad : {int64_t(-1), int64_t(1), int64_t(3)}) {
        INFO("padding_idx " << pad);
        Tensor w = uniform({5, 2}, -1, 1, 134);
        w.set_requires_grad();
        Tensor gy = uniform({7, 2}, -1, 1, 135);
        Tensor y = embedding(w, idx(ids, {7}), pad);
        CHECK(y.to_vector<double>() == embedding_ref(ref::of(w), ids, {7}).v);
        y.backward(gy);
        // Expected: each row accumulates the gradients of its picks, except padding_idx (0).
        std::vector<double> want(10, 0.0), g = gy.to_vector<double>();
        for (size_t i = 0; i < ids.size(); ++i)
          for (size_t j = 0; j < 2; ++j)
            if (ids[i] != pad) want[size_t(ids[i]) * 2 + j] += g[i * 2 + j];
        std::vector<double> got = w.grad().to_vector<double>();
        REQUIRE(got.size() == want.size());
        for (size_t k = 0; k < want.size(); ++k) CHECK(got[k] == doctest::Approx(want[k]).epsilon(1e-12));
      }
    };
    rows.push_back(c);
  }

  // --- cross_entropy and nll_loss ---
  rows.push_back(class_loss_row("cross_entropy_mean", true, {5, 4}, {0, 3, 1, 1, 2}, "mean", -100, 0));
  rows.push_back(class_loss_row("cross_entropy_sum", true, {5, 4}, {0, 3, 1, 1, 2}, "sum", -100, 0));
  rows.push_back(class_loss_row("cross_entropy_none", true, {5, 4}, {0, 3, 1, 1, 2}, "none", -100, 0));
  rows.push_back(class_loss_row("cross_entropy_ignore_index_mean", true, {6, 3}, {0, -100, 2, 1, -100, 2}, "mean", -100, 0));
  rows.push_back(class_loss_row("cross_entropy_ignore_index_none_int32", true, {4, 3}, {2, 1, 1, 0}, "none", 1, 0,
                                DType::I32));
  rows.push_back(class_loss_row("cross_entropy_label_smoothing_mean", true, {6, 5}, {0, 4, -100, 1, 3, 3}, "mean", -100, 0.2));
  rows.push_back(class_loss_row("cross_entropy_label_smoothing_sum", true, {4, 3}, {2, 0, 1, 2}, "sum", 0, 0.1));
  rows.push_back(class_loss_row("cross_entropy_label_smoothing_none", true, {4, 3}, {2, 0, -100, 2}, "none", -100, 1.0));
  rows.push_back(class_loss_row("cross_entropy_spatial", true, {2, 3, 2, 2}, {0, 1, 2, -100, 2, 2, 0, 1}, "mean", -100, 0.1));
  rows.push_back(class_loss_row("cross_entropy_spatial_none", true, {2, 4, 3}, {3, 0, 1, 2, -100, 0}, "none", -100, 0));
  rows.push_back(class_loss_row("cross_entropy_unbatched", true, {5}, {3}, "mean", -100, 0.1));
  rows.push_back(class_loss_row("nll_loss_mean", false, {5, 4}, {0, 3, 1, 1, 2}, "mean", -100, 0));
  rows.push_back(class_loss_row("nll_loss_sum_ignore_index", false, {5, 4}, {0, 3, 3, 1, 2}, "sum", 3, 0));
  rows.push_back(class_loss_row("nll_loss_none_ignore_index", false, {5, 4}, {0, -100, 1, 1, 2}, "none", -100, 0));
  rows.push_back(class_loss_row("nll_loss_spatial_mean", false, {2, 3, 4}, {0, 1, 2, 2, -100, 1, 0, 0}, "mean", -100, 0));
  {
    // Every target ignored: "mean" is 0 / 0 = nan (as torch), "sum" is 0.
    OpCase c;
    c.name = "cross_entropy_all_ignored";
    c.covers = {"log_softmax", "gather", "where"};
    c.errors = {{[] { nll_loss(ones({2, 3}), idx({0, 1}), ""); }, "got ''"}};
    c.custom = [] {
      Tensor x = uniform({2, 3}, -1, 1, 141), t = idx({-100, -100});
      CHECK(std::isnan(cross_entropy(x, t).item<double>()));
      CHECK(cross_entropy(x, t, "sum").item<double>() == 0.0);
      CHECK(cross_entropy(x, t, "sum", -100, 0.3).item<double>() == 0.0);
    };
    rows.push_back(c);
  }

  // --- smooth_l1_loss ---
  auto pair_errors = [](const std::string& fn,
                        std::function<Tensor(const Tensor&, const Tensor&, const std::string&)> f) -> std::vector<ErrorCase> {
    return {{[=] { f(ones({2, 3}), ones({3}), "mean"); }, fn + ": expected a target of the input's shape [2, 3], got shape [3]"},
            {[=] { f(ones({2}), ones({2}), "total"); }, fn + ": expected reduction 'mean', 'sum' or 'none', got 'total'"},
            {[=] { f(idx({1, 2}), ones({2}), "mean"); }, fn + ": expected a floating input"},
            {[=] { f(ones({2}), idx({1, 2}), "mean"); }, fn + ": expected a floating target"}};
  };
  for (auto [beta, reduction] : {std::pair{1.0, "mean"}, std::pair{0.5, "none"}, std::pair{0.0, "sum"}, std::pair{2.0, "sum"}}) {
    const double b = beta;
    auto f = [b](const Tensor& x, const Tensor& y, const std::string& r) { return smooth_l1_loss(x, y, r, b); };
    auto errors = pair_errors("smooth_l1_loss", f);
    errors.push_back({[] { smooth_l1_loss(ones({2}), ones({2}), "mean", -0.5); }, "expected beta >= 0, got -0.5"});
    rows.push_back(pair_row(fmt::format("smooth_l1_loss_beta{}_{}", b, reduction), {"abs", "lt", "where"}, {4, 5}, -2, 2, f,
                            reduction,
                            [b](double x, double y) {
                              const double d = std::fabs(x - y);
                              return b == 0 ? d : (d < b ? 0.5 * d * d / b : d - 0.5 * b);
                            },
                            errors));
  }

  // --- bce_with_logits ---
  {
    auto f = [](const Tensor& x, const Tensor& y, const std::string& r) { return bce_with_logits(x, y, Tensor(), r); };
    for (const char* reduction : {"mean", "none"})
      rows.push_back(pair_row(std::string("bce_with_logits_") + reduction, {"exp", "log", "relu", "abs"}, {3, 4}, 0, 1, f,
                              reduction, [](double x, double y) { return bce_ref(x, y, 1.0); },
                              pair_errors("bce_with_logits", f)));
  }
  for (const char* reduction : {"sum", "none", "mean"}) {
    const std::string r = reduction;
    OpCase c;
    c.name = "bce_with_logits_pos_weight_" + r;
    c.covers = {"exp", "log", "relu", "abs", "sum"};
    c.inputs = [] {
      return std::vector<Tensor>{uniform({3, 4}, -3, 3, 151), uniform({3, 4}, 0, 1, 152), uniform({4}, 0.5, 3, 153)};
    };
    c.run = [r](const std::vector<Tensor>& in) { return bce_with_logits(in[0], in[1], in[2], r); };
    c.reference = [r](const std::vector<ref::Arr>& in) {
      return reduce_ref(ref::zip(in, [](const std::vector<double>& v) { return bce_ref(v[0], v[1], v[2]); }), r);
    };
    c.errors = {{[] { bce_with_logits(ones({3, 4}), ones({3, 4}), ones({3})); },
                 "expected a pos_weight that broadcasts to the input's shape [3, 4] (e.g. [4]), got shape [3]"},
                {[] { bce_with_logits(ones({3, 4}), ones({3, 4}), idx({1, 1, 1, 1})); },
                 "bce_with_logits: expected a floating pos_weight"}};
    rows.push_back(c);
  }
  {
    // Large logits: no overflow (exp is only taken of -|x|).
    OpCase c;
    c.name = "bce_with_logits_large_logits";
    c.covers = {"exp", "log", "relu"};
    c.inputs = [] {
      return std::vector<Tensor>{from_vector<double>({-300, -60, -20, 0.5, 20, 60, 300, -2}, {2, 4}),
                                 uniform({2, 4}, 0, 1, 154), from_vector<double>({2.0, 0.5, 1.0, 3.0}, {4})};
    };
    c.run = [](const std::vector<Tensor>& in) { return bce_with_logits(in[0], in[1], in[2], "none"); };
    c.reference = [](const std::vector<ref::Arr>& in) {
      return ref::zip(in, [](const std::vector<double>& v) { return bce_ref(v[0], v[1], v[2]); });
    };
    c.errors = {{[] { bce_with_logits(ones({3, 4}), ones({3, 4}), ones({2, 4})); }, "got shape [2, 4]"}};
    rows.push_back(c);
  }

  // --- mse_loss ---
  {
    auto f = [](const Tensor& x, const Tensor& y, const std::string& r) { return mse_loss(x, y, r); };
    for (const char* reduction : {"mean", "sum", "none"})
      rows.push_back(pair_row(std::string("mse_loss_") + reduction, {"sub", "mul", "sum"}, {3, 2, 4}, -2, 2, f, reduction,
                              [](double x, double y) { return (x - y) * (x - y); }, pair_errors("mse_loss", f)));
  }
  // Half inputs are computed in f32, so only the rounding of the result remains: tighter
  // than the table's defaults (which would also pass with f16/bf16 intermediates).
  for (OpCase& r : rows) {
    r.tol_f16 = 2e-3;
    r.tol_bf16 = 1e-2;
  }
  return rows;
}

}  // namespace pacer::test
