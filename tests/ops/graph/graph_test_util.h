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

}  // namespace pacer::test
