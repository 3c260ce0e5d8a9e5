// Op-table rows of scaled-dot-product attention (a composite: the rows check the formula,
// its gradient, the half types and the masks against a naive f64 reference).
#include <cmath>

#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

// q [B, L, d], k [B, S, d], v [B, S, dv]; keep(b, i, j) says whether key j is visible.
ref::Arr attention_ref(const ref::Arr& q, const ref::Arr& k, const ref::Arr& v,
                       const std::function<bool(int64_t, int64_t, int64_t)>& keep) {
  const int64_t B = q.sizes[0], L = q.sizes[1], d = q.sizes[2], S = k.sizes[1], dv = v.sizes[2];
  ref::Arr out{{B, L, dv}, std::vector<double>(size_t(B * L * dv), 0.0)};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i) {
      std::vector<double> s(size_t(S), -INFINITY);
      double mx = -INFINITY;
      for (int64_t j = 0; j < S; ++j) {
        if (!keep(b, i, j)) continue;
        double dot = 0;
        for (int64_t t = 0; t < d; ++t) dot += q.v[size_t((b * L + i) * d + t)] * k.v[size_t((b * S + j) * d + t)];
        s[size_t(j)] = dot / std::sqrt(double(d));
        mx = std::max(mx, s[size_t(j)]);
      }
      double z = 0;
      for (double& e : s) z += (e = std::exp(e - mx));
      for (int64_t j = 0; j < S; ++j)
        for (int64_t t = 0; t < dv; ++t)
          out.v[size_t((b * L + i) * dv + t)] += s[size_t(j)] / z * v.v[size_t((b * S + j) * dv + t)];
    }
  return out;
}

OpCase attention_row(const std::string& name, bool causal, bool padding_mask) {
  OpCase c;
  c.name = name;
  c.covers = {"bmm", "softmax", "where"};
  c.inputs = [] {
    return std::vector<Tensor>{uniform({2, 4, 3}, -1, 1, 101), uniform({2, 4, 3}, -1, 1, 102),
                               uniform({2, 4, 5}, -1, 1, 103)};
  };
  // Batch 1 sees only its first 3 keys (a padded sequence).
  c.run = [=](const std::vector<Tensor>& in) {
    Tensor mask;
    if (padding_mask) mask = reshape(from_vector<bool>({1, 1, 1, 1, 1, 1, 1, 0}, {2, 4}).to(in[0].device()), {2, 1, 4});
    return scaled_dot_product_attention(in[0], in[1], in[2], mask, causal);
  };
  c.reference = [=](const std::vector<ref::Arr>& in) {
    return attention_ref(in[0], in[1], in[2], [=](int64_t b, int64_t i, int64_t j) {
      return !(causal && j > i) && !(padding_mask && b == 1 && j == 3);
    });
  };
  c.tol_f16 = 2e-2;
  c.tol_bf16 = 6e-2;
  c.errors = {{[] { scaled_dot_product_attention(ones({2, 4, 3}), ones({2, 4, 2}), ones({2, 4, 5})); }, "same head dim (last dim)"},
              {[] { scaled_dot_product_attention(ones({2, 4, 3}), ones({2, 4, 3}), ones({2, 4, 5}), ones({3, 3}) > 0.0); },
               "expected an attn_mask that broadcasts to [..., L, S] = [2, 4, 4], got shape [3, 3]"}};
  return c;
}

}  // namespace

std::vector<OpCase> attention_rows() {
  return {attention_row("sdpa", false, false), attention_row("sdpa_causal", true, false),
          attention_row("sdpa_padding_mask", false, true)};
}

}  // namespace pacer::test
