// torch.nn.init semantics (fans, gains, bounds and moments) and the ConvTranspose2d layer.
#include <cmath>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

namespace pacer {

namespace {

std::pair<double, double> moments(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= double(v.size());
  for (double x : v) s += (x - m) * (x - m);
  return {m, std::sqrt(s / double(v.size()))};
}

double max_abs(const Tensor& t) {
  double r = 0;
  for (double x : t.to_vector<double>()) r = std::max(r, std::fabs(x));
  return r;
}

}  // namespace

TEST_CASE("init: fans and gains follow torch.nn.init") {
  Tensor conv = empty({16, 8, 3, 3});
  CHECK(nn::init::fans(conv) == std::pair<int64_t, int64_t>{72, 144});
  CHECK(nn::init::calculate_gain("relu") == doctest::Approx(std::sqrt(2.0)));
  CHECK(nn::init::calculate_gain("leaky_relu", std::sqrt(5.0)) == doctest::Approx(std::sqrt(1.0 / 3.0)));
  CHECK(nn::init::calculate_gain("tanh") == doctest::Approx(5.0 / 3.0));
  CHECK_THROWS_WITH_AS(nn::init::calculate_gain("swish"), doctest::Contains("unknown nonlinearity 'swish'"), Error);
  CHECK_THROWS_WITH_AS(nn::init::fans(empty({5})), doctest::Contains("at least 2 dims"), Error);
}

TEST_CASE("init: bounds and moments of the random initializers") {
  Generator g(3);
  Tensor w = empty({256, 128});
  nn::init::xavier_uniform_(w, 1.0, &g);
  const double xb = std::sqrt(6.0 / 384.0);
  CHECK(max_abs(w) <= xb);
  CHECK(moments(w).second == doctest::Approx(xb / std::sqrt(3.0)).epsilon(0.03));
  nn::init::kaiming_uniform_(w, 0, nn::init::FanMode::FanIn, "relu", &g);
  const double kb = std::sqrt(2.0) * std::sqrt(3.0 / 128.0);
  CHECK(max_abs(w) <= kb);
  CHECK(moments(w).second == doctest::Approx(kb / std::sqrt(3.0)).epsilon(0.03));
  nn::init::kaiming_normal_(w, 0, nn::init::FanMode::FanOut, "relu", &g);
  CHECK(moments(w).second == doctest::Approx(std::sqrt(2.0 / 256.0)).epsilon(0.03));
  nn::init::xavier_normal_(w, 2.0, &g);
  CHECK(moments(w).second == doctest::Approx(2.0 * std::sqrt(2.0 / 384.0)).epsilon(0.03));
  nn::init::normal_(w, 1.5, 0.25, &g);
  CHECK(moments(w).first == doctest::Approx(1.5).epsilon(0.01));
  nn::init::zeros_(w);
  CHECK(max_abs(w) == 0.0);
  nn::init::ones_(w);
  CHECK(moments(w).first == 1.0);
  CHECK_THROWS_WITH_AS(nn::init::normal_(w, 0, -1), doctest::Contains("expected std >= 0"), Error);
}

TEST_CASE("ConvTranspose2d: layout, init bound, output shape and gradients") {
  nn::ConvTranspose2d up(4, 6, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1},
                                .groups = 2});
  CHECK(up.weight.sizes() == Shape{4, 3, 3, 3});
  CHECK(up.bias.sizes() == Shape{6});
  CHECK(max_abs(up.weight) <= 1.0 / std::sqrt(27.0));
  Tensor x = randn({2, 4, 5, 5});
  Tensor y = up.forward(x);
  CHECK(y.sizes() == Shape{2, 6, 10, 10});
  sum(y).backward();
  CHECK(up.weight.grad().sizes() == up.weight.sizes());
  CHECK(up.bias.grad().to_vector<double>() == std::vector<double>(6, 200.0));  // 2 * 10 * 10 per channel
  CHECK_THROWS_WITH_AS(nn::ConvTranspose2d(4, 5, {.groups = 2}), doctest::Contains("groups=2 must divide"), Error);
}

}  // namespace pacer
