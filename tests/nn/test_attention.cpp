// Attention: scaled_dot_product_attention and nn::MultiheadAttention against PyTorch goldens
// (tests/golden/attention.safetensors, made by tests/golden/make_attention_golden.py) in f64,
// forward and backward; gradcheck of the composite with masks; half-precision inputs; fully
// masked rows; parameter names and init; and the error messages.
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include "nn/multihead_attention.h"
#include "nn/safetensors.h"
#include "ops/api_attention.h"
#include "tests/test_util.h"

namespace pacer {

using test::error_of;

namespace {

const std::map<std::string, Tensor>& golden() {
  static const std::map<std::string, Tensor> g = [] {
    std::map<std::string, Tensor> out;
    for (auto& [name, t] : nn::load_safetensors(std::string(PACER_GOLDEN_DIR) + "/attention.safetensors"))
      out.emplace(name, t);
    return out;
  }();
  return g;
}

const Tensor& at(const std::string& key) {
  auto it = golden().find(key);
  REQUIRE_MESSAGE(it != golden().end(), "golden key " << key << " missing");
  return it->second;
}

bool has(const std::string& key) { return golden().count(key) != 0; }

// A fresh leaf that requires grad, holding the golden's values.
Tensor leaf(const std::string& key) { return clone(at(key)).set_requires_grad(true); }

void check_close(const Tensor& got, const Tensor& want, const std::string& what, double tol = 1e-10) {
  REQUIRE_MESSAGE(got.defined(), what << " is undefined");
  REQUIRE_MESSAGE(got.sizes() == want.sizes(), what << ": shape " << fmt::format("{}", got.sizes()) << " != "
                                                     << fmt::format("{}", want.sizes()));
  const std::vector<double> a = got.to_vector<double>(), b = want.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  CHECK_MESSAGE(worst <= tol, what << ": max |difference| " << worst);
}

bool contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return true;
  MESSAGE("'" << text << "' does not contain '" << part << "'");
  return false;
}

Tensor rnd(const Shape& s, uint64_t seed, DType dtype = DType::F64) {
  Generator g(seed);
  return randn(s, {.dtype = dtype}, &g);
}

}  // namespace

TEST_CASE("scaled_dot_product_attention matches torch 2.x's math in f64, forward and backward") {
  struct Case {
    const char* name;
    bool causal;
    std::optional<double> scale;
  };
  for (const Case& c : {Case{"plain", false, {}}, Case{"bool_mask", false, {}}, Case{"float_mask", false, {}},
                        Case{"causal", true, {}}, Case{"scale_broadcast", false, 0.3}}) {
    INFO("case ", c.name);
    const std::string p = std::string("sdpa.") + c.name + ".";
    Tensor q = leaf(p + "q"), k = leaf(p + "k"), v = leaf(p + "v");
    const Tensor mask = has(p + "mask") ? at(p + "mask") : Tensor();
    Tensor out = scaled_dot_product_attention(q, k, v, mask, c.causal, c.scale);
    check_close(out, at(p + "out"), p + "out");
    sum(out * at(p + "c")).backward();
    check_close(q.grad(), at(p + "grad.q"), p + "grad.q");
    check_close(k.grad(), at(p + "grad.k"), p + "grad.k");
    check_close(v.grad(), at(p + "grad.v"), p + "grad.v");
  }
}

