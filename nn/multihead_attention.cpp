#include "nn/multihead_attention.h"

#include <cmath>
#include <limits>

#include "autograd/grad_mode.h"
#include "nn/init.h"
#include "ops/api.h"
#include "ops/api_attention.h"

namespace pacer::nn {

namespace {

constexpr const char* kName = "MultiheadAttention";

// A bool "keep" mask as an additive one (0 where kept, -inf where not) of dtype `dtype`.
Tensor additive(const Tensor& keep, DType dtype, Device device) {
  return where(keep, zeros({}, {.dtype = dtype, .device = device}),
               full({}, -std::numeric_limits<double>::infinity(), {.dtype = dtype, .device = device}));
}

}  // namespace

MultiheadAttention::MultiheadAttention(int64_t e, int64_t h, bool bias, bool bf, Options o)
    : embed_dim(e), num_heads(h), head_dim(0), batch_first(bf) {
  PACER_CHECK(e > 0 && h > 0, "{}: expected positive embed_dim and num_heads, got embed_dim {} and num_heads {}", kName,
              e, h);
  PACER_CHECK(e % h == 0, "{}: expected embed_dim divisible by num_heads, got embed_dim {} and num_heads {}", kName, e,
              h);
  head_dim = e / h;
  // xavier_uniform_ of a [3E, E] matrix: fan_in E, fan_out 3E.
  const double bound = std::sqrt(6.0 / double(e + 3 * e));
  in_proj_weight = register_parameter("in_proj_weight", init::uniform({3 * e, e}, -bound, bound, o));
  Options plain = o;
  plain.requires_grad = false;
  if (bias) in_proj_bias = register_parameter("in_proj_bias", zeros({3 * e}, plain));
  out_proj = register_module("out_proj", std::make_shared<Linear>(e, e, bias, o));
  if (bias) {
    NoGradGuard no_grad;
    zero_(out_proj->bias);
  }
}

std::pair<Tensor, Tensor> MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                                      const Tensor& key_padding_mask, bool need_weights,
                                                      const Tensor& attn_mask, bool average_attn_weights) const {
  const int64_t E = embed_dim, H = num_heads;
  PACER_CHECK(query.defined() && key.defined() && value.defined(), "{}: expected defined query, key and value", kName);
  PACER_CHECK((query.dim() == 3 || query.dim() == 2) && query.size(-1) == E,
              "{}: expected a query [L, N, {}] ([N, L, {}] with batch_first, [L, {}] unbatched), got shape {}", kName,
              E, E, E, query.sizes());
  const bool batched = query.dim() == 3;
  PACER_CHECK(key.dim() == query.dim() && value.dim() == query.dim() && key.size(-1) == E && value.size(-1) == E,
              "{}: expected key and value with the query's {} dims and embed_dim {} last (kdim / vdim are not "
              "supported), got key shape {} and value shape {}",
              kName, query.dim(), E, key.sizes(), value.sizes());
  // Batch-first views [N, L, E] / [N, S, E].
  auto to_nle = [&](const Tensor& t) { return !batched ? unsqueeze(t, 0) : batch_first ? t : transpose(t, 0, 1); };
  const Tensor q_in = to_nle(query), k_in = to_nle(key), v_in = to_nle(value);
  const int64_t N = q_in.size(0), L = q_in.size(1), S = k_in.size(1);
  PACER_CHECK(k_in.size(0) == N && v_in.size(0) == N && v_in.size(1) == S,
              "{}: expected key and value with the query's batch size {} and one source length, got query shape {}, "
              "key shape {} and value shape {}",
              kName, N, query.sizes(), key.sizes(), value.sizes());

  // Masks in scaled_dot_product_attention's terms: bool = keep, floating = added.
  Tensor mask;
  if (key_padding_mask.defined()) {
    const Shape want = batched ? Shape{N, S} : Shape{S};
    PACER_CHECK(key_padding_mask.sizes() == want, "{}: expected a key_padding_mask of shape {} ([N, S]), got shape {}",
                kName, want, key_padding_mask.sizes());
    PACER_CHECK(key_padding_mask.dtype() == DType::Bool || is_floating(key_padding_mask.dtype()),
                "{}: expected a bool or floating key_padding_mask, got {}", kName, key_padding_mask.dtype());
    Tensor m = reshape(key_padding_mask, {N, 1, 1, S});
    mask = m.dtype() == DType::Bool ? logical_not(m) : m;
  }
  if (attn_mask.defined()) {
    const bool fits = (attn_mask.dim() == 2 && attn_mask.sizes() == Shape{L, S}) ||
                      (attn_mask.dim() == 3 && attn_mask.sizes() == Shape{N * H, L, S});
    PACER_CHECK(fits, "{}: expected an attn_mask of shape [L, S] = {} or [N * num_heads, L, S] = {}, got shape {}",
                kName, Shape{L, S}, Shape{N * H, L, S}, attn_mask.sizes());
    PACER_CHECK(attn_mask.dtype() == DType::Bool || is_floating(attn_mask.dtype()),
                "{}: expected a bool or floating attn_mask, got {}", kName, attn_mask.dtype());
    Tensor m = attn_mask.dim() == 3 ? reshape(attn_mask, {N, H, L, S}) : attn_mask;
    if (m.dtype() == DType::Bool) m = logical_not(m);
    if (!mask.defined()) {
      mask = m;
    } else if (mask.dtype() == DType::Bool && m.dtype() == DType::Bool) {
      mask = logical_and(mask, m);
    } else {
      const DType dt = is_half(query.dtype()) ? DType::F32 : query.dtype();
      auto as_add = [&](const Tensor& t) { return t.dtype() == DType::Bool ? additive(t, dt, query.device()) : cast(t, dt); };
      mask = as_add(mask) + as_add(m);
    }
  }

  // Projections, split into heads: [N, H, len, head_dim].
  auto project = [&](const Tensor& x, int64_t part) {
    const Tensor w = slice(in_proj_weight, 0, part * E, (part + 1) * E);
    const Tensor b = in_proj_bias.defined() ? slice(in_proj_bias, 0, part * E, (part + 1) * E) : Tensor();
    const Tensor y = linear(x, w, b);
    return transpose(reshape(y, {N, y.size(1), H, head_dim}), 1, 2);
  };
  const Tensor q = project(q_in, 0), k = project(k_in, 1), v = project(v_in, 2);

  Tensor out, weights;
  if (need_weights) {
    weights = scaled_dot_product_attention_weights(q, k, mask);
    out = matmul(weights, v);
  } else {
    out = scaled_dot_product_attention(q, k, v, mask);
  }
  out = out_proj->forward(reshape(transpose(out, 1, 2), {N, L, E}));
  if (!batched) {
    out = squeeze(out, 0);
  } else if (!batch_first) {
    out = transpose(out, 0, 1);
  }
  if (weights.defined()) {
    if (average_attn_weights) weights = mean(weights, {1});
    if (!batched) weights = squeeze(weights, 0);
  }
  return {out, weights};
}

}  // namespace pacer::nn
