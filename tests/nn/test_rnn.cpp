// LSTM: lstm_cell, the lstm layer function and nn::LSTM against PyTorch goldens
// (tests/golden/make_lstm_golden.py: outputs, final states and every gradient of a
// 2-layer bidirectional LSTM over a padded batch with lengths, and a batch-first one),
// gradcheck of the cell and of a layer with lengths, and the error messages.
#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "nn/lstm.h"
#include "ops/api_rnn.h"
#include "tests/test_util.h"

namespace pacer {

using test::error_of;

namespace {

using Golden = std::map<std::string, Tensor>;

Golden load_golden() {
  Golden g;
  for (auto& [name, t] : nn::load_safetensors(std::string(PACER_GOLDEN_DIR) + "/lstm.safetensors")) g.emplace(name, t);
  return g;
}

const Tensor& at(const Golden& g, const std::string& name) {
  auto it = g.find(name);
  REQUIRE_MESSAGE(it != g.end(), "golden tensor missing: " << name);
  return it->second;
}

void check_close(const std::string& what, const Tensor& got, const Tensor& want, double tol = 1e-10) {
  INFO(what);
  REQUIRE(got.defined());
  REQUIRE(got.sizes() == want.sizes());
  const std::vector<double> a = got.to_vector<double>(), b = want.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  CHECK(worst <= tol);
}

// A leaf f64 copy that requires grad.
Tensor leaf(const Tensor& t) {
  Tensor c = clone(t);
  c.set_requires_grad(true);
  return c;
}

// Uniform values in [-1, 1) as an f64 leaf that requires grad.
Tensor param(const Shape& sizes) { return leaf(rand(sizes, {.dtype = DType::F64}) * 2.0 - 1.0); }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Loads case `prefix` of the golden into `m`, runs forward + backward of
// sum(output * r) + sum(h_n) + 0.5 * sum(c_n) and compares everything with torch.
void check_case(const Golden& g, const std::string& prefix, nn::LSTM& m, bool with_lengths, bool with_state) {
  std::vector<std::pair<std::string, Tensor>> state;
  for (const auto& [name, t] : m.state_dict()) state.emplace_back(name, at(g, prefix + "." + name));
  m.load_state_dict(state);
  Tensor x = leaf(at(g, prefix + ".x"));
  Tensor lengths = with_lengths ? at(g, prefix + ".lengths") : Tensor();
  Tensor h0 = with_state ? leaf(at(g, prefix + ".h0")) : Tensor();
  Tensor c0 = with_state ? leaf(at(g, prefix + ".c0")) : Tensor();
  LstmResult r = m.forward(x, lengths, {h0, c0});
  check_close("output", r.output, at(g, prefix + ".output"));
  check_close("h_n", r.h_n, at(g, prefix + ".h_n"));
  check_close("c_n", r.c_n, at(g, prefix + ".c_n"));
  Tensor loss = sum(r.output * at(g, prefix + ".r")) + sum(r.h_n) + sum(r.c_n) * 0.5;
  loss.backward();
  check_close("grad x", x.grad(), at(g, prefix + ".grad.x"));
  if (with_state) {
    check_close("grad h0", h0.grad(), at(g, prefix + ".grad.h0"));
    check_close("grad c0", c0.grad(), at(g, prefix + ".grad.c0"));
  }
  for (const auto& [name, p] : m.named_parameters()) check_close("grad " + name, p.grad(), at(g, prefix + ".grad." + name));
}

}  // namespace

TEST_CASE("nn::LSTM has torch's parameter names, shapes and init range") {
  nn::LSTM m(5, 4, 2, true, false, true);
  std::vector<std::string> names;
  for (const auto& [name, p] : m.named_parameters()) {
    names.push_back(name);
    for (double v : p.to_vector<double>()) CHECK(std::abs(v) <= 0.5);  // 1 / sqrt(4)
  }
  const std::vector<std::string> want = {
      "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse",
      "bias_ih_l0_reverse", "bias_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
      "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"};
  CHECK(names == want);
  CHECK(m.weights[2].w_ih.sizes() == Shape{16, 8});  // layer 1 reads both directions
  nn::LSTM no_bias(3, 2, 1, false);
  CHECK(no_bias.named_parameters().size() == 2);
}

TEST_CASE("nn::LSTM matches torch: 2-layer bidirectional, lengths [6, 4, 1], given state") {
  const Golden g = load_golden();
  nn::LSTM m(5, 4, 2, true, false, true, {.dtype = DType::F64});
  check_case(g, "packed", m, true, true);
  // Outputs past each sequence's length are exactly zero, as pad_packed_sequence gives.
  LstmResult r = m.forward(at(g, "packed.x"), at(g, "packed.lengths"), {at(g, "packed.h0"), at(g, "packed.c0")});
  CHECK(sum(abs(slice(select(r.output, 1, 1), 0, 4, 6))).item<double>() == 0.0);
  CHECK(sum(abs(slice(select(r.output, 1, 2), 0, 1, 6))).item<double>() == 0.0);
}

TEST_CASE("nn::LSTM matches torch: batch_first, no lengths, zero state") {
  const Golden g = load_golden();
  nn::LSTM m(3, 2, 1, true, true, true, {.dtype = DType::F64});
  check_case(g, "bf", m, false, false);
}

TEST_CASE("lstm accepts lengths in any order (as torch's enforce_sorted=False)") {
  const Golden g = load_golden();
  nn::LSTM m(5, 4, 2, true, false, true, {.dtype = DType::F64});
  std::vector<std::pair<std::string, Tensor>> state;
  for (const auto& [name, t] : m.state_dict()) state.emplace_back(name, at(g, "packed." + name));
  m.load_state_dict(state);
  const Tensor perm = from_vector(std::vector<int64_t>{2, 0, 1}, {3});  // lengths [1, 6, 4]
  LstmResult r = m.forward(index_select(at(g, "packed.x"), 1, perm), index_select(at(g, "packed.lengths"), 0, perm),
                           {index_select(at(g, "packed.h0"), 1, perm), index_select(at(g, "packed.c0"), 1, perm)});
  check_close("output", r.output, index_select(at(g, "packed.output"), 1, perm));
  check_close("h_n", r.h_n, index_select(at(g, "packed.h_n"), 1, perm));
  check_close("c_n", r.c_n, index_select(at(g, "packed.c_n"), 1, perm));
}

TEST_CASE("lstm_cell: gradcheck and one step by hand") {
  const Tensor x = param({3, 5}), h = param({3, 4}), c = param({3, 4});
  const Tensor w_ih = param({16, 5}), w_hh = param({16, 4}), b_ih = param({16}), b_hh = param({16});
  auto f = [](const std::vector<Tensor>& in) {
    auto [h2, c2] = lstm_cell(in[0], in[1], in[2], in[3], in[4], in[5], in[6]);
    return cat({flatten(h2), flatten(c2)});
  };
  auto res = autograd::gradcheck(f, {x, h, c, w_ih, w_hh, b_ih, b_hh});
  CHECK_MESSAGE(res.ok, res.message);

  // Gate order i, f, g, o: with zero weights and biases (0, b, 0, 0) every gate but f is
  // sigmoid(0) = 0.5 / tanh(0) = 0, so c' = sigmoid(b) * c and h' = 0.5 * tanh(c').
  const Tensor cs = full({1, 1}, 0.8, {.dtype = DType::F64});
  const Tensor bias = from_vector(std::vector<double>{0, 2, 0, 0}, {4});
  auto [h1, c1] = lstm_cell(zeros({1, 1}, {.dtype = DType::F64}), zeros({1, 1}, {.dtype = DType::F64}), cs,
                            zeros({4, 1}, {.dtype = DType::F64}), zeros({4, 1}, {.dtype = DType::F64}), bias);
  const double cw = 0.8 / (1 + std::exp(-2.0));
  CHECK(c1.item<double>() == doctest::Approx(cw).epsilon(1e-12));
  CHECK(h1.item<double>() == doctest::Approx(0.5 * std::tanh(cw)).epsilon(1e-12));
}

TEST_CASE("lstm: gradcheck of a 1-layer LSTM with lengths (unsorted) and given state") {
  const Tensor x = param({4, 3, 2}), h0 = param({1, 3, 3}), c0 = param({1, 3, 3});
  const Tensor w_ih = param({12, 2}), w_hh = param({12, 3}), b_ih = param({12}), b_hh = param({12});
  const Tensor lengths = from_vector(std::vector<int64_t>{2, 4, 3}, {3});
  auto f = [&](const std::vector<Tensor>& in) {
    LstmResult r = lstm(in[0], in[1], in[2], {{in[3], in[4], in[5], in[6]}}, 1, false, lengths);
    return cat({flatten(r.output), flatten(r.h_n), flatten(r.c_n)});
  };
  auto res = autograd::gradcheck(f, {x, h0, c0, w_ih, w_hh, b_ih, b_hh});
  CHECK_MESSAGE(res.ok, res.message);

  // The final state of sequence 0 (length 2) is its output at step 1.
  LstmResult r = lstm(x, h0, c0, {{w_ih, w_hh, b_ih, b_hh}}, 1, false, lengths);
  check_close("h_n = last valid output", slice(select(r.h_n, 0, 0), 0, 0, 1),
              slice(select(r.output, 0, 1), 0, 0, 1));
}

TEST_CASE("lstm and nn::LSTM: error messages") {
  nn::LSTM m(5, 4, 1, true, false, true, {.dtype = DType::F64});
  const Tensor x = zeros({6, 3, 5}, {.dtype = DType::F64});
  auto lens = [](std::vector<int64_t> v) { return from_vector(v, {int64_t(v.size())}); };
  CHECK(contains(error_of([&] { m.forward(zeros({6, 3, 7}, {.dtype = DType::F64})); }),
                 "LSTM: expected input [T, B, input_size] with input_size 5, got shape [6, 3, 7]"));
  CHECK(contains(error_of([&] { lstm(zeros({6, 3, 7}, {.dtype = DType::F64}), {}, {}, m.weights, 1, true); }),
                 "lstm: expected an input with input_size 5 (as weight_ih_l0), got shape [6, 3, 7]"));
  CHECK(contains(error_of([&] { lstm(zeros({6, 5}, {.dtype = DType::F64}), {}, {}, m.weights, 1, true); }),
                 "lstm: expected a 3-d input [T, B, input_size], got shape [6, 5]"));
  CHECK(contains(error_of([&] { m.forward(x, lens({6, 7, 1})); }),
                 "lstm: expected lengths in [1, 6] (the input's sequence length), got 7 for sequence 1"));
  CHECK(contains(error_of([&] { m.forward(x, lens({6, 0, 1})); }), "expected lengths in [1, 6]"));
  CHECK(contains(error_of([&] { m.forward(x, lens({6, 1})); }),
                 "lstm: expected int64 lengths of shape [3] (the batch), got int64 of shape [2]"));
  CHECK(contains(error_of([&] { m.forward(x, ones({3})); }), "lstm: expected int64 lengths of shape [3]"));
  CHECK(contains(error_of([&] {
                   m.forward(x, {}, {zeros({1, 3, 4}, {.dtype = DType::F64}), zeros({1, 3, 4}, {.dtype = DType::F64})});
                 }),
                 "lstm: expected h0 of shape [2, 3, 4] (num_layers * directions, batch, hidden_size), got [1, 3, 4]"));
  CHECK(contains(error_of([&] { m.forward(x, {}, {zeros({2, 3, 4}, {.dtype = DType::F64}), Tensor()}); }),
                 "lstm: expected both h0 and c0, or neither"));
  CHECK(contains(error_of([&] { lstm(x, {}, {}, m.weights, 2, true); }),
                 "lstm: expected 4 weight sets (num_layers 2 x 2 directions), got 2"));
  std::vector<LstmWeights> bad = m.weights;
  bad[1].w_hh = zeros({16, 3}, {.dtype = DType::F64});
  CHECK(contains(error_of([&] { lstm(x, {}, {}, bad, 1, true); }),
                 "lstm: expected weight_hh_l0_reverse of shape [16, 4] (4 * hidden_size, hidden_size), got [16, 3]"));
  const Tensor h = zeros({3, 4}, {.dtype = DType::F64});
  CHECK(contains(error_of([&] { lstm_cell(zeros({3, 5}, {.dtype = DType::F64}), h, h, zeros({12, 5}), zeros({16, 4})); }),
                 "lstm_cell: expected weight_ih of shape [16, 5] (4 * hidden_size, input_size), got [12, 5]"));
  CHECK(contains(error_of([&] { lstm_cell(zeros({2, 5}, {.dtype = DType::F64}), h, h, zeros({16, 5}), zeros({16, 4})); }),
                 "lstm_cell: expected h and c of one shape [2, hidden_size] (the input's batch), got h [3, 4] and c [3, 4]"));
  CHECK(contains(error_of([] { nn::LSTM(0, 4); }), "LSTM: expected positive input_size, hidden_size and num_layers"));
}

}  // namespace pacer
