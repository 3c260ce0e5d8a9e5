#pragma once
/// Parameter initialization (drawn from the default generator unless one is given).

#include <string>
#include <utility>

#include "core/generator.h"
#include "core/tensor.h"

namespace pacer::nn::init {

/// Uniform in [lo, hi), as a fresh leaf (no history).
Tensor uniform(const Shape& sizes, double lo, double hi, Options options = {}, Generator* gen = nullptr);

}  // namespace pacer::nn::init

namespace pacer::nn::init {

/// torch.nn.init's in-place initializers (no history recorded). Fans follow
/// torch.nn.init._calculate_fan_in_and_fan_out: fan_in = size(1) * receptive field,
/// fan_out = size(0) * receptive field, receptive field = product of sizes[2:].
enum class FanMode { FanIn, FanOut };
std::pair<int64_t, int64_t> fans(const Tensor& t);
/// Gain of torch.nn.init.calculate_gain for "linear", "relu", "tanh", "sigmoid" or
/// "leaky_relu" (with `param` the negative slope).
double calculate_gain(const std::string& nonlinearity, double param = 0.01);

Tensor& uniform_(Tensor& t, double lo = 0, double hi = 1, Generator* gen = nullptr);
Tensor& normal_(Tensor& t, double mean = 0, double std = 1, Generator* gen = nullptr);
Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
/// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& t, double gain = 1, Generator* gen = nullptr);
/// N(0, s) with s = gain * sqrt(2 / (fan_in + fan_out)).
Tensor& xavier_normal_(Tensor& t, double gain = 1, Generator* gen = nullptr);
/// U(-b, b) with b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).
Tensor& kaiming_uniform_(Tensor& t, double a = 0, FanMode mode = FanMode::FanIn,
                         const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
/// N(0, s) with s = gain / sqrt(fan).
Tensor& kaiming_normal_(Tensor& t, double a = 0, FanMode mode = FanMode::FanIn,
                        const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);

}  // namespace pacer::nn::init
