#include "nn/lstm.h"

#include <cmath>
#include <string>

#include "nn/init.h"
#include "ops/api.h"

namespace pacer::nn {

LSTM::LSTM(int64_t input_size_, int64_t hidden_size_, int64_t num_layers_, bool bias, bool batch_first_,
           bool bidirectional_, Options o)
    : input_size(input_size_),
      hidden_size(hidden_size_),
      num_layers(num_layers_),
      batch_first(batch_first_),
      bidirectional(bidirectional_) {
  PACER_CHECK(input_size > 0 && hidden_size > 0 && num_layers > 0,
              "LSTM: expected positive input_size, hidden_size and num_layers, got {}, {} and {}", input_size,
              hidden_size, num_layers);
  const int64_t D = bidirectional ? 2 : 1, H = hidden_size;
  const double bound = 1.0 / std::sqrt(double(H));
  auto param = [&](const std::string& name, const Shape& sizes) {
    return register_parameter(name, init::uniform(sizes, -bound, bound, o));
  };
  for (int64_t l = 0; l < num_layers; ++l)
    for (int64_t d = 0; d < D; ++d) {
      const std::string suffix = "_l" + std::to_string(l) + (d ? "_reverse" : "");
      LstmWeights w;
      w.w_ih = param("weight_ih" + suffix, {4 * H, l == 0 ? input_size : D * H});
      w.w_hh = param("weight_hh" + suffix, {4 * H, H});
      if (bias) {
        w.b_ih = param("bias_ih" + suffix, {4 * H});
        w.b_hh = param("bias_hh" + suffix, {4 * H});
      }
      weights.push_back(w);
    }
}

LstmResult LSTM::forward(const Tensor& x, const Tensor& lengths, const std::pair<Tensor, Tensor>& state) const {
  PACER_CHECK(x.dim() == 3 && x.size(2) == input_size, "LSTM: expected input {} with input_size {}, got shape {}",
              batch_first ? "[B, T, input_size]" : "[T, B, input_size]", input_size, x.sizes());
  return lstm(x, state.first, state.second, weights, num_layers, bidirectional, lengths, batch_first);
}

}  // namespace pacer::nn
