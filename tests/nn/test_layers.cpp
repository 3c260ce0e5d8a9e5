// nn layers: output shapes and values against hand-computed (PyTorch-equal) results,
// PyTorch's state_dict names, train/eval behaviour inside Sequential, FrozenBatchNorm2d,
// Module::to(dtype), gradients through Sequential, and the layers' error messages.
#include <cmath>
#include <limits>

#include <doctest/doctest.h>

#include "core/cuda/runtime.h"
#include <pacer/pacer.h>

#include <cmath>
#include <string>
#include <vector>

#include "nn/adaptive_avg_pool2d.h"
#include "nn/avg_pool2d.h"
#include "nn/batch_norm.h"
#include "nn/conv2d.h"
#include "nn/dropout.h"
#include "nn/embedding.h"
#include "nn/frozen_batch_norm.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/max_pool2d.h"
#include "nn/module_list.h"
#include "nn/relu.h"
#include "nn/sequential.h"
#include "tests/test_util.h"

namespace pacer {

using test::error_of;

namespace {

std::vector<std::string> names(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<std::string> out;
  for (const auto& [n, t] : named) out.push_back(n);
  return out;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

Tensor vec(const std::vector<float>& v, const Shape& sizes) { return from_vector(v, sizes); }

void check_close(const Tensor& a, const std::vector<double>& want, double tol = 1e-5) {
  const std::vector<double> got = a.to_vector<double>();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(tol));
}

}  // namespace

TEST_CASE("ReLU and the pooling layers compute torch's values") {
  nn::ReLU r;
  check_close(r.forward(vec({-1, 0, 2.5}, {3})), {0, 0, 2.5});
  CHECK(r.state_dict().empty());

  Tensor x = reshape(arange(0, 16, 1, DType::F32), {1, 1, 4, 4});
  nn::MaxPool2d mp({2, 2});
  CHECK(mp.stride == Shape{2, 2});
  Tensor m = mp.forward(x);
  CHECK(m.sizes() == Shape{1, 1, 2, 2});
  check_close(m, {5, 7, 13, 15});
  // kernel 3, stride 1, padding 1: same size, each output the max of its 3x3 neighbourhood.
  check_close(nn::MaxPool2d({3, 3}, {1, 1}, {1, 1}).forward(x),
              {5, 6, 7, 7, 9, 10, 11, 11, 13, 14, 15, 15, 13, 14, 15, 15});

  Tensor a = nn::AvgPool2d({2, 2}).forward(x);
  CHECK(a.sizes() == Shape{1, 1, 2, 2});
  check_close(a, {2.5, 4.5, 10.5, 12.5});

  Tensor g = nn::AdaptiveAvgPool2d({1, 1}).forward(reshape(arange(0, 32, 1, DType::F32), {1, 2, 4, 4}));
  CHECK(g.sizes() == Shape{1, 2, 1, 1});
  check_close(g, {7.5, 23.5});
  // 4 -> 3 windows (torch's rule: [floor(i*4/3), ceil((i+1)*4/3))): rows {0,1}, {1,2}, {2,3}.
  Tensor g3 = nn::AdaptiveAvgPool2d({3, 1}).forward(x);
  CHECK(g3.sizes() == Shape{1, 1, 3, 1});
  check_close(g3, {3.5, 7.5, 11.5});
}

TEST_CASE("max_pool2d: ties keep the first maximum, the first NaN wins, dilation and padding skip outside taps") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // One 4x4 plane; 2x2 windows, stride 2: windows {1,1 / 0,1}, {NaN,2 / NaN,5}, {4,4 / 9,9}, {3,3 / 3,3}.
  Tensor x = from_vector<double>({1, 1, nan, 2, 0, 1, nan, 5, 4, 4, 3, 3, 9, 9, 3, 3}, {1, 1, 4, 4});
  auto [y, idx] = max_pool2d_with_indices(x, {2, 2}, {2, 2});
  const std::vector<double> v = y.to_vector<double>();
  CHECK(v[0] == 1);
  CHECK(std::isnan(v[1]));
  CHECK(v[2] == 9);
  CHECK(v[3] == 3);
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{0, 2, 12, 10});
  // Dilation 2 with padding 2: the taps of a window are 2 apart, those outside are skipped.
  // Kernel 2, dilation 2, padding 1, stride 2 over z = 7h + w (7x7): window rows are {-1, 1},
  // {1, 3}, {3, 5}, {5, 7}; the inside ones' last wins: rows (and columns) 1, 3, 5, 5.
  Tensor z = reshape(arange(0, 49, 1, DType::F64), {1, 1, 7, 7});
  auto [y2, idx2] = max_pool2d_with_indices(z, {2, 2}, {2, 2}, {1, 1}, {2, 2});
  const std::vector<double> want{8, 10, 12, 12, 22, 24, 26, 26, 36, 38, 40, 40, 36, 38, 40, 40};
  CHECK(y2.to_vector<double>() == want);
  CHECK(idx2.to_vector<int64_t>() == std::vector<int64_t>(want.begin(), want.end()));
}

