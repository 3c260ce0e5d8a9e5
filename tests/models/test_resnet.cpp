// ResNet (models/resnet.h): names, sizes and init against torchvision, and the golden of
// tests/golden/make_resnet_golden.py (ResNet-50, 10 classes, weights from a shared hash).

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "models/resnet.h"
#include "tests/test_util.h"

using namespace pacer;

namespace {

// The golden script's hash (see its docstring): unit(t, n)[i] in [-1, 1), 24-bit steps.
std::vector<double> hash_unit(uint32_t t, int64_t n) {
  std::vector<double> u(static_cast<size_t>(n));
  const uint32_t offset = (t + 1u) * 0x85EBCA77u;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t h = uint32_t(i) * 0x9E3779B1u + offset;
    h ^= h >> 15;
    h *= 0x2C1B3C6Du;
    h ^= h >> 12;
    h *= 0x297A2D39u;
    h ^= h >> 15;
    u[size_t(i)] = double(h >> 8) / double(1u << 23) - 1.0;
  }
  return u;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// f32-rounded values as the script makes them, stored in `dtype`.
Tensor make_tensor(const std::vector<double>& v, const Shape& shape, DType dtype) {
  std::vector<float> f(v.begin(), v.end());
  return cast(from_vector(f, shape), dtype);
}

// The script's weights for every tensor of `model`'s state_dict (numbered in order,
// num_batches_tracked skipped, should BatchNorm2d ever get one).
std::vector<std::pair<std::string, Tensor>> hashed_state(const nn::Module& model, DType dtype) {
  std::vector<std::pair<std::string, Tensor>> state;
  const auto sd = model.state_dict();
  int64_t fc_in = 0;
  for (const auto& [name, t] : sd)
    if (name == "fc.weight") fc_in = t.size(1);
  REQUIRE(fc_in > 0);
  uint32_t index = 0;
  for (const auto& [name, t] : sd) {
    if (ends_with(name, "num_batches_tracked")) {
      state.emplace_back(name, t);
      continue;
    }
    std::vector<double> u = hash_unit(index++, t.numel());
    if (t.dim() == 4) {
      const double s = std::sqrt(6.0 / double(t.size(1) * t.size(2) * t.size(3)));
      for (double& x : u) x *= s;
    } else if (name.rfind("fc.", 0) == 0) {
      for (double& x : u) x /= std::sqrt(double(fc_in));
    } else if (ends_with(name, "running_var")) {
      for (double& x : u) x = 1.0 + 0.5 * std::abs(x);
    } else if (ends_with(name, "running_mean") || ends_with(name, "bias")) {
      for (double& x : u) x *= 0.1;
    } else {
      REQUIRE(ends_with(name, "weight"));
      for (double& x : u) x = 1.0 + 0.1 * x;
    }
    state.emplace_back(name, make_tensor(u, t.sizes(), dtype));
  }
  return state;
}

std::vector<double> values(const Tensor& t, int64_t count = -1) {
  Tensor c = contiguous(cast(detach(t), DType::F64));
  const int64_t n = count < 0 ? c.numel() : std::min(count, c.numel());
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + n);
}

// max |got - want| <= tol * max |want|: an error relative to the tensor's magnitude.
void check_close(const std::string& what, const std::vector<double>& got, const std::vector<double>& want,
                 double tol) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  double scale = 0, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::abs(want[i]));
    err = std::max(err, std::abs(got[i] - want[i]));
  }
  INFO("max error " << err << " relative to max |want| " << scale);
  CHECK(err <= tol * scale);
}

struct Golden {
  std::map<std::string, Tensor> t;
  std::vector<std::string> keys;
};

const Golden& golden() {
  static const Golden g = [] {
    Golden g;
    std::map<std::string, std::string> meta;
    for (auto& [name, t] : nn::load_safetensors(std::string(PACER_GOLDEN_DIR) + "/resnet50_golden.safetensors", &meta))
      g.t.emplace(name, t);
    std::stringstream ss(meta.at("keys"));
    for (std::string k; std::getline(ss, k, ',');) g.keys.push_back(k);
    return g;
  }();
  return g;
}

std::vector<double> gold(const std::string& name) {
  auto it = golden().t.find(name);
  REQUIRE_MESSAGE(it != golden().t.end(), "golden tensor " << name);
  return values(it->second);
}

int64_t count_params(const nn::Module& m) {
  int64_t n = 0;
  for (const Tensor& p : m.parameters()) n += p.numel();
  return n;
}

