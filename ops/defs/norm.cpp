// Layer normalization and embedding lookup. Both decompose into other ops (mean, rsqrt,
// index_select, where), so they are differentiable without kernels of their own.
#include "core/host_reads.h"
#include "ops/defs/common.h"

namespace pacer {
using namespace ops;

// Statistics in f32 for half inputs; the result in the input's dtype.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const int64_t nd = int64_t(normalized_shape.size());
  PACER_CHECK(nd >= 1, "layer_norm: expected a non-empty normalized_shape, got {}", normalized_shape);
  PACER_CHECK(is_floating(x.dtype()), "layer_norm: expected a floating input (float32/64, float16, bfloat16), got {}",
              x.dtype());
  bool trailing = x.dim() >= nd;
  for (int64_t k = 0; trailing && k < nd; ++k) trailing = x.size(x.dim() - nd + k) == normalized_shape[size_t(k)];
  PACER_CHECK(trailing, "layer_norm: expected an input whose trailing dims are normalized_shape {}, got shape {}",
              normalized_shape, x.sizes());
  auto check_param = [&](const Tensor& t, const char* what) {
    PACER_CHECK(!t.defined() || t.sizes() == normalized_shape, "layer_norm: expected {} of shape {} (normalized_shape), got {}",
                what, normalized_shape, t.defined() ? fmt::format("{}", t.sizes()) : "undefined");
  };
  check_param(weight, "weight");
  check_param(bias, "bias");
  PACER_CHECK(eps >= 0, "layer_norm: expected eps >= 0, got {}", eps);

  Shape dims;
  for (int64_t d = x.dim() - nd; d < x.dim(); ++d) dims.push_back(d);
  const bool half = is_half(x.dtype());
  Tensor xf = half ? cast(x, DType::F32) : x;
  Tensor centered = xf - mean(xf, dims, true);
  Tensor var = mean(centered * centered, dims, true);
  Tensor y = centered * rsqrt(var + eps);
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return half ? cast(y, x.dtype()) : y;
}

// index_select on the flattened indices, reshaped to indices.shape + [D]. Rows picked at
// padding_idx are replaced by their detached copy: same values, no gradient to that row.
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx) {
  PACER_CHECK(weight.dim() == 2, "embedding: expected a 2-d weight [num_embeddings, embedding_dim], got shape {}",
              weight.sizes());
  PACER_CHECK(indices.dtype() == DType::I64 || indices.dtype() == DType::I32,
              "embedding: expected int64 or int32 indices, got {}", indices.dtype());
  const int64_t V = weight.size(0);
  PACER_CHECK(padding_idx == -1 || (padding_idx >= 0 && padding_idx < V),
              "embedding: expected padding_idx in [0, {}) or -1 (none), got {}", V, padding_idx);
  if (indices.is_cpu()) {
    // A check, not part of the result: allowed while a graph is captured (its replays
    // skip it; the gather kernel still refuses an index out of range).
    AllowHostReads check_only;
    for (int64_t k : indices.to_vector<int64_t>())
      PACER_CHECK(k >= 0 && k < V, "embedding: index {} is out of range for a weight of {} rows (expected 0 <= index < {})",
                  k, V, V);
  }
  Tensor flat = reshape(indices, {-1});
  Tensor rows = index_select(weight, 0, flat);
  if (padding_idx >= 0) {
    Tensor at_pad = unsqueeze(eq(flat, wrap(padding_idx)), 1);
    rows = where(at_pad, detach(rows), rows);
  }
  Shape out = indices.sizes();
  out.push_back(weight.size(1));
  return reshape(rows, out);
}

}  // namespace pacer
