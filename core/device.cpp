#include "core/device.h"

#include <charconv>

namespace pacer {

Device::Device(std::string_view spec) {
  if (spec == "cpu") return;
  if (spec.substr(0, 4) == "cuda") {
    type = DeviceType::CUDA;
    if (spec.size() == 4) return;
    int i = -1;
    auto rest = spec.substr(5);
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), i);
    if (spec[4] == ':' && ec == std::errc() && p == rest.data() + rest.size() && i >= 0 && i <= 32767) {
      index = int16_t(i);
      return;
    }
  }
  PACER_FAIL("unknown device '{}': expected 'cpu', 'cuda' or 'cuda:N'", spec);
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : fmt::format("cuda:{}", index);
}

}  // namespace pacer
