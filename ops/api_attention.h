#pragma once
/// Scaled dot-product attention (torch 2.x's F.scaled_dot_product_attention), a composite of
/// public ops (matmul, softmax, where), so it is differentiable without kernels of its own.
///
/// Shapes: query [..., L, d], key [..., S, d], value [..., S, dv] -> [..., L, dv]. The batch
/// dims `...` broadcast as matmul's do (e.g. [N, H] against [N, 1]); query, key and value
/// share one floating dtype. The scores are query key^T * scale (scale defaults to
/// 1 / sqrt(d)), masked, then softmaxed over the last dim (S).
///
/// Masks, as torch's SDPA:
/// - attn_mask bool: true = take part in attention (false -> score -inf);
/// - attn_mask floating: added to the scores;
/// - attn_mask broadcasts to [..., L, S] (the batch dims of the result, then L and S);
/// - is_causal masks key j > query i (a top-left aligned lower triangle of [L, S]);
///   is_causal together with an attn_mask is an error, as in torch.
///
/// Half-precision (f16 / bf16) inputs: the matmuls run in the input dtype, the scores are
/// masked and softmaxed in f32 (DESIGN §6), and the result comes back in the input dtype.
///
/// A row whose keys are all masked softmaxes a row of -inf: its weights and its output are
/// NaN, as plain softmax and torch (1.13 / 2.0-2.4 math path, and nn.MultiheadAttention)
/// give. Dropout is not part of this op (apply `dropout` to the weights yourself).

#include <optional>

#include "core/tensor.h"

namespace pacer {

/// softmax(query key^T * scale + mask) over the last dim: the attention weights [..., L, S]
/// (in the query's dtype), with the checks and masks of scaled_dot_product_attention.
Tensor scaled_dot_product_attention_weights(const Tensor& query, const Tensor& key, const Tensor& attn_mask = Tensor(),
                                            bool is_causal = false, std::optional<double> scale = {});

/// scaled_dot_product_attention_weights(query, key, attn_mask, is_causal, scale) @ value:
/// [..., L, dv].
Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask = Tensor(), bool is_causal = false,
                                    std::optional<double> scale = {});

}  // namespace pacer
