#pragma once
/// Recurrent layers as composites of public ops (so they are differentiable through them):
/// torch.nn.LSTMCell and torch.nn.LSTM semantics, gate order (i, f, g, o):
///   gates = x W_ih^T + b_ih + h W_hh^T + b_hh,  i, f, o = sigmoid(.), g = tanh(.)
///   c' = f * c + i * g,  h' = o * tanh(c').

#include <utility>
#include <vector>

#include "core/tensor.h"

namespace pacer {

/// One LSTM step: x [B, in], h and c [B, H], w_ih [4H, in], w_hh [4H, H], b_ih and b_hh
/// [4H] or undefined. Returns (h', c'), each [B, H].
std::pair<Tensor, Tensor> lstm_cell(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_ih,
                                    const Tensor& w_hh, const Tensor& b_ih = Tensor(), const Tensor& b_hh = Tensor());

/// The weights of one layer and direction, torch's weight_ih_l{k}[_reverse] [4H, in],
/// weight_hh_l{k}[_reverse] [4H, H], bias_ih / bias_hh [4H] (both undefined: no bias).
struct LstmWeights {
  Tensor w_ih, w_hh, b_ih, b_hh;
};

/// What lstm returns: output [T, B, D * H] ([B, T, D * H] with batch_first) and the final
/// states h_n, c_n [num_layers * D, B, H] (D = 2 when bidirectional, else 1).
struct LstmResult {
  Tensor output, h_n, c_n;
};

/// A multi-layer (optionally bidirectional) LSTM over a padded batch, as torch.nn.LSTM.
/// x: [T, B, in] ([B, T, in] with batch_first). weights: one entry per layer and direction,
/// at index layer * D + direction (direction 1 = reverse). h0, c0: [num_layers * D, B, H],
/// or undefined for zeros. lengths: undefined (every sequence has length T) or int64 [B]
/// with 1 <= lengths[b] <= T, in any order (torch's enforce_sorted=False). With lengths the
/// result is torch's pack_padded_sequence + LSTM + pad_packed_sequence(total_length=T):
/// outputs past a sequence's length are zero, the reverse direction starts at each
/// sequence's last valid step, and h_n / c_n are taken at the last valid step.
/// The input projections of all timesteps are one matrix product per layer and direction.
LstmResult lstm(const Tensor& x, const Tensor& h0, const Tensor& c0, const std::vector<LstmWeights>& weights,
                int64_t num_layers, bool bidirectional, const Tensor& lengths = Tensor(), bool batch_first = false);

}  // namespace pacer
