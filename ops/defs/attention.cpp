// Scaled dot-product attention as a composite of public ops (matmul, softmax, where), so
// autograd, capture and autocast see only ops they already know. See ops/api_attention.h
// for the semantics (torch 2.x's F.scaled_dot_product_attention).
#include <cmath>
#include <limits>
#include <string>

#include "ops/api_attention.h"
#include "ops/defs/common.h"

namespace pacer {
using namespace ops;

namespace {

constexpr const char* kFn = "scaled_dot_product_attention";

Shape batch_dims(const Tensor& t) {
  Shape s = t.sizes();
  s.pop_back();
  s.pop_back();
  return s;
}

// The broadcast of a's and b's batch dims, with a message naming both tensors (the generic
// broadcast error would not say which operands of attention disagree).
Shape broadcast_batch(const Shape& a, const Shape& b, const Tensor& ta, const Tensor& tb, const char* na,
                      const char* nb) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n, 1);
  for (size_t k = 1; k <= n; ++k) {
    const int64_t x = k <= a.size() ? a[a.size() - k] : 1;
    const int64_t y = k <= b.size() ? b[b.size() - k] : 1;
    PACER_CHECK(x == y || x == 1 || y == 1,
                "{}: expected {} and {} whose batch dims (all but the last two) broadcast, got {} shape {} and {} "
                "shape {}",
                kFn, na, nb, na, ta.sizes(), nb, tb.sizes());
    out[n - k] = x == 1 ? y : x;
  }
  return out;
}

void check_qk(const Tensor& q, const Tensor& k) {
  PACER_CHECK(q.defined() && k.defined(), "{}: expected defined query and key tensors", kFn);
  PACER_CHECK(is_floating(q.dtype()), "{}: expected a floating query (float32/64, float16, bfloat16), got {}", kFn,
              q.dtype());
  PACER_CHECK(q.dtype() == k.dtype(), "{}: expected query and key of one dtype, got {} and {}", kFn, q.dtype(),
              k.dtype());
  PACER_CHECK(q.dim() >= 2 && k.dim() >= 2,
              "{}: expected query [..., L, d] and key [..., S, d] with at least 2 dims, got shapes {} and {}", kFn,
              q.sizes(), k.sizes());
  PACER_CHECK(q.size(-1) == k.size(-1),
              "{}: expected query and key with the same head dim (last dim), got query shape {} (d = {}) and key "
              "shape {} (d = {})",
              kFn, q.sizes(), q.size(-1), k.sizes(), k.size(-1));
}

// The masked, scaled scores in the compute dtype (f32 for half inputs), then softmaxed.
Tensor attention_probs(const Tensor& q, const Tensor& k, const Tensor& mask, bool is_causal,
                       std::optional<double> scale, const Shape& batch) {
  const int64_t L = q.size(-2), S = k.size(-2);
  if (mask.defined()) {
    PACER_CHECK(!is_causal, "{}: expected either an attn_mask or is_causal=true, not both (as torch)", kFn);
    PACER_CHECK(mask.dtype() == DType::Bool || is_floating(mask.dtype()),
                "{}: expected a bool or floating attn_mask, got {}", kFn, mask.dtype());
    Shape want = batch;
    want.push_back(L);
    want.push_back(S);
    bool fits = mask.dim() <= int64_t(want.size());
    for (int64_t j = 1; fits && j <= mask.dim(); ++j)
      fits = mask.size(-j) == 1 || mask.size(-j) == want[want.size() - size_t(j)];
    PACER_CHECK(fits, "{}: expected an attn_mask that broadcasts to [..., L, S] = {}, got shape {}", kFn, want,
                mask.sizes());
  }
  const double s = scale ? *scale : 1.0 / std::sqrt(double(q.size(-1)));
  const bool half = is_half(q.dtype());
  const DType compute = half ? DType::F32 : q.dtype();
  // Scaling q before the product keeps half-precision scores in range, as torch's math path.
  Tensor scores = matmul(q * s, transpose(k, -2, -1));
  if (half) scores = cast(scores, compute);
  const Tensor minus_inf = wrap(-std::numeric_limits<double>::infinity());
  if (is_causal) {
    Tensor i = unsqueeze(arange(0, L, 1, DType::I64, q.device()), 1);
    Tensor j = unsqueeze(arange(0, S, 1, DType::I64, q.device()), 0);
    scores = where(le(j, i), scores, minus_inf);
  } else if (mask.defined()) {
    scores = mask.dtype() == DType::Bool ? where(mask, scores, minus_inf) : scores + cast(mask, compute);
  }
  Tensor p = softmax(scores, -1);
  return half ? cast(p, q.dtype()) : p;
}

}  // namespace

Tensor scaled_dot_product_attention_weights(const Tensor& query, const Tensor& key, const Tensor& attn_mask,
                                            bool is_causal, std::optional<double> scale) {
  check_qk(query, key);
  const Shape batch = broadcast_batch(batch_dims(query), batch_dims(key), query, key, "query", "key");
  return attention_probs(query, key, attn_mask, is_causal, scale, batch);
}

Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask, bool is_causal, std::optional<double> scale) {
  check_qk(query, key);
  PACER_CHECK(value.defined(), "{}: expected a defined value tensor", kFn);
  PACER_CHECK(value.dtype() == query.dtype(), "{}: expected query, key and value of one dtype, got {}, {} and {}", kFn,
              query.dtype(), key.dtype(), value.dtype());
  PACER_CHECK(value.dim() >= 2 && value.size(-2) == key.size(-2),
              "{}: expected value [..., S, dv] with key's S = {} (key shape {}), got value shape {}", kFn,
              key.size(-2), key.sizes(), value.sizes());
  Shape batch = broadcast_batch(batch_dims(query), batch_dims(key), query, key, "query", "key");
  batch = broadcast_batch(batch, batch_dims(value), query, value, "query", "value");
  return matmul(attention_probs(query, key, attn_mask, is_causal, scale, batch), value);
}

}  // namespace pacer
