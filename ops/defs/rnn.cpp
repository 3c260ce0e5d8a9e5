// LSTM cell and layer as composites of public ops (linear, mm, sigmoid, tanh, where,
// stack, cat): differentiable through those ops, with no kernels or backward of their own.
// On CUDA, lstm() routes to the primitive cudnn_lstm (cuDNN's RNN API, kernels in
// ops/cuda/rnn.cpp) for the dtypes cuDNN supports; everything else takes the composite.
#include <string>

#include "autograd/grad_mode.h"
#include "ops/api_rnn.h"
#include "ops/defs/common.h"

namespace pacer {

namespace ops {

namespace {

// Attributes of cudnn_lstm and cudnn_lstm_backward: num_layers, bidirectional, batch_first,
// has_bias (each weight set has b_ih and b_hh, or none has), lengths (Shape: empty for full
// length, else one length per sequence in [1, T]). cudnn_lstm's infer adds `training`
// (whether the call is recorded for backward: cuDNN then fills a reserve space).
struct LstmAttrs {
  int64_t L = 1, D = 1;
  bool batch_first = false, bias = true;
  int64_t per_set() const { return bias ? 4 : 2; }
};

LstmAttrs read_lstm_attrs(const Attrs& a) {
  LstmAttrs r;
  r.L = a.i("num_layers");
  r.D = a.b("bidirectional") ? 2 : 1;
  r.batch_first = a.b("batch_first");
  r.bias = a.b("has_bias");
  PACER_CHECK(r.L >= 1, "expected num_layers >= 1, got {}", r.L);
  return r;
}

// The shapes of the weight inputs (and of their gradients), in input order.
std::vector<Shape> lstm_weight_shapes(const LstmAttrs& a, int64_t in, int64_t H) {
  std::vector<Shape> s;
  for (int64_t l = 0; l < a.L; ++l)
    for (int64_t d = 0; d < a.D; ++d) {
      s.push_back({4 * H, l == 0 ? in : a.D * H});
      s.push_back({4 * H, H});
      if (a.bias) {
        s.push_back({4 * H});
        s.push_back({4 * H});
      }
    }
  return s;
}

}  // namespace

// (x, h0, c0, output, reserve, weight space, d_output, d_h_n, d_c_n) -> (dx, dh0, dc0, one
// gradient per weight input of cudnn_lstm). Attrs as cudnn_lstm. First derivatives only.
// CUDA only (cuDNN): no CPU kernel; pacer::lstm never calls it elsewhere.
PACER_OP(cudnn_lstm_backward) {
  OpDef d;
  d.name = "cudnn_lstm_backward";
  d.tags = kDeviceSpecific;  // CUDA only (cuDNN)
  d.infer = [](OpCall& c) {
    PACER_CHECK(c.inputs.size() == 9, "expected 9 inputs, got {}", c.inputs.size());
    for (size_t i = 0; i < 9; ++i) PACER_CHECK(c.in(i).defined(), "input {} is undefined", i);
    const Tensor& x = c.in(0);
    check_floating(x, "input");
    PACER_CHECK(x.dim() == 3 && c.in(1).dim() == 3, "expected a 3-d input and state, got {} and {}", x.sizes(),
                c.in(1).sizes());
    const LstmAttrs a = read_lstm_attrs(c.attrs);
    for (size_t i : {size_t(1), size_t(2), size_t(3), size_t(6), size_t(7), size_t(8)}) cast_inputs(c, x.dtype(), i, 1);
    const int64_t H = c.in(1).size(2);
    c.output_meta = {{x.sizes(), x.dtype(), c.device}, {c.in(1).sizes(), x.dtype(), c.device},
                     {c.in(2).sizes(), x.dtype(), c.device}};
    for (const Shape& s : lstm_weight_shapes(a, x.size(2), H)) c.output_meta.push_back({s, x.dtype(), c.device});
  };
  d.not_differentiable = true;
  return d;
}

// Multi-layer, optionally bidirectional LSTM through cuDNN (torch.nn.LSTM semantics, as
// pacer::lstm). Inputs: x [T, B, in] ([B, T, in] with batch_first), h0 and c0
// [num_layers * D, B, H] (defined: pass zeros for none), then per layer and direction
// (index layer * D + direction) w_ih [4H, in_l], w_hh [4H, H] and, with has_bias, b_ih and
// b_hh [4H]. Outputs: output [T, B, D * H] ([B, T, D * H]), h_n, c_n, and two U8 buffers
// saved for backward: cuDNN's reserve space (empty when not recording) and the packed
// weight space. Their sizes come from cuDNN, so the kernel allocates every output
// (kDynamicShape). CUDA only (cuDNN): no CPU kernel; pacer::lstm routes to it only on CUDA.
PACER_OP(cudnn_lstm) {
  OpDef d;
  d.name = "cudnn_lstm";
  d.tags = kDynamicShape | kDeviceSpecific;  // CUDA only (cuDNN)
  d.amp = AmpPolicy::Lower;
  d.infer = [](OpCall& c) {
    const Tensor& x = c.in(0);
    check_floating(x, "input");
    const LstmAttrs a = read_lstm_attrs(c.attrs);
    PACER_CHECK(x.dim() == 3, "expected a 3-d input {}, got shape {}",
                a.batch_first ? "[B, T, input_size]" : "[T, B, input_size]", x.sizes());
    const int64_t T = x.size(a.batch_first ? 1 : 0), B = x.size(a.batch_first ? 0 : 1), in = x.size(2);
    PACER_CHECK(T >= 1 && B >= 1 && in >= 1, "expected a non-empty input, got shape {}", x.sizes());
    const size_t n_weights = size_t(a.L * a.D * a.per_set());
    PACER_CHECK(c.inputs.size() == 3 + n_weights, "expected {} inputs (x, h0, c0 and {} weights), got {}",
                3 + n_weights, n_weights, c.inputs.size());
    for (size_t i = 1; i < c.inputs.size(); ++i) PACER_CHECK(c.in(i).defined(), "input {} is undefined", i);
    const Tensor& h0 = c.in(1);
    PACER_CHECK(h0.dim() == 3 && h0.size(0) == a.L * a.D && h0.size(1) == B && h0.size(2) >= 1,
                "expected h0 of shape [{}, {}, hidden_size], got {}", a.L * a.D, B, h0.sizes());
    const int64_t H = h0.size(2);
    PACER_CHECK(c.in(2).sizes() == h0.sizes(), "expected c0 of shape {} (as h0), got {}", h0.sizes(),
                c.in(2).sizes());
    const std::vector<Shape> ws = lstm_weight_shapes(a, in, H);
    for (size_t i = 0; i < ws.size(); ++i)
      PACER_CHECK(c.in(3 + i).sizes() == ws[i], "expected weight input {} of shape {}, got {}", 3 + i, ws[i],
                  c.in(3 + i).sizes());
    const Shape& lengths = c.attrs.shape("lengths");
    PACER_CHECK(lengths.empty() || int64_t(lengths.size()) == B, "expected {} lengths (the batch), got {}", B,
                lengths.size());
    for (size_t b = 0; b < lengths.size(); ++b)
      PACER_CHECK(lengths[b] >= 1 && lengths[b] <= T, "expected lengths in [1, {}], got {} for sequence {}", T,
                  lengths[b], b);
    cast_inputs(c, x.dtype(), 1);
    // Training mode (cuDNN keeps a reserve space for backward) when this call will be
    // recorded. Decided here: the dispatcher runs kernels with grad mode off.
    bool training = false;
    if (autograd::grad_enabled())
      for (const Tensor& t : c.inputs) training = training || (t.defined() && t.requires_grad());
    c.attrs.set("training", training);
    const Shape out = a.batch_first ? Shape{B, T, a.D * H} : Shape{T, B, a.D * H};
    c.output_meta = {{out, x.dtype(), c.device},
                     {h0.sizes(), x.dtype(), c.device},
                     {h0.sizes(), x.dtype(), c.device},
                     {{0}, DType::U8, c.device},
                     {{0}, DType::U8, c.device}};
  };
  d.backward = [](const GradCall& g) -> std::vector<Tensor> {
    // Saved: inputs x, h0, c0 (always defined, so their indices hold); outputs output,
    // reserve space and weight space.
    std::vector<Tensor> in = {g.inputs[0],  g.inputs[1],  g.inputs[2],           g.outputs[0],
                              g.outputs[3], g.outputs[4], contiguous(g.grad(0)), contiguous(g.grad(1)),
                              contiguous(g.grad(2))};
    std::vector<Tensor> r = call(op_cudnn_lstm_backward(), std::move(in), g.attrs);
    std::vector<Tensor> out(g.input_meta.size());
    for (size_t i = 0; i < out.size() && i < r.size(); ++i)
      if (g.needs(i)) out[i] = r[i];
    return out;
  };
  d.save_inputs = 0b111;
  d.save_outputs = 0b11001;
  return d;
}

}  // namespace ops

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

// Whether lstm() runs through cudnn_lstm: a CUDA input of a dtype cuDNN's RNN supports
// (f16, f32; f64 and bf16 take the composite), a CUDA kernel for it in this build, one
// dtype and device for every tensor, biases in every weight set or in none, and sizes
// within cuDNN's int32 dimensions.
constexpr bool kCudnnLstmBf16 = false;  // cuDNN 9.19's RNN API documents half, float and double data

bool use_cudnn(const Tensor& x, const Tensor& h0, const Tensor& c0, const std::vector<LstmWeights>& weights,
               int64_t H, int64_t D) {
  const DType dt = x.dtype();
  const bool supported = dt == DType::F16 || dt == DType::F32 || (kCudnnLstmBf16 && dt == DType::BF16);
  if (!x.device().is_cuda() || !supported) return false;
  if (ops::op_cudnn_lstm().kernels[int(DeviceType::CUDA)] == nullptr) return false;
  const auto same = [&](const Tensor& t) { return t.dtype() == dt && t.device() == x.device(); };
  if (h0.defined() && !(same(h0) && same(c0))) return false;
  const bool bias = weights[0].b_ih.defined();
  for (const LstmWeights& w : weights) {
    if (!same(w.w_ih) || !same(w.w_hh)) return false;
    if (w.b_ih.defined() != bias || w.b_hh.defined() != bias) return false;
    if (bias && !(same(w.b_ih) && same(w.b_hh))) return false;
  }
  constexpr int64_t kMax = int64_t(1) << 31;
  const int64_t T = x.size(0), B = x.size(1);  // either order: only products matter
  return x.numel() < kMax && T * B * D * H < kMax && int64_t(weights.size()) * B * H < kMax &&
         4 * H * (D * H) < kMax;
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

  std::vector<int64_t> len;
  if (lengths.defined()) {
    PACER_CHECK(lengths.dtype() == DType::I64 && lengths.dim() == 1 && lengths.size(0) == B,
                "lstm: expected int64 lengths of shape [{}] (the batch), got {} of shape {}", B, lengths.dtype(),
                lengths.sizes());
    len = lengths.to(kCPU).to_vector<int64_t>();
    for (size_t b = 0; b < len.size(); ++b)
      PACER_CHECK(len[b] >= 1 && len[b] <= T,
                  "lstm: expected lengths in [1, {}] (the input's sequence length), got {} for sequence {}", T, len[b],
                  b);
  }

  const Options state_options{.dtype = x.dtype(), .device = x.device()};
  if (use_cudnn(x, h0, c0, weights, H, D)) {
    const bool bias = weights[0].b_ih.defined();
    std::vector<Tensor> in = {x, h0.defined() ? h0 : zeros(state_shape, state_options),
                              c0.defined() ? c0 : zeros(state_shape, state_options)};
    for (const LstmWeights& w : weights) {
      in.push_back(w.w_ih);
      in.push_back(w.w_hh);
      if (bias) {
        in.push_back(w.b_ih);
        in.push_back(w.b_hh);
      }
    }
    const ops::Attrs attrs{{"num_layers", num_layers},
                           {"bidirectional", bidirectional},
                           {"batch_first", batch_first},
                           {"has_bias", bias},
                           {"lengths", Shape(len)}};
    std::vector<Tensor> r = ops::call(ops::op_cudnn_lstm(), std::move(in), attrs);
    return {r[0], r[1], r[2]};
  }

  std::vector<Tensor> valid;
  if (lengths.defined()) {
    const Tensor len_dev = lengths.to(x.device());
    for (int64_t s = 0; s < T; ++s) valid.push_back(unsqueeze(gt(len_dev, wrap(s)), 1));
  }
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