// Tolerances relative to each tensor's largest magnitude. `grad_early` is for the
// gradients of layers 1-3 and the stem: train-mode batch norm through 16 blocks makes them
// ill-conditioned, so that torch's own f32 run is 2-5% away from its f64 run there
// (measured: conv1.weight 3.9%, layer3.5.bn2.bias 1.5%, layer4.2.conv3.weight 0.07%,
// fc.weight 5e-5). The f64 run pins every value to rounding.
struct Tolerances {
  double out, grad_late, grad_early;
};

// Runs the golden's recipe in `dtype` and compares.
void check_against_golden(DType dtype, Tolerances tol) {
  models::ResNet model({.depth = 50, .num_classes = 10});
  model.to(dtype);
  model.load_state_dict(hashed_state(model, dtype));

  const std::vector<double> xu = hash_unit(1000000, 2 * 3 * 64 * 64);
  Tensor x = make_tensor(xu, {2, 3, 64, 64}, dtype);
  check_close("x.head", values(x, 16), gold("x.head"), 0);
  check_close("x.sum", values(sum(cast(x, DType::F64))), gold("x.sum"), 1e-12);

  model.eval();
  {
    NoGradGuard no_grad;
    check_close("eval.logits", values(model.forward(x)), gold("eval.logits"), tol.out);
  }

  model.train();
  Tensor logits = model.forward(x);
  Tensor loss = cross_entropy(logits, from_vector<int64_t>({1, 7}, {2}));
  check_close("train.logits", values(logits), gold("train.logits"), tol.out);
  check_close("train.loss", values(loss), gold("train.loss"), tol.out);
  loss.backward();

  std::map<std::string, Tensor> params, state;
  for (auto& [n, p] : model.named_parameters()) {
    INFO("parameter " << n << " has a gradient");
    CHECK(p.grad().defined());
    params.emplace(n, p);
  }
  for (auto& [n, t] : model.state_dict()) state.emplace(n, t);
  for (const char* n : {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer1.0.downsample.0.weight",
                        "layer3.5.bn2.bias"})
    check_close(std::string("grad.") + n, values(params.at(n).grad(), 16), gold(std::string("grad.") + n),
                tol.grad_early);
  for (const char* n : {"layer4.2.conv3.weight", "fc.weight"})
    check_close(std::string("grad.") + n, values(params.at(n).grad(), 16), gold(std::string("grad.") + n),
                tol.grad_late);
  check_close("grad.fc.bias", values(params.at("fc.bias").grad()), gold("grad.fc.bias"), tol.grad_late);
  check_close("running.bn1.running_mean", values(state.at("bn1.running_mean")), gold("running.bn1.running_mean"),
              tol.out);
  check_close("running.bn1.running_var", values(state.at("bn1.running_var")), gold("running.bn1.running_var"),
              tol.out);
  check_close("running.layer4.2.bn3.running_var", values(state.at("layer4.2.bn3.running_var"), 16),
              gold("running.layer4.2.bn3.running_var"), tol.out);
}

}  // namespace

TEST_CASE("ResNet-50 state_dict keys equal torchvision's resnet50().state_dict() keys") {
  models::ResNet model({.depth = 50, .num_classes = 10});
  std::vector<std::string> names;
  bool tracks_batches = false;
  for (auto& [n, t] : model.state_dict()) {
    names.push_back(n);
    tracks_batches = tracks_batches || ends_with(n, "num_batches_tracked");
  }
  // Pacer's BatchNorm2d keeps no num_batches_tracked (it only matters for momentum=None);
  // every other key must match, in torchvision's order.
  std::vector<std::string> want;
  for (const auto& k : golden().keys)
    if (tracks_batches || !ends_with(k, "num_batches_tracked")) want.push_back(k);
  REQUIRE(want.size() > 200);
  CHECK(names == want);
}

TEST_CASE("ResNet-50 matches torchvision: logits, loss, gradients and running statistics (f32)") {
  check_against_golden(DType::F32, {.out = 3e-4, .grad_late = 2e-3, .grad_early = 0.1});
}

TEST_CASE("ResNet-50 matches torchvision in f64 to rounding") {
  check_against_golden(DType::F64, {.out = 1e-10, .grad_late = 1e-9, .grad_early = 1e-9});
}

TEST_CASE("ResNet-18/34/50 have torchvision's parameter counts and run on 32x32 images") {
  const std::vector<std::pair<int, int64_t>> cases = {{18, 11689512}, {34, 21797672}, {50, 25557032}};
  for (auto [depth, count] : cases) {
    INFO("depth " << depth);
    models::ResNet model({.depth = depth});
    CHECK(count_params(model) == count);
    model.eval();
    NoGradGuard no_grad;
    Tensor y = model.forward(randn({1, 3, 32, 32}));
    CHECK(y.sizes() == Shape{1, 1000});
  }
}