TEST_CASE("MultiheadAttention matches torch.nn.MultiheadAttention in f64, forward and backward") {
  struct Case {
    const char* name;
    int64_t E, H;
    bool batch_first, self_attention, average;
  };
  for (const Case& c : {Case{"padding", 8, 2, false, false, true}, Case{"causal", 6, 3, true, true, false}}) {
    INFO("case ", c.name);
    const std::string p = std::string("mha.") + c.name + ".";
    nn::MultiheadAttention mha(c.E, c.H, true, c.batch_first, {.dtype = DType::F64});
    std::vector<std::pair<std::string, Tensor>> state;
    for (const auto& [name, t] : golden())
      if (name.rfind(p + "param.", 0) == 0) state.emplace_back(name.substr(p.size() + 6), t);
    REQUIRE(state.size() == 4);
    mha.load_state_dict(state);

    Tensor query = leaf(p + "query");
    Tensor key = c.self_attention ? query : leaf(p + "key");
    Tensor value = c.self_attention ? query : leaf(p + "value");
    const Tensor kpm = has(p + "key_padding_mask") ? at(p + "key_padding_mask") : Tensor();
    const Tensor mask = has(p + "attn_mask") ? at(p + "attn_mask") : Tensor();
    auto [out, weights] = mha.forward(query, key, value, kpm, true, mask, c.average);
    check_close(out, at(p + "out"), p + "out");
    check_close(weights, at(p + "weights"), p + "weights");
    (sum(out * at(p + "c")) + sum(weights * at(p + "cw"))).backward();
    check_close(query.grad(), at(p + "grad.query"), p + "grad.query");
    if (!c.self_attention) {
      check_close(key.grad(), at(p + "grad.key"), p + "grad.key");
      check_close(value.grad(), at(p + "grad.value"), p + "grad.value");
    }
    for (const auto& [name, t] : mha.named_parameters()) check_close(t.grad(), at(p + "grad.param." + name), name);

    // need_weights = false takes the scaled_dot_product_attention path: same output.
    NoGradGuard no_grad;
    auto [out2, none] = mha.forward(query, key, value, kpm, false, mask);
    CHECK_FALSE(none.defined());
    check_close(out2, at(p + "out"), p + "out without weights");
  }
}

TEST_CASE("scaled_dot_product_attention passes gradcheck in f64 with masks") {
  const Tensor q = rnd({2, 3, 4}, 1), k = rnd({2, 5, 4}, 2), v = rnd({2, 5, 3}, 3);
  Tensor bool_mask = gt(rnd({3, 5}, 4), wrap(-0.5));
  bool_mask = logical_or(bool_mask, lt(unsqueeze(arange(5), 0), wrap(int64_t(1))));  // column 0 kept
  const Tensor float_mask = rnd({2, 1, 5}, 5);
  struct Case {
    const char* name;
    Tensor mask;
    bool causal;
  };
  for (const Case& c : {Case{"none", Tensor(), false}, Case{"bool", bool_mask, false}, Case{"float", float_mask, false},
                        Case{"causal", Tensor(), true}}) {
    INFO("mask ", c.name);
    auto f = [&](const std::vector<Tensor>& in) {
      return scaled_dot_product_attention(in[0], in[1], in[2], c.mask, c.causal);
    };
    auto r = autograd::gradcheck(f, {clone(q).set_requires_grad(true), clone(k).set_requires_grad(true),
                                     clone(v).set_requires_grad(true)});
    CHECK_MESSAGE(r.ok, r.message);
  }
  // A float mask that requires grad gets its gradient too.
  auto f = [&](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2], in[3]); };
  auto r = autograd::gradcheck(f, {clone(q).set_requires_grad(true), clone(k).set_requires_grad(true),
                                   clone(v).set_requires_grad(true), clone(float_mask).set_requires_grad(true)});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("scaled_dot_product_attention: bool and additive masks agree, causal equals its explicit mask") {
  const Tensor q = rnd({2, 4, 3}, 11), k = rnd({2, 4, 3}, 12), v = rnd({2, 4, 2}, 13);
  const Tensor i = unsqueeze(arange(4), 1), j = unsqueeze(arange(4), 0);
  const Tensor keep = le(j, i);
  const Tensor additive = where(keep, wrap(0.0), wrap(-std::numeric_limits<double>::infinity()));
  const Tensor causal = scaled_dot_product_attention(q, k, v, Tensor(), true);
  check_close(scaled_dot_product_attention(q, k, v, keep), causal, "bool mask");
  check_close(scaled_dot_product_attention(q, k, v, cast(additive, DType::F64)), causal, "additive mask");
  // Weights: rows sum to 1, zero where masked.
  const Tensor w = scaled_dot_product_attention_weights(q, k, Tensor(), true);
  check_close(sum(w, {-1}), ones({2, 4}, {.dtype = DType::F64}), "row sums", 1e-12);
  CHECK(sum(where(keep, wrap(0.0), w)).item<double>() == 0.0);
}

