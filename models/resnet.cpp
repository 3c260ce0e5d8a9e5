#include "models/resnet.h"

#include "nn/init.h"
#include "ops/api.h"

namespace pacer::models {

namespace {

// A bias-free convolution with torchvision's ResNet init: kaiming_normal_(mode="fan_out",
// nonlinearity="relu"). Conv2d's constructor has drawn its default init already; it is
// overwritten here, which costs one extra draw per weight at construction only.
std::shared_ptr<nn::Conv2d> conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  auto c = std::make_shared<nn::Conv2d>(in, out,
                                        nn::Conv2dOptions{.kernel = {kernel, kernel},
                                                          .stride = {stride, stride},
                                                          .padding = {padding, padding},
                                                          .bias = false});
  nn::init::kaiming_normal_(c->weight, 0, nn::init::FanMode::FanOut, "relu");
  return c;
}

// The projection shortcut when the shape changes: 1x1 conv with the block's stride + BN.
std::shared_ptr<nn::Sequential> projection(int64_t in, int64_t out, int64_t stride) {
  if (stride == 1 && in == out) return nullptr;
  return std::make_shared<nn::Sequential>(
      std::initializer_list<std::shared_ptr<nn::UnaryModule>>{conv(in, out, 1, stride, 0),
                                                              std::make_shared<nn::BatchNorm2d>(out)});
}

Tensor shortcut(const std::shared_ptr<nn::Sequential>& downsample, const Tensor& x) {
  return downsample ? downsample->forward(x) : x;
}

struct Arch {
  bool bottleneck;
  std::vector<int> blocks;  // per stage
};

Arch arch_of(int depth) {
  switch (depth) {
    case 18: return {false, {2, 2, 2, 2}};
    case 34: return {false, {3, 4, 6, 3}};
    case 50: return {true, {3, 4, 6, 3}};
    case 101: return {true, {3, 4, 23, 3}};
    case 152: return {true, {3, 8, 36, 3}};
    default: PACER_FAIL("ResNet: unsupported depth {}: expected 18, 34, 50, 101 or 152", depth);
  }
}

}  // namespace

BasicBlock::BasicBlock(int64_t in, int64_t planes, int64_t stride, bool zero_init_residual) {
  // Registration order is torchvision's attribute order, which fixes the state_dict order.
  conv1 = register_module("conv1", conv(in, planes, 3, stride, 1));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(planes));
  if (auto d = projection(in, planes * kExpansion, stride)) downsample = register_module("downsample", d);
  if (zero_init_residual) nn::init::zeros_(bn2->weight);
}

Tensor BasicBlock::forward(const Tensor& x) const {
  Tensor h = relu(bn1->forward(conv1->forward(x)));
  h = bn2->forward(conv2->forward(h));
  return relu(add(h, shortcut(downsample, x)));
}

Bottleneck::Bottleneck(int64_t in, int64_t planes, int64_t stride, bool zero_init_residual) {
  // Registration order is torchvision's attribute order, which fixes the state_dict order.
  conv1 = register_module("conv1", conv(in, planes, 1, 1, 0));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm2d>(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3, stride, 1));  // v1.5: stride here
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm2d>(planes));
  conv3 = register_module("conv3", conv(planes, planes * kExpansion, 1, 1, 0));
  bn3 = register_module("bn3", std::make_shared<nn::BatchNorm2d>(planes * kExpansion));
  if (auto d = projection(in, planes * kExpansion, stride)) downsample = register_module("downsample", d);
  if (zero_init_residual) nn::init::zeros_(bn3->weight);
}

Tensor Bottleneck::forward(const Tensor& x) const {
  Tensor h = relu(bn1->forward(conv1->forward(x)));
  h = relu(bn2->forward(conv2->forward(h)));
  h = bn3->forward(conv3->forward(h));
  return relu(add(h, shortcut(downsample, x)));
}

ResNet::ResNet(ResNetOptions o) : options_(o) {
  const Arch arch = arch_of(o.depth);
  PACER_CHECK(o.num_classes >= 1, "ResNet: expected num_classes >= 1, got {}", o.num_classes);
  conv1_ = register_module("conv1", conv(3, 64, 7, 2, 3));
  bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(64));
  const int64_t expansion = arch.bottleneck ? Bottleneck::kExpansion : BasicBlock::kExpansion;
  int64_t in = 64;
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = int64_t(64) << stage;
    auto layer = std::make_shared<nn::Sequential>();
    for (int b = 0; b < arch.blocks[size_t(stage)]; ++b) {
      const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
      if (arch.bottleneck)
        layer->push_back(std::make_shared<Bottleneck>(in, planes, stride, o.zero_init_residual));
      else
        layer->push_back(std::make_shared<BasicBlock>(in, planes, stride, o.zero_init_residual));
      in = planes * expansion;
    }
    layers_.push_back(register_module("layer" + std::to_string(stage + 1), layer));
  }
  fc_ = register_module("fc", std::make_shared<nn::Linear>(in, o.num_classes));
}

Tensor ResNet::forward_stem(const Tensor& x) const {
  PACER_CHECK(x.dim() == 4 && x.size(1) == 3 && x.size(2) > 0 && x.size(3) > 0 && is_floating(x.dtype()),
              "ResNet: expected floating-point images [N, 3, H, W], got shape {} ({})", x.sizes(), x.dtype());
  return max_pool2d(relu(bn1_->forward(conv1_->forward(x))), {3, 3}, {2, 2}, {1, 1});
}

Tensor ResNet::forward(const Tensor& x) const {
  Tensor h = forward_stem(x);
  for (const auto& layer : layers_) h = layer->forward(h);
  return fc_->forward(flatten(adaptive_avg_pool2d(h, {1, 1}), 1));
}

const std::shared_ptr<nn::Sequential>& ResNet::layer(int i) const {
  PACER_CHECK(i >= 1 && i <= 4, "ResNet::layer: expected a stage in 1..4, got {}", i);
  return layers_[size_t(i - 1)];
}

}  // namespace pacer::models
