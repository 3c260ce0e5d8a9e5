#pragma once
/// Generator: the (seed, offset) state random ops draw from. Each draw reserves a range
/// of Philox offsets, so two draws never share numbers and a saved (seed, offset) pair
/// replays exactly.

#include <cstdint>
#include <mutex>

namespace pacer {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) : seed_(seed) {}
  void manual_seed(uint64_t seed) {
    std::lock_guard<std::mutex> g(m_);
    seed_ = seed;
    offset_ = 0;
  }
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) {
    std::lock_guard<std::mutex> g(m_);
    seed_ = seed;
    offset_ = offset;
  }
  /// Reserves one offset for a draw; returns (seed, offset) to key the Philox stream.
  std::pair<uint64_t, uint64_t> next() {
    std::lock_guard<std::mutex> g(m_);
    return {seed_, offset_++};
  }

 private:
  std::mutex m_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

/// The process-wide default generator.
Generator& default_generator();
/// Seeds the default generator (torch.manual_seed).
void manual_seed(uint64_t seed);

}  // namespace pacer