TEST_CASE("scaled_dot_product_attention: half inputs softmax in f32, fully masked rows give NaN") {
  const Tensor q = rnd({2, 4, 8}, 21, DType::F32), k = rnd({2, 6, 8}, 22, DType::F32), v = rnd({2, 6, 8}, 23, DType::F32);
  const Tensor ref = scaled_dot_product_attention(q, k, v, Tensor(), true);
  for (DType dt : {DType::F16, DType::BF16}) {
    const Tensor out = scaled_dot_product_attention(cast(q, dt), cast(k, dt), cast(v, dt), Tensor(), true);
    CHECK(out.dtype() == dt);
    check_close(cast(out, DType::F32), ref, "half output", dt == DType::F16 ? 1e-2 : 6e-2);
  }
  // Row 1 masks every key: NaN there (documented; torch's softmax of an all -inf row), the
  // other rows are unaffected.
  Tensor mask = ones({4, 6}, {.dtype = DType::Bool});
  mask = logical_and(mask, logical_not(eq(unsqueeze(arange(4), 1), wrap(int64_t(1)))));
  const std::vector<double> out = scaled_dot_product_attention(q, k, v, mask).to_vector<double>();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t l = 0; l < 4; ++l)
      for (int64_t d = 0; d < 8; ++d) CHECK(std::isnan(out[size_t((b * 4 + l) * 8 + d)]) == (l == 1));
}

