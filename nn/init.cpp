#include "nn/init.h"

#include "autograd/grad_mode.h"
#include <cmath>

#include "ops/api.h"

namespace pacer::nn::init {

Tensor uniform(const Shape& sizes, double lo, double hi, Options o, Generator* gen) {
  NoGradGuard no_grad;
  Tensor t = cast(rand(sizes, {.dtype = DType::F32, .device = o.device}, gen) * (hi - lo) + lo, o.dtype);
  return contiguous(t);
}

}  // namespace pacer::nn::init

namespace pacer::nn::init {

namespace {

// Writes `values` (same shape) into t without recording history.
Tensor& assign(Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  copy_(t, values);
  return t;
}

}  // namespace

std::pair<int64_t, int64_t> fans(const Tensor& t) {
  PACER_CHECK(t.dim() >= 2, "init: fan in and fan out need a tensor of at least 2 dims, got shape {}", t.sizes());
  int64_t rf = 1;
  for (int64_t d = 2; d < t.dim(); ++d) rf *= t.size(d);
  return {t.size(1) * rf, t.size(0) * rf};
}

double calculate_gain(const std::string& nl, double param) {
  if (nl == "linear" || nl == "sigmoid" || nl == "conv2d" || nl == "conv_transpose2d") return 1.0;
  if (nl == "tanh") return 5.0 / 3.0;
  if (nl == "relu") return std::sqrt(2.0);
  if (nl == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  PACER_FAIL("calculate_gain: unknown nonlinearity '{}' (expected linear, sigmoid, tanh, relu or leaky_relu)", nl);
}

Tensor& uniform_(Tensor& t, double lo, double hi, Generator* gen) {
  PACER_CHECK(lo <= hi, "uniform_: expected lo <= hi, got {} and {}", lo, hi);
  return assign(t, rand(t.sizes(), {.dtype = DType::F64, .device = t.device()}, gen) * (hi - lo) + lo);
}

Tensor& normal_(Tensor& t, double mean, double std, Generator* gen) {
  PACER_CHECK(std >= 0, "normal_: expected std >= 0, got {}", std);
  return assign(t, randn(t.sizes(), {.dtype = DType::F64, .device = t.device()}, gen) * std + mean);
}

Tensor& constant_(Tensor& t, double value) {
  NoGradGuard no_grad;
  return fill_(t, value);
}
Tensor& zeros_(Tensor& t) { return constant_(t, 0); }
Tensor& ones_(Tensor& t) { return constant_(t, 1); }

Tensor& xavier_uniform_(Tensor& t, double gain, Generator* gen) {
  auto [in, out] = fans(t);
  const double b = gain * std::sqrt(6.0 / double(in + out));
  return uniform_(t, -b, b, gen);
}

Tensor& xavier_normal_(Tensor& t, double gain, Generator* gen) {
  auto [in, out] = fans(t);
  return normal_(t, 0, gain * std::sqrt(2.0 / double(in + out)), gen);
}

Tensor& kaiming_uniform_(Tensor& t, double a, FanMode mode, const std::string& nl, Generator* gen) {
  auto [in, out] = fans(t);
  const double fan = double(mode == FanMode::FanIn ? in : out);
  PACER_CHECK(fan > 0, "kaiming_uniform_: the tensor of shape {} has no elements to take a fan from", t.sizes());
  const double b = calculate_gain(nl, a) * std::sqrt(3.0 / fan);
  return uniform_(t, -b, b, gen);
}

Tensor& kaiming_normal_(Tensor& t, double a, FanMode mode, const std::string& nl, Generator* gen) {
  auto [in, out] = fans(t);
  const double fan = double(mode == FanMode::FanIn ? in : out);
  PACER_CHECK(fan > 0, "kaiming_normal_: the tensor of shape {} has no elements to take a fan from", t.sizes());
  return normal_(t, 0, calculate_gain(nl, a) / std::sqrt(fan), gen);
}

}  // namespace pacer::nn::init