TEST_CASE("pooling layers: bad arguments and inputs are refused with the layer's name") {
  CHECK(contains(error_of([] {
                   nn::MaxPool2d({0, 2});
                 }),
                 "MaxPool2d: expected a positive [kh, kw] kernel, got [0, 2]"));
  CHECK(contains(error_of([] { nn::MaxPool2d({2}); }), "MaxPool2d: expected a positive [kh, kw] kernel"));
  CHECK(contains(error_of([] {
                   nn::MaxPool2d({2, 2}, {1, 1}, {2, 0});
                 }),
                 "MaxPool2d: padding must be [ph, pw] with each at most half the kernel"));
  CHECK(contains(error_of([] {
                   nn::MaxPool2d({2, 2}, {}, {0, 0}, {0, 1});
                 }),
                 "MaxPool2d: expected a positive [dh, dw] dilation"));
  CHECK(contains(error_of([] {
                   nn::AvgPool2d({2, 2}, {0, 1});
                 }),
                 "AvgPool2d: expected a positive [sh, sw] stride, got [0, 1]"));
  CHECK(contains(error_of([] {
                   nn::AdaptiveAvgPool2d({0, 1});
                 }),
                 "AdaptiveAvgPool2d: expected a positive [oh, ow] output size"));
  CHECK(contains(error_of([] {
                   nn::MaxPool2d({2, 2}).forward(zeros({4, 4}));
                 }),
                 "MaxPool2d: expected input [N, C, H, W], got shape [4, 4]"));
  CHECK(contains(error_of([] {
                   nn::AvgPool2d({2, 2}).forward(zeros({1, 4, 4}));
                 }),
                 "AvgPool2d: expected input [N, C, H, W], got shape [1, 4, 4]"));
  CHECK(contains(error_of([] {
                   nn::AdaptiveAvgPool2d({1, 1}).forward(zeros({2}));
                 }),
                 "AdaptiveAvgPool2d: expected input [N, C, H, W]"));
}

TEST_CASE("Dropout: scales kept elements by 1/(1-p) in training, identity in eval") {
  nn::Dropout d(0.5);
  CHECK(d.is_training());
  Tensor x = ones({4000});
  const std::vector<float> y = d.forward(x).to_vector<float>();
  int kept = 0;
  for (float v : y) {
    CHECK((v == 0.0f || v == 2.0f));
    kept += v != 0.0f;
  }
  CHECK(kept > 1800);
  CHECK(kept < 2200);
  d.eval();
  CHECK(allclose(d.forward(x), x));
  CHECK(nn::Dropout().p == 0.5);
  CHECK(contains(error_of([] { nn::Dropout(1.5); }), "Dropout: expected a probability in [0, 1], got 1.5"));
  CHECK(contains(error_of([] { nn::Dropout(-0.1); }), "Dropout: expected a probability in [0, 1], got -0.1"));
}

TEST_CASE("Embedding: N(0, 1) weight, zero padding row without gradient, lookups") {
  nn::Embedding big(1000, 100);
  CHECK(names(big.state_dict()) == std::vector<std::string>{"weight"});
  CHECK(big.weight.sizes() == Shape{1000, 100});
  CHECK(big.weight.requires_grad());
  CHECK(big.weight.is_leaf());
  CHECK(std::abs(mean(big.weight).item<double>()) < 0.01);
  CHECK(std::abs(std(big.weight).item<double>() - 1.0) < 0.01);

  nn::Embedding e(5, 3, 1);
  CHECK(e.padding_idx == 1);
  check_close(select(e.weight, 0, 1), {0, 0, 0});
  Tensor idx = from_vector<int64_t>({0, 1, 4, 1}, {2, 2});
  Tensor y = e.forward(idx);
  CHECK(y.sizes() == Shape{2, 2, 3});
  CHECK(allclose(select(select(y, 0, 0), 0, 0), select(e.weight, 0, 0)));
  CHECK(allclose(select(select(y, 0, 1), 0, 0), select(e.weight, 0, 4)));
  sum(y).backward();
  // Rows 0 and 4 are used once each; the padding row gets nothing.
  check_close(e.weight.grad(), {1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1});

  CHECK(nn::Embedding(5, 3, -1).padding_idx == 4);
  CHECK(!nn::Embedding(5, 3).padding_idx.has_value());
  CHECK(contains(error_of([] { nn::Embedding(0, 3); }),
                 "Embedding: expected positive sizes, got num_embeddings=0 embedding_dim=3"));
  CHECK(contains(error_of([] { nn::Embedding(5, 3, 5); }), "Embedding: padding_idx must be within [-5, 5), got 5"));
  CHECK(contains(error_of([&] { e.forward(zeros({2})); }), "Embedding: expected int64 or int32 indices, got float32"));
}

