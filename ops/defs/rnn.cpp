// LSTM cell and layer as composites of public ops (linear, mm, sigmoid, tanh, where,
// stack, cat): differentiable through those ops, with no kernels or backward of their own.
#include <string>

#include "ops/api.h"
#include "ops/api_rnn.h"

namespace pacer {

namespace {

std::string shape_of(const Tensor& t) { return t.defined() ? fmt::format("{}", t.sizes()) : "undefined"; }

// w_ih [4H, in], w_hh [4H, H], biases [4H] or undefined; `suffix` names the layer and
// direction in torch's parameter names ("_l1_reverse"; empty for a cell).
void check_weights(const char* fn, const std::string& suffix, const LstmWeights& w, int64_t in, int64_t H) {
  PACER_CHECK(w.w_ih.defined() && w.w_ih.sizes() == Shape({4 * H, in}),
              "{}: expected weight_ih{} of shape [{}, {}] (4 * hidden_size, input_size), got {}", fn, suffix, 4 * H, in,
              shape_of(w.w_ih));
  PACER_CHECK(w.w_hh.defined() && w.w_hh.sizes() == Shape({4 * H, H}),
              "{}: expected weight_hh{} of shape [{}, {}] (4 * hidden_size, hidden_size), got {}", fn, suffix, 4 * H,
              H, shape_of(w.w_hh));
  PACER_CHECK(!w.b_ih.defined() || w.b_ih.sizes() == Shape({4 * H}), "{}: expected bias_ih{} of shape [{}], got {}",
              fn, suffix, 4 * H, shape_of(w.b_ih));
  PACER_CHECK(!w.b_hh.defined() || w.b_hh.sizes() == Shape({4 * H}), "{}: expected bias_hh{} of shape [{}], got {}",
              fn, suffix, 4 * H, shape_of(w.b_hh));
}

// x W_ih^T + b_ih + b_hh for any leading dims: the part of the gates that does not depend
// on the state, so a layer computes it for all timesteps in one matrix product.
Tensor input_gates(const Tensor& x, const LstmWeights& w) {
  Tensor g = linear(x, w.w_ih, w.b_ih);
  return w.b_hh.defined() ? g + w.b_hh : g;
}

// One step from the input gates xg [B, 4H]; w_hh_t is W_hh^T [H, 4H].
std::pair<Tensor, Tensor> step(const Tensor& xg, const Tensor& h, const Tensor& c, const Tensor& w_hh_t) {
  std::vector<Tensor> g = chunk(xg + mm(h, w_hh_t), 4, 1);
  Tensor i = sigmoid(g[0]), f = sigmoid(g[1]), cand = tanh(g[2]), o = sigmoid(g[3]);
  Tensor c_next = f * c + i * cand;
  return {o * tanh(c_next), c_next};
}

struct DirectionResult {
  Tensor out, h, c;  // out [T, B, H]; h and c [B, H], the final states
};

// One layer in one direction over x [T, B, in]. `valid[t]` ([B, 1] bool, empty without
// lengths) says which sequences are still running at step t: elsewhere the state is held
// and the output is zero. Held states make the forward direction end at each sequence's
// last valid step, and the reverse direction start there from the initial state.
DirectionResult run_direction(const Tensor& x, Tensor h, Tensor c, const LstmWeights& w, bool reverse,
                              const std::vector<Tensor>& valid) {
  const int64_t T = x.size(0);
  const Tensor xg = input_gates(x, w);  // [T, B, 4H]
  const Tensor w_hh_t = t(w.w_hh);
  std::vector<Tensor> outs(static_cast<size_t>(T));
  for (int64_t k = 0; k < T; ++k) {
    const int64_t s = reverse ? T - 1 - k : k;
    auto [h_next, c_next] = step(select(xg, 0, s), h, c, w_hh_t);
    if (valid.empty()) {
      h = h_next;
      c = c_next;
      outs[size_t(s)] = h_next;
    } else {
      const Tensor& m = valid[size_t(s)];
      h = where(m, h_next, h);
      c = where(m, c_next, c);
      outs[size_t(s)] = where(m, h_next, wrap(0.0));
    }
  }
  return {stack(outs, 0), h, c};
}

}  // namespace

std::pair<Tensor, Tensor> lstm_cell(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_ih,
                                    const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  PACER_CHECK(x.dim() == 2, "lstm_cell: expected an input [B, input_size], got shape {}", x.sizes());
  PACER_CHECK(is_floating(x.dtype()), "lstm_cell: expected a floating input, got {}", x.dtype());
  PACER_CHECK(h.defined() && c.defined() && h.dim() == 2 && h.size(0) == x.size(0) && c.sizes() == h.sizes(),
              "lstm_cell: expected h and c of one shape [{}, hidden_size] (the input's batch), got h {} and c {}",
              x.size(0), shape_of(h), shape_of(c));
  const LstmWeights w{w_ih, w_hh, b_ih, b_hh};
  check_weights("lstm_cell", "", w, x.size(1), h.size(1));
  return step(input_gates(x, w), h, c, t(w_hh));
}

LstmResult lstm(const Tensor& x, const Tensor& h0, const Tensor& c0, const std::vector<LstmWeights>& weights,
                int64_t num_layers, bool bidirectional, const Tensor& lengths, bool batch_first) {
  const int64_t D = bidirectional ? 2 : 1;
  PACER_CHECK(num_layers >= 1, "lstm: expected num_layers >= 1, got {}", num_layers);
  PACER_CHECK(int64_t(weights.size()) == num_layers * D,
              "lstm: expected {} weight sets (num_layers {} x {} directions), got {}", num_layers * D, num_layers, D,
              weights.size());
  PACER_CHECK(x.dim() == 3, "lstm: expected a 3-d input {}, got shape {}",
              batch_first ? "[B, T, input_size]" : "[T, B, input_size]", x.sizes());
  PACER_CHECK(is_floating(x.dtype()), "lstm: expected a floating input, got {}", x.dtype());
  const Tensor& w0 = weights[0].w_hh;
  PACER_CHECK(w0.defined() && w0.dim() == 2, "lstm: expected weight_hh_l0 [4 * hidden_size, hidden_size], got {}",
              shape_of(w0));
  const int64_t H = w0.size(1);
  const Tensor& w_in = weights[0].w_ih;
  PACER_CHECK(w_in.defined() && w_in.dim() == 2,
              "lstm: expected weight_ih_l0 [4 * hidden_size, input_size], got {}", shape_of(w_in));
  PACER_CHECK(x.size(2) == w_in.size(1), "lstm: expected an input with input_size {} (as weight_ih_l0), got shape {}",
              w_in.size(1), x.sizes());
  for (int64_t l = 0; l < num_layers; ++l)
    for (int64_t d = 0; d < D; ++d)
      check_weights("lstm", fmt::format("_l{}{}", l, d ? "_reverse" : ""), weights[size_t(l * D + d)],
                    l == 0 ? x.size(2) : D * H, H);

  const Tensor seq = batch_first ? transpose(x, 0, 1) : x;  // [T, B, in]
  const int64_t T = seq.size(0), B = seq.size(1);
  PACER_CHECK(T >= 1 && B >= 1, "lstm: expected at least one timestep and one sequence, got input shape {}",
              x.sizes());
  const Shape state_shape = {num_layers * D, B, H};
  PACER_CHECK(h0.defined() == c0.defined(), "lstm: expected both h0 and c0, or neither, got h0 {} and c0 {}",
              shape_of(h0), shape_of(c0));
  for (const auto& [s, name] : {std::pair{&h0, "h0"}, std::pair{&c0, "c0"}})
    PACER_CHECK(!s->defined() || s->sizes() == state_shape,
                "lstm: expected {} of shape {} (num_layers * directions, batch, hidden_size), got {}", name,
                state_shape, shape_of(*s));

  std::vector<Tensor> valid;
  if (lengths.defined()) {
    PACER_CHECK(lengths.dtype() == DType::I64 && lengths.dim() == 1 && lengths.size(0) == B,
                "lstm: expected int64 lengths of shape [{}] (the batch), got {} of shape {}", B, lengths.dtype(),
                lengths.sizes());
    const std::vector<int64_t> len = lengths.to(kCPU).to_vector<int64_t>();
    for (size_t b = 0; b < len.size(); ++b)
      PACER_CHECK(len[b] >= 1 && len[b] <= T,
                  "lstm: expected lengths in [1, {}] (the input's sequence length), got {} for sequence {}", T, len[b],
                  b);
    const Tensor len_dev = lengths.to(x.device());
    for (int64_t s = 0; s < T; ++s) valid.push_back(unsqueeze(gt(len_dev, wrap(s)), 1));
  }

  const Options state_options{.dtype = x.dtype(), .device = x.device()};
  Tensor layer_in = seq;
  std::vector<Tensor> hs, cs;
  for (int64_t l = 0; l < num_layers; ++l) {
    std::vector<Tensor> outs;
    for (int64_t d = 0; d < D; ++d) {
      const int64_t k = l * D + d;
      Tensor h = h0.defined() ? select(h0, 0, k) : zeros({B, H}, state_options);
      Tensor c = c0.defined() ? select(c0, 0, k) : zeros({B, H}, state_options);
      DirectionResult r = run_direction(layer_in, h, c, weights[size_t(k)], d == 1, valid);
      outs.push_back(r.out);
      hs.push_back(r.h);
      cs.push_back(r.c);
    }
    layer_in = D == 1 ? outs[0] : cat(outs, 2);
  }
  Tensor out = batch_first ? contiguous(transpose(layer_in, 0, 1)) : layer_in;
  return {out, stack(hs, 0), stack(cs, 0)};
}

}  // namespace pacer
