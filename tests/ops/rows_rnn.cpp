// Op-table rows of the LSTM composites (lstm_cell, lstm) with naive f64 references. They
// are composites, so `covers` names the registered ops they run through.
#include <cmath>

#include <doctest/doctest.h>

#include "ops/api_rnn.h"
#include "tests/ops/op_table.h"

namespace pacer::test {


namespace {

double sigmoid_ref(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// Weights of one direction as flat arrays: w_ih [4H, in], w_hh [4H, H], b_ih, b_hh [4H].
struct RefWeights {
  const ref::Arr &w_ih, &w_hh, &b_ih, &b_hh;
};

// One LSTM step of one sequence, gate order (i, f, g, o): x [in]; h, c [H] updated in place.
void cell_ref(const double* x, std::vector<double>& h, std::vector<double>& c, const RefWeights& w) {
  const size_t H = h.size(), in = size_t(w.w_ih.sizes[1]);
  std::vector<double> g(4 * H);
  for (size_t r = 0; r < 4 * H; ++r) {
    double acc = w.b_ih.v[r] + w.b_hh.v[r];
    for (size_t k = 0; k < in; ++k) acc += w.w_ih.v[r * in + k] * x[k];
    for (size_t k = 0; k < H; ++k) acc += w.w_hh.v[r * H + k] * h[k];
    g[r] = acc;
  }
  for (size_t j = 0; j < H; ++j) {
    c[j] = sigmoid_ref(g[H + j]) * c[j] + sigmoid_ref(g[j]) * std::tanh(g[2 * H + j]);
    h[j] = sigmoid_ref(g[3 * H + j]) * std::tanh(c[j]);
  }
}

std::vector<double> row_of(const ref::Arr& a, size_t row, size_t width) {
  return {a.v.begin() + long(row * width), a.v.begin() + long((row + 1) * width)};
}

ErrorCase bad_weight_error() {
  return {[] {
            Tensor h = zeros({3, 4});
            lstm_cell(zeros({3, 5}), h, h, zeros({12, 5}), zeros({16, 4}));
          },
          "lstm_cell: expected weight_ih of shape [16, 5] (4 * hidden_size, input_size), got [12, 5]"};
}

}  // namespace

std::vector<OpCase> rnn_rows() {
  std::vector<OpCase> rows;
  {
    // x [3, 5], h and c [3, 4]: output cat(h'.flatten(), c'.flatten()).
    OpCase c;
    c.name = "lstm_cell";
    c.covers = {"linear", "mm", "sigmoid", "tanh", "mul", "add"};
    c.inputs = [] {
      return std::vector<Tensor>{uniform({3, 5}, -1, 1, 91),  uniform({3, 4}, -1, 1, 92), uniform({3, 4}, -1, 1, 93),
                                 uniform({16, 5}, -1, 1, 94), uniform({16, 4}, -1, 1, 95), uniform({16}, -1, 1, 96),
                                 uniform({16}, -1, 1, 97)};
    };
    c.run = [](const std::vector<Tensor>& in) {
      auto [h, cc] = lstm_cell(in[0], in[1], in[2], in[3], in[4], in[5], in[6]);
      return cat({flatten(h), flatten(cc)});
    };
    c.reference = [](const std::vector<ref::Arr>& in) {
      const RefWeights w{in[3], in[4], in[5], in[6]};
      std::vector<double> hs, cs;
      for (size_t b = 0; b < 3; ++b) {
        std::vector<double> h = row_of(in[1], b, 4), cc = row_of(in[2], b, 4);
        cell_ref(&in[0].v[b * 5], h, cc, w);
        hs.insert(hs.end(), h.begin(), h.end());
        cs.insert(cs.end(), cc.begin(), cc.end());
      }
      hs.insert(hs.end(), cs.begin(), cs.end());
      return ref::Arr{{24}, hs};
    };
    c.errors = {bad_weight_error(),
                {[] { lstm_cell(zeros({5}), zeros({3, 4}), zeros({3, 4}), zeros({16, 5}), zeros({16, 4})); },
                 "lstm_cell: expected an input [B, input_size], got shape [5]"}};
    rows.push_back(c);
  }
  {
    // 1-layer bidirectional, batch_first: x [B=3, T=4, 2], lengths [4, 2, 3] (unsorted),
    // h0 and c0 [2, 3, 3]; output cat(output, h_n, c_n) flattened.
    OpCase c;
    c.name = "lstm_bidirectional_lengths";
    // On CUDA (f32 / f16) pacer::lstm runs cuDNN's LSTM: the parity test covers those ops.
    c.covers = {"linear", "mm", "sigmoid", "tanh", "where", "cat", "cudnn_lstm", "cudnn_lstm_backward"};
    c.inputs = [] {
      std::vector<Tensor> in = {uniform({3, 4, 2}, -1, 1, 101), idx({4, 2, 3}, {3}), uniform({2, 3, 3}, -1, 1, 102),
                                uniform({2, 3, 3}, -1, 1, 103)};
      for (uint64_t d = 0; d < 2; ++d) {
        in.push_back(uniform({12, 2}, -1, 1, 104 + 4 * d));
        in.push_back(uniform({12, 3}, -1, 1, 105 + 4 * d));
        in.push_back(uniform({12}, -1, 1, 106 + 4 * d));
        in.push_back(uniform({12}, -1, 1, 107 + 4 * d));
      }
      return in;
    };
    c.run = [](const std::vector<Tensor>& in) {
      LstmResult r = lstm(in[0], in[2], in[3], {{in[4], in[5], in[6], in[7]}, {in[8], in[9], in[10], in[11]}}, 1, true,
                          in[1], true);
      return cat({flatten(r.output), flatten(r.h_n), flatten(r.c_n)});
    };
    c.reference = [](const std::vector<ref::Arr>& in) {
      const size_t B = 3, T = 4, I = 2, H = 3;
      std::vector<double> out(B * T * 2 * H, 0.0), hn(2 * B * H), cn(2 * B * H);
      for (size_t d = 0; d < 2; ++d) {
        const RefWeights w{in[4 + 4 * d], in[5 + 4 * d], in[6 + 4 * d], in[7 + 4 * d]};
        for (size_t b = 0; b < B; ++b) {
          const size_t L = size_t(in[1].v[b]);
          std::vector<double> h = row_of(in[2], d * B + b, H), cc = row_of(in[3], d * B + b, H);
          for (size_t k = 0; k < L; ++k) {
            const size_t s = d == 0 ? k : L - 1 - k;
            cell_ref(&in[0].v[(b * T + s) * I], h, cc, w);
            for (size_t j = 0; j < H; ++j) out[(b * T + s) * 2 * H + d * H + j] = h[j];
          }
          for (size_t j = 0; j < H; ++j) {
            hn[(d * B + b) * H + j] = h[j];
            cn[(d * B + b) * H + j] = cc[j];
          }
        }
      }
      out.insert(out.end(), hn.begin(), hn.end());
      out.insert(out.end(), cn.begin(), cn.end());
      return ref::Arr{{int64_t(out.size())}, out};
    };
    c.tol_f16 = 3e-2;
    c.tol_bf16 = 1e-1;
    c.errors = {bad_weight_error(),
                {[] { lstm(zeros({4, 3, 2}), {}, {}, {{zeros({12, 2}), zeros({12, 3}), {}, {}}}, 1, false, idx({4, 5, 1}, {3})); },
                 "lstm: expected lengths in [1, 4] (the input's sequence length), got 5 for sequence 1"}};
    rows.push_back(c);
  }
  return rows;
}

}  // namespace pacer::test
