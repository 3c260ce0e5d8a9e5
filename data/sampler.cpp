#include "data/sampler.h"

#include <numeric>

#include "core/philox.h"

namespace pacer::data {

std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed, uint64_t epoch) {
  PACER_CHECK(n >= 0, "shuffled_indices: expected n >= 0, got {}", n);
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t(0));
  for (int64_t i = n - 1; i > 0; --i) {
    Philox4 r = philox_block(seed, epoch, uint64_t(i));
    const uint64_t bits = (uint64_t(r.v[0]) << 32) | r.v[1];
    std::swap(v[size_t(i)], v[size_t(bits % uint64_t(i + 1))]);
  }
  return v;
}

std::vector<Tensor> make_batches(const std::vector<int64_t>& order, int64_t batch, bool drop_last) {
  PACER_CHECK(batch > 0, "make_batches: expected a positive batch size, got {}", batch);
  std::vector<Tensor> out;
  for (size_t at = 0; at < order.size(); at += size_t(batch)) {
    const size_t end = std::min(order.size(), at + size_t(batch));
    if (drop_last && end - at < size_t(batch)) break;
    out.push_back(from_vector(std::vector<int64_t>(order.begin() + long(at), order.begin() + long(end))));
  }
  return out;
}

}  // namespace pacer::data