TEST_CASE("LayerNorm: torch's values, parameters and input checks") {
  nn::LayerNorm ln({4});
  CHECK(names(ln.state_dict()) == std::vector<std::string>{"weight", "bias"});
  check_close(ln.weight, {1, 1, 1, 1});
  check_close(ln.bias, {0, 0, 0, 0});
  // mean 2.5, biased variance 1.25: (x - 2.5) / sqrt(1.25 + 1e-5).
  const double s = std::sqrt(1.25 + 1e-5);
  Tensor y = ln.forward(vec({1, 2, 3, 4, 2, 2, 2, 2}, {2, 4}));
  check_close(y, {-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s, 0, 0, 0, 0}, 1e-4);
  sum(y * vec({1, 2, 3, 4}, {4})).backward();
  CHECK(ln.weight.grad().sizes() == Shape{4});
  check_close(ln.bias.grad(), {2, 4, 6, 8});

  nn::LayerNorm plain({2, 2}, 1e-5, false);
  CHECK(plain.state_dict().empty());
  CHECK(plain.forward(zeros({3, 2, 2})).sizes() == Shape{3, 2, 2});
  CHECK(contains(error_of([] { nn::LayerNorm({}); }),
                 "LayerNorm: expected a non-empty normalized_shape of positive sizes"));
  CHECK(contains(error_of([] {
                   nn::LayerNorm({3, 0});
                 }),
                 "LayerNorm: expected a non-empty normalized_shape of positive sizes, got [3, 0]"));
  CHECK(contains(error_of([&] {
                   ln.forward(zeros({2, 3}));
                 }),
                 "LayerNorm: expected input whose trailing dims are [4], got shape [2, 3]"));
}

TEST_CASE("FrozenBatchNorm2d: four buffers, no parameters, x * scale + shift") {
  nn::FrozenBatchNorm2d f(2);
  CHECK(f.eps == 1e-5);
  CHECK(f.named_parameters().empty());
  CHECK(f.parameters().empty());
  CHECK(names(f.state_dict()) == std::vector<std::string>{"weight", "bias", "running_mean", "running_var"});
  f.load_state_dict({{"weight", vec({2, 3}, {2})},
                     {"bias", vec({1, -1}, {2})},
                     {"running_mean", vec({0.5, 1}, {2})},
                     {"running_var", vec({3, 0.25}, {2})}});
  const double s0 = 2 / std::sqrt(3 + 1e-5), s1 = 3 / std::sqrt(0.25 + 1e-5);
  Tensor x = vec({1, 2, 3, 4, 1, 2, 3, 4}, {1, 2, 2, 2});
  Tensor y = f.forward(x);
  CHECK(y.sizes() == Shape{1, 2, 2, 2});
  std::vector<double> want;
  for (double v : {1, 2, 3, 4}) want.push_back((v - 0.5) * s0 + 1);
  for (double v : {1, 2, 3, 4}) want.push_back((v - 1) * s1 - 1);
  check_close(y, want);
  // The same as BatchNorm2d in eval with the same statistics.
  nn::BatchNorm2d bn(2);
  bn.load_state_dict(f.state_dict());
  bn.eval();
  CHECK(allclose(bn.forward(x), y, 1e-5, 1e-5));
  // Training mode changes nothing: the statistics stay frozen.
  f.train();
  CHECK(allclose(f.forward(x), y));
  check_close(f.running_mean, {0.5, 1});
  CHECK(contains(error_of([] { nn::FrozenBatchNorm2d(0); }), "FrozenBatchNorm2d: expected channels > 0, got 0"));
  CHECK(contains(error_of([&] {
                   f.forward(zeros({1, 3, 2, 2}));
                 }),
                 "FrozenBatchNorm2d: expected input [N, 2, H, W], got shape [1, 3, 2, 2]"));
}

