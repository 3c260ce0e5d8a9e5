#pragma once
/// Embedding: a lookup table weight [num_embeddings, embedding_dim] (torch.nn.Embedding).
/// weight ~ N(0, 1) as torch; the row at padding_idx (if any) starts at zero and gets no
/// gradient. A negative padding_idx counts from the end, as in torch.

#include <optional>

#include "nn/module.h"

namespace pacer::nn {

class Embedding : public UnaryModule {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx = {},
            Options options = {});
  /// indices (int64/int32, any shape) -> indices.shape + [embedding_dim].
  Tensor forward(const Tensor& indices) const override;

  Tensor weight;                       // parameter [num_embeddings, embedding_dim]
  std::optional<int64_t> padding_idx;  // normalized to [0, num_embeddings)
};

}  // namespace pacer::nn
