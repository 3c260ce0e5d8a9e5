#pragma once
/// LSTM: torch.nn.LSTM (gate order i, f, g, o), multi-layer, optionally bidirectional and
/// batch-first, over padded batches with optional per-sequence lengths. Parameters have
/// torch's names (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, then the _reverse
/// ones, layer by layer) and init (uniform in +-1/sqrt(hidden_size)).

#include <utility>
#include <vector>

#include "nn/module.h"
#include "ops/api_rnn.h"

namespace pacer::nn {

class LSTM : public Module {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1, bool bias = true, bool batch_first = false,
       bool bidirectional = false, Options options = {});

  /// x [T, B, input_size] ([B, T, input_size] with batch_first); lengths: int64 [B] or
  /// undefined (see pacer::lstm); state: (h0, c0), each [num_layers * D, B, hidden_size],
  /// or undefined for zeros. Returns output [T, B, D * hidden_size] (batch-first when
  /// batch_first) and (h_n, c_n) as LstmResult{output, h_n, c_n}.
  LstmResult forward(const Tensor& x, const Tensor& lengths = Tensor(),
                     const std::pair<Tensor, Tensor>& state = {}) const;

  int64_t input_size, hidden_size, num_layers;
  bool batch_first, bidirectional;
  /// One entry per layer and direction (index layer * D + direction), sharing storage
  /// with the registered parameters.
  std::vector<LstmWeights> weights;
};

}  // namespace pacer::nn