TEST_CASE("Sequential: children named 0, 1, ..., PyTorch's state_dict names, indexing") {
  nn::Sequential seq{std::make_shared<nn::Conv2d>(3, 4, nn::Conv2dOptions{.kernel = {3, 3}}),
                     std::make_shared<nn::BatchNorm2d>(4), std::make_shared<nn::ReLU>()};
  CHECK(names(seq.state_dict()) ==
        std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"});
  CHECK(names(seq.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"});
  CHECK(seq.size() == 3);
  CHECK(seq.at<nn::Conv2d>(0)->weight.sizes() == Shape{4, 3, 3, 3});
  CHECK(seq.at<nn::BatchNorm2d>(1)->eps == 1e-5);
  CHECK(seq.forward(rand({2, 3, 5, 5})).sizes() == Shape{2, 4, 3, 3});
  CHECK(contains(error_of([&] { seq[3]; }), "Sequential: index 3 is out of range for 3 layers"));
  CHECK(contains(error_of([&] { seq.at<nn::Linear>(2); }), "Sequential: layer 2 is not of the requested type"));
  CHECK(contains(error_of([&] { seq.push_back(nullptr); }), "Sequential: layer 3 is null"));
  // Nested: names are dotted through both levels.
  nn::Sequential outer{std::make_shared<nn::Linear>(2, 2),
                       std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::UnaryModule>>{
                           std::make_shared<nn::ReLU>(), std::make_shared<nn::Linear>(2, 1, false)})};
  CHECK(names(outer.state_dict()) == std::vector<std::string>{"0.weight", "0.bias", "1.1.weight"});
  // Input shape errors come from the layer that refuses the input.
  CHECK(contains(error_of([&] { outer.forward(zeros({3, 5})); }), "Linear: expected input [..., 2], got shape [3, 5]"));
}

TEST_CASE("Sequential: train/eval reaches Dropout and BatchNorm2d") {
  auto bn = std::make_shared<nn::BatchNorm2d>(2);
  auto drop = std::make_shared<nn::Dropout>(0.5);
  nn::Sequential seq{bn, drop};
  Tensor x = rand({4, 2, 3, 3}) * 4.0 + 1.0;

  // Training: batch statistics (output mean ~0 per channel before dropout), running stats
  // move towards the batch's, and dropout zeroes about half.
  Tensor y = seq.forward(x);
  const Tensor batch_mean = mean(x, {0, 2, 3});
  CHECK(allclose(bn->running_mean, batch_mean * 0.1, 1e-4, 1e-5));
  int zeros_seen = 0;
  for (float v : y.to_vector<float>()) zeros_seen += v == 0.0f;
  CHECK(zeros_seen > 10);

  // Eval: running statistics, no update, no dropout.
  seq.eval();
  CHECK(!bn->is_training());
  CHECK(!drop->is_training());
  const Tensor rm = clone(bn->running_mean), rv = clone(bn->running_var);
  Tensor e = seq.forward(x);
  CHECK(allclose(bn->running_mean, rm));
  Tensor want = (x - reshape(rm, {1, 2, 1, 1})) / sqrt(reshape(rv, {1, 2, 1, 1}) + 1e-5);
  CHECK(allclose(e, want, 1e-4, 1e-5));
  CHECK(allclose(seq.forward(x), e));  // deterministic in eval

  seq.train();
  CHECK(bn->is_training());
  CHECK(drop->is_training());
}

TEST_CASE("Sequential: gradients flow to every layer's parameters") {
  auto l1 = std::make_shared<nn::Linear>(4, 3);
  auto l2 = std::make_shared<nn::Linear>(3, 2);
  nn::Sequential seq{l1, std::make_shared<nn::ReLU>(), l2};
  Tensor x = randn({5, 4});
  Tensor y = seq.forward(x);
  CHECK(y.sizes() == Shape{5, 2});
  CHECK(allclose(y, linear(relu(linear(x, l1->weight, l1->bias)), l2->weight, l2->bias)));
  sum(y).backward();
  for (const auto& [name, p] : seq.named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
    CHECK(p.grad().sizes() == p.sizes());
  }
  // d sum / d b2 = batch size for every output.
  check_close(l2->bias.grad(), {5, 5});
  seq.zero_grad();
  CHECK(!l1->weight.grad().defined());
}

TEST_CASE("ModuleList: indexed children, size, typed access") {
  nn::ModuleList list{std::make_shared<nn::Linear>(2, 3), std::make_shared<nn::ReLU>()};
  list.push_back(std::make_shared<nn::Linear>(3, 1, false));
  CHECK(list.size() == 3);
  CHECK(names(list.state_dict()) == std::vector<std::string>{"0.weight", "0.bias", "2.weight"});
  CHECK(list.at<nn::Linear>(2)->weight.sizes() == Shape{1, 3});
  CHECK(std::dynamic_pointer_cast<nn::ReLU>(list[1]) != nullptr);
  Tensor h = zeros({1, 2});
  for (size_t i = 0; i < list.size(); ++i) h = std::dynamic_pointer_cast<nn::UnaryModule>(list[i])->forward(h);
  CHECK(h.sizes() == Shape{1, 1});
  list.eval();
  CHECK(!list[0]->is_training());
  CHECK(contains(error_of([&] { list[3]; }), "ModuleList: index 3 is out of range for 3 modules"));
  CHECK(contains(error_of([&] { list.at<nn::Conv2d>(0); }), "ModuleList: module 0 is not of the requested type"));
  CHECK(contains(error_of([&] { list.push_back(nullptr); }), "ModuleList: module 3 is null"));
}

TEST_CASE("Module::to(f64) converts parameters and buffers in place of every handle") {
  auto lin = std::make_shared<nn::Linear>(3, 2);
  auto bn = std::make_shared<nn::BatchNorm2d>(2);
  nn::Sequential seq{lin, std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::UnaryModule>>{bn})};
  const Tensor w_before = clone(lin->weight);
  const Tensor handle = seq.state_dict()[0].second;  // another handle to "0.weight"
  Tensor x = randn({4, 3});
  sum(lin->forward(x)).backward();  // a gradient to convert as well
  const Tensor g_before = clone(lin->weight.grad());

  CHECK(&seq.to(DType::F64) == &seq);
  for (const auto& [name, t] : seq.state_dict()) {
    INFO(name);
    CHECK(t.dtype() == DType::F64);
  }
  for (const auto& [name, p] : seq.named_parameters()) {
    INFO(name);
    CHECK(p.is_leaf());
    CHECK(p.requires_grad());
  }
  CHECK(!bn->running_mean.requires_grad());
  // The layers' own members and any other handle see the conversion.
  CHECK(lin->weight.dtype() == DType::F64);
  CHECK(bn->running_var.dtype() == DType::F64);
  CHECK(handle.dtype() == DType::F64);
  CHECK(handle.is_same(lin->weight));
  CHECK(allclose(lin->weight, cast(w_before, DType::F64)));
  CHECK(lin->weight.grad().dtype() == DType::F64);
  CHECK(allclose(lin->weight.grad(), cast(g_before, DType::F64)));

  // The converted module computes in f64 and trains.
  lin->zero_grad();
  Tensor x64 = cast(x, DType::F64);
  Tensor y = lin->forward(x64);
  CHECK(y.dtype() == DType::F64);
  CHECK(allclose(y, linear(x64, cast(w_before, DType::F64), lin->bias)));
  sum(y).backward();
  CHECK(lin->bias.grad().dtype() == DType::F64);
  check_close(lin->bias.grad(), {4, 4});
  CHECK(bn->forward(randn({2, 2, 2, 2}, {.dtype = DType::F64})).dtype() == DType::F64);

  // Back to f32; a state_dict of the new dtype loads.
  seq.to(DType::F32);
  CHECK(lin->weight.dtype() == DType::F32);
  CHECK(allclose(lin->weight, w_before));

  // Integer buffers and non-float targets.
  CHECK(contains(error_of([&] { seq.to(DType::I32); }), "Module::to: expected a floating dtype, got int32"));
  if (!cuda::is_available()) {  // nothing moves, and the refusal says why
    CHECK(contains(error_of([&] { seq.to(Device(DeviceType::CUDA, 0)); }), "cuda:0 was asked for"));
    CHECK(lin->weight.is_cpu());
  }
  CHECK(&seq.to(kCPU) == &seq);
}

TEST_CASE("layers are UnaryModules: a constructor error names the layer") {
  std::vector<std::shared_ptr<nn::UnaryModule>> layers{std::make_shared<nn::ReLU>(),
                                                       std::make_shared<nn::Dropout>(0.0)};
  Tensor x = vec({-1, 1}, {2});
  for (const auto& l : layers) x = l->forward(x);
  check_close(x, {0, 1});
  CHECK(contains(error_of([] { nn::Linear(0, 2); }), "Linear: expected positive sizes, got in=0 out=2"));
  CHECK(contains(error_of([] { nn::BatchNorm2d(0); }), "BatchNorm2d: expected channels > 0, got 0"));
}

}  // namespace pacer
