#pragma once
// Helpers of the graph tests: counting node kinds, comparing results, reading reports.

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace pacer::test {

inline int count_kind(const graph::Graph& g, const std::string& kind) {
  int n = 0;
  for (const graph::Node& node : g.nodes) n += node.kind() == kind ? 1 : 0;
  return n;
}

/// max |a - b| / (1 + |b|) over the elements (0 when equal bit for bit, NaNs aside).
inline double max_rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  const std::vector<double> x = a.to(kCPU).to(DType::F64).to_vector<double>();
  const std::vector<double> y = b.to(kCPU).to(DType::F64).to_vector<double>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]) / (1 + std::abs(y[i])));
  return m;
}

/// A report's lines (fused groups, rejections) as one string, for find().
inline std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += x + "\n";
  return s;
}

/// Three 3x3 convolutions (padding 1, no bias), each followed by training batch norm and
/// ReLU, all of `channels` channels, with their parameters and running statistics, drawn
/// after manual_seed(seed) layer by layer (weight scaled by `weight_scale`, gamma, beta).
struct ConvBnReluStack {
  std::vector<Tensor> ws, gs, bs, rms, rvs;
  ConvBnReluStack(int64_t channels, uint64_t seed, double weight_scale = 1.0) {
    manual_seed(seed);
    for (int i = 0; i < 3; ++i) {
      Tensor w = randn({channels, channels, 3, 3});
      ws.push_back((weight_scale == 1.0 ? w : w * weight_scale).set_requires_grad());
      gs.push_back(randn({channels}).set_requires_grad());
      bs.push_back(randn({channels}).set_requires_grad());
      rms.push_back(zeros({channels}));
      rvs.push_back(ones({channels}));
    }
  }
  /// One step's forward and backward on (x, target): the parameters' gradients start from
  /// nothing; returns the loss sum(stack(x) * target).
  Tensor loss_backward(const std::vector<Tensor>& in) {
    for (int i = 0; i < 3; ++i)
      for (Tensor* p : {&ws[size_t(i)], &gs[size_t(i)], &bs[size_t(i)]}) p->set_grad(Tensor());
    Tensor h = in[0];
    for (size_t i = 0; i < 3; ++i)
      h = pacer::relu(batch_norm(conv2d(h, ws[i], Tensor(), {1, 1}, {1, 1}), gs[i], bs[i], rms[i], rvs[i], true));
    Tensor loss = sum(h * in[1]);
    loss.backward();
    return loss;
  }
};

}  // namespace pacer::test