TEST_CASE("MultiheadAttention has torch's parameter names, shapes and init") {
  nn::MultiheadAttention mha(12, 3);
  std::vector<std::string> names;
  for (const auto& [n, t] : mha.state_dict()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"});
  CHECK(mha.in_proj_weight.sizes() == Shape{36, 12});
  CHECK(mha.head_dim == 4);
  const double bound = std::sqrt(6.0 / 48.0);
  CHECK(max(abs(mha.in_proj_weight)).item<double>() <= bound);
  CHECK(max(abs(mha.in_proj_weight)).item<double>() > 0.5 * bound);
  CHECK(max(abs(mha.in_proj_bias)).item<double>() == 0.0);
  CHECK(max(abs(mha.out_proj->bias)).item<double>() == 0.0);
  CHECK(max(abs(mha.out_proj->weight)).item<double>() <= 1.0 / std::sqrt(12.0));
  for (const auto& t : mha.parameters()) CHECK(t.requires_grad());
  nn::MultiheadAttention no_bias(4, 2, false);
  CHECK(no_bias.state_dict().size() == 2);

  // Unbatched input [L, E] equals the batched result of a batch of one.
  const Tensor x = rnd({3, 12}, 31, DType::F32), y = rnd({5, 12}, 32, DType::F32);
  const Tensor kpm = from_vector(std::vector<bool>{false, true, false, false, true}, {5});
  auto [o1, w1] = mha.forward(x, y, y, kpm);
  auto [o2, w2] = mha.forward(unsqueeze(x, 1), unsqueeze(y, 1), unsqueeze(y, 1), unsqueeze(kpm, 0));
  CHECK(o1.sizes() == Shape{3, 12});
  CHECK(w1.sizes() == Shape{3, 5});
  check_close(o1, squeeze(o2, 1), "unbatched output", 1e-6);
  check_close(w1, squeeze(w2, 0), "unbatched weights", 1e-6);
  CHECK(max(abs(select(w1, 1, 1))).item<double>() == 0.0);  // padded key gets no weight
}

TEST_CASE("attention error messages") {
  const Tensor q = ones({2, 3, 4}), k = ones({2, 5, 4}), v = ones({2, 5, 6});
  CHECK(contains(error_of([&] { scaled_dot_product_attention(q, ones({2, 5, 3}), v); }),
                 "scaled_dot_product_attention: expected query and key with the same head dim (last dim), got query "
                 "shape [2, 3, 4] (d = 4) and key shape [2, 5, 3] (d = 3)"));
  CHECK(contains(error_of([&] { scaled_dot_product_attention(q, k, ones({2, 4, 6})); }),
                 "expected value [..., S, dv] with key's S = 5 (key shape [2, 5, 4]), got value shape [2, 4, 6]"));
  CHECK(contains(error_of([&] { scaled_dot_product_attention(q, k, v, ones({4, 5}, {.dtype = DType::Bool})); }),
                 "scaled_dot_product_attention: expected an attn_mask that broadcasts to [..., L, S] = [2, 3, 5], got "
                 "shape [4, 5]"));
  CHECK(contains(error_of([&] { scaled_dot_product_attention(q, k, v, ones({3, 2, 3, 5})); }),
                 "broadcasts to [..., L, S] = [2, 3, 5], got shape [3, 2, 3, 5]"));
  CHECK(contains(error_of([&] { scaled_dot_product_attention(q, ones({3, 5, 4}), ones({3, 5, 6})); }),
                 "expected query and key whose batch dims (all but the last two) broadcast, got query shape [2, 3, 4] "
                 "and key shape [3, 5, 4]"));
  CHECK(contains(error_of([&] { scaled_dot_product_attention(q, k, v, ones({3, 5}), true); }),
                 "expected either an attn_mask or is_causal=true, not both"));
  CHECK(contains(error_of([&] { scaled_dot_product_attention(q, cast(k, DType::F64), v); }),
                 "expected query and key of one dtype, got float32 and float64"));
  CHECK(contains(error_of([&] { scaled_dot_product_attention(ones({4}), k, v); }),
                 "expected query [..., L, d] and key [..., S, d] with at least 2 dims"));
  CHECK(contains(error_of([&] { scaled_dot_product_attention(q, k, v, ones({3, 5}, {.dtype = DType::I64})); }),
                 "expected a bool or floating attn_mask, got int64"));

  CHECK(contains(error_of([] { nn::MultiheadAttention(10, 3); }),
                 "MultiheadAttention: expected embed_dim divisible by num_heads, got embed_dim 10 and num_heads 3"));
  CHECK(contains(error_of([] { nn::MultiheadAttention(0, 3); }), "expected positive embed_dim and num_heads"));
  nn::MultiheadAttention mha(8, 2);
  const Tensor x = ones({3, 2, 8}), m = ones({5, 2, 8});
  CHECK(contains(error_of([&] { mha.forward(ones({3, 2, 6}), m, m); }),
                 "MultiheadAttention: expected a query [L, N, 8] ([N, L, 8] with batch_first, [L, 8] unbatched), got "
                 "shape [3, 2, 6]"));
  CHECK(contains(error_of([&] { mha.forward(x, ones({5, 2, 4}), m); }), "kdim / vdim are not supported"));
  CHECK(contains(error_of([&] { mha.forward(x, ones({5, 3, 8}), ones({5, 3, 8})); }),
                 "expected key and value with the query's batch size 2"));
  CHECK(contains(error_of([&] { mha.forward(x, m, m, ones({2, 4}, {.dtype = DType::Bool})); }),
                 "MultiheadAttention: expected a key_padding_mask of shape [2, 5] ([N, S]), got shape [2, 4]"));
  CHECK(contains(error_of([&] { mha.forward(x, m, m, Tensor(), true, ones({3, 4}, {.dtype = DType::Bool})); }),
                 "MultiheadAttention: expected an attn_mask of shape [L, S] = [3, 5] or [N * num_heads, L, S] = [4, 3, "
                 "5], got shape [3, 4]"));
}

}  // namespace pacer
