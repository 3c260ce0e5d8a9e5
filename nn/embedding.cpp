#include "nn/embedding.h"

#include "autograd/grad_mode.h"
#include "ops/api.h"

namespace pacer::nn {

Embedding::Embedding(int64_t num, int64_t dim, std::optional<int64_t> pad, Options o) {
  PACER_CHECK(num > 0 && dim > 0, "Embedding: expected positive sizes, got num_embeddings={} embedding_dim={}", num,
              dim);
  if (pad) {
    PACER_CHECK(*pad >= -num && *pad < num, "Embedding: padding_idx must be within [{}, {}), got {}", -num, num, *pad);
    padding_idx = *pad < 0 ? *pad + num : *pad;
  }
  Tensor w;
  {
    NoGradGuard no_grad;
    w = contiguous(cast(randn({num, dim}, {.dtype = DType::F32, .device = o.device}), o.dtype));
    if (padding_idx) {
      Tensor row = select(w, 0, *padding_idx);
      zero_(row);
    }
  }
  weight = register_parameter("weight", w);
}

Tensor Embedding::forward(const Tensor& indices) const {
  PACER_CHECK(indices.dtype() == DType::I64 || indices.dtype() == DType::I32,
              "Embedding: expected int64 or int32 indices, got {}", indices.dtype());
  return embedding(weight, indices, padding_idx ? *padding_idx : -1);
}

}  // namespace pacer::nn
