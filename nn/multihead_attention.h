#pragma once
/// MultiheadAttention: torch.nn.MultiheadAttention with kdim = vdim = embed_dim.
///
/// Parameters (torch's state_dict names and init): in_proj_weight [3E, E] (xavier-uniform,
/// the q, k, v projections stacked), in_proj_bias [3E] (zeros), and a Linear child
/// "out_proj" (weight [E, E] with Linear's default init, bias zeros). With bias = false
/// neither bias exists.
///
/// Not implemented (torch options): dropout on the attention weights (this layer has no
/// dropout; its weights are exact softmax probabilities in training too), add_bias_kv,
/// add_zero_attn, kdim / vdim different from embed_dim, and the is_causal hint.

#include <utility>

#include "nn/linear.h"
#include "nn/module.h"

namespace pacer::nn {

class MultiheadAttention : public Module {
 public:
  /// embed_dim must be divisible by num_heads (head dim embed_dim / num_heads).
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, bool bias = true, bool batch_first = false,
                     Options options = {});

  /// As torch's forward (same argument order). Shapes with batch_first = false:
  /// query [L, N, E], key [S, N, E], value [S, N, E] -> output [L, N, E]; batch_first = true
  /// swaps the first two dims of each; unbatched inputs [L, E], [S, E], [S, E] -> [L, E].
  /// - key_padding_mask [N, S] (or [S] unbatched): bool, true = ignore that key (as torch),
  ///   or floating, added to the scores;
  /// - attn_mask [L, S] or [N * num_heads, L, S]: bool, true = NOT allowed to attend (as
  ///   torch's MultiheadAttention, the opposite of scaled_dot_product_attention's bool
  ///   mask), or floating, added to the scores;
  /// - need_weights: also return the attention weights, averaged over heads [N, L, S] when
  ///   average_attn_weights, else per head [N, num_heads, L, S] (unbatched: no N). Without
  ///   need_weights the second tensor is undefined.
  /// A query whose keys are all masked gets NaN weights and output, as torch.
  std::pair<Tensor, Tensor> forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& key_padding_mask = Tensor(), bool need_weights = true,
                                    const Tensor& attn_mask = Tensor(), bool average_attn_weights = true) const;

  int64_t embed_dim, num_heads, head_dim;
  bool batch_first;
  Tensor in_proj_weight;  // [3E, E]
  Tensor in_proj_bias;    // [3E] or undefined
  std::shared_ptr<Linear> out_proj;
};

}  // namespace pacer::nn