TEST_CASE("ResNet-18 trains a step in train mode: every parameter gets a gradient") {
  models::ResNet model({.depth = 18, .num_classes = 4});
  Tensor loss = cross_entropy(model.forward(randn({2, 3, 32, 32})), from_vector<int64_t>({0, 3}, {2}));
  loss.backward();
  for (auto& [n, p] : model.named_parameters()) {
    INFO(n);
    REQUIRE(p.grad().defined());
    CHECK(p.grad().sizes() == p.sizes());
  }
  // BasicBlock names: no conv3, downsample only where the shape changes.
  std::vector<std::string> names;
  for (auto& [n, t] : model.state_dict()) names.push_back(n);
  auto has = [&](const std::string& k) { return std::find(names.begin(), names.end(), k) != names.end(); };
  CHECK(has("layer1.1.bn2.running_var"));
  CHECK(has("layer2.0.downsample.0.weight"));
  CHECK_FALSE(has("layer1.0.downsample.0.weight"));
  CHECK_FALSE(has("layer1.0.conv3.weight"));
}

TEST_CASE("ResNet init follows torchvision: He fan_out convs, BN 1/0, zero_init_residual") {
  models::ResNet model({.depth = 50});
  std::map<std::string, Tensor> sd;
  for (auto& [n, t] : model.state_dict()) sd.emplace(n, t);

  // kaiming_normal_(fan_out, relu): std = sqrt(2 / (out * kh * kw)).
  const std::vector<double> w = values(sd.at("layer1.0.conv2.weight"));  // [64, 64, 3, 3]
  double m = 0, s = 0;
  for (double v : w) m += v;
  m /= double(w.size());
  for (double v : w) s += (v - m) * (v - m);
  s = std::sqrt(s / double(w.size()));
  CHECK(std::abs(m) < 0.002);
  CHECK(s == doctest::Approx(std::sqrt(2.0 / (64 * 9))).epsilon(0.03));

  const std::vector<double> fc = values(sd.at("fc.weight"));
  double max_abs = 0;
  for (double v : fc) max_abs = std::max(max_abs, std::abs(v));
  CHECK(max_abs <= 1.0 / std::sqrt(2048.0));
  CHECK(max_abs > 0.9 / std::sqrt(2048.0));

  for (double v : values(sd.at("layer2.1.bn3.weight"))) CHECK(v == 1.0);
  for (double v : values(sd.at("layer2.1.bn3.bias"))) CHECK(v == 0.0);

  models::ResNet zero50({.depth = 50, .num_classes = 10, .zero_init_residual = true});
  models::ResNet zero18({.depth = 18, .num_classes = 10, .zero_init_residual = true});
  int zeroed = 0;
  for (auto* model_ptr : {&zero50, &zero18}) {
    const bool bottleneck = model_ptr->options().depth == 50;
    for (auto& [n, t] : model_ptr->named_parameters()) {
      if (n.rfind("layer", 0) != 0 || !ends_with(n, ".weight") || n.find(".bn") == std::string::npos) continue;
      const bool last = ends_with(n, bottleneck ? ".bn3.weight" : ".bn2.weight");
      const std::vector<double> v = values(t);
      INFO(n);
      CHECK(v.front() == (last ? 0.0 : 1.0));
      CHECK(v.back() == (last ? 0.0 : 1.0));
      zeroed += last;
    }
  }
  CHECK(zeroed == 16 + 8);  // one per block: ResNet-50 has 16 blocks, ResNet-18 has 8
}

TEST_CASE("ResNet errors name what was expected") {
  using test::error_of;
  auto contains = [](const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; };
  CHECK(contains(error_of([] { models::ResNet m({.depth = 20}); }),
                 "ResNet: unsupported depth 20: expected 18, 34, 50, 101 or 152"));
  CHECK(contains(error_of([] { models::ResNet m({.depth = 18, .num_classes = 0}); }),
                 "ResNet: expected num_classes >= 1, got 0"));
  models::ResNet model({.depth = 18, .num_classes = 10});
  CHECK(contains(error_of([&] { model.forward(randn({1, 1, 32, 32})); }),
                 "ResNet: expected floating-point images [N, 3, H, W], got shape [1, 1, 32, 32] (float32)"));
  CHECK(contains(error_of([&] { model.forward(randn({3, 32, 32})); }),
                 "ResNet: expected floating-point images [N, 3, H, W], got shape [3, 32, 32]"));
  CHECK(contains(error_of([&] { model.forward(ones({1, 3, 32, 32}, {.dtype = DType::I64})); }),
                 "got shape [1, 3, 32, 32] (int64)"));
  CHECK(contains(error_of([&] { model.layer(5); }), "ResNet::layer: expected a stage in 1..4, got 5"));
}
