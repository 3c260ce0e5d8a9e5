#pragma once
/// ResNet (He et al. 2015) as torchvision builds it: ResNet-18/34 from BasicBlocks,
/// ResNet-50/101/152 from v1.5 Bottlenecks (the stride-2 on the 3x3 conv of a stage's first
/// block, MLPerf's ResNet-50 v1.5). Parameter and buffer names equal torchvision's
/// `resnet50().state_dict()` keys (conv1.weight, bn1.*, layer1.0.conv1.weight,
/// layer1.0.downsample.0.weight, layer1.0.downsample.1.*, fc.weight, fc.bias), except
/// that Pacer's BatchNorm2d has no `num_batches_tracked` buffer; so torchvision weights
/// exported to safetensors load unchanged (drop those keys, or load with strict=false).
///
/// Initialization is torchvision's: convolutions kaiming-normal with fan_out and the ReLU
/// gain, batch norm weight 1 and bias 0, the FC layer Linear's default (uniform in
/// +-1/sqrt(in_features)); zero_init_residual sets the last BN weight of every block to 0.

#include <memory>
#include <vector>

#include "models/image_classifier.h"
#include "nn/batch_norm.h"
#include "nn/conv2d.h"
#include "nn/linear.h"
#include "nn/sequential.h"

namespace pacer::models {

struct ResNetOptions {
  int depth = 50;              ///< 18, 34 (BasicBlock), 50, 101 or 152 (Bottleneck)
  int64_t num_classes = 1000;  ///< outputs of the FC layer
  bool zero_init_residual = false;  ///< torchvision's flag: each block starts as the identity
};

/// 3x3 conv-BN-ReLU, 3x3 conv-BN, + shortcut, ReLU. Output channels = planes.
class BasicBlock : public nn::UnaryModule {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t in_channels, int64_t planes, int64_t stride, bool zero_init_residual);
  Tensor forward(const Tensor& x) const override;

  std::shared_ptr<nn::Conv2d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2;
  std::shared_ptr<nn::Sequential> downsample;  ///< 1x1 conv + BN, or null for the identity
};

/// v1.5 bottleneck: 1x1 conv-BN-ReLU, 3x3 conv (carrying the stride)-BN-ReLU, 1x1 conv
/// (x4 channels)-BN, + shortcut, ReLU. Output channels = 4 * planes.
class Bottleneck : public nn::UnaryModule {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t in_channels, int64_t planes, int64_t stride, bool zero_init_residual);
  Tensor forward(const Tensor& x) const override;

  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm2d> bn1, bn2, bn3;
  std::shared_ptr<nn::Sequential> downsample;  ///< 1x1 conv + BN, or null for the identity
};

/// Stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool with padding 1), four stages layer1..layer4
/// (widths 64/128/256/512 times the block's expansion; stages 2-4 start at stride 2),
/// global average pool, FC. Any image size works (the same architecture trains at 32x32).
class ResNet : public ImageClassifier {
 public:
  /// Throws for a depth other than 18, 34, 50, 101, 152 or num_classes < 1.
  explicit ResNet(ResNetOptions options = {});
  /// Logits [N, num_classes] for images [N, 3, H, W] (floating point).
  Tensor forward(const Tensor& x) const override;
  /// The stem's output (after the max-pool): [N, 64, H/4, W/4], the input of layer(1).
  Tensor forward_stem(const Tensor& x) const;

  /// Stage i in 1..4 (a Sequential of blocks), for backbones such as SSD's ResNet-34.
  const std::shared_ptr<nn::Sequential>& layer(int i) const;
  const ResNetOptions& options() const { return options_; }
  /// Channels layer4 produces (512 for ResNet-18/34, 2048 for ResNet-50 and deeper).
  int64_t feature_channels() const { return fc_->weight.size(1); }

 private:
  ResNetOptions options_;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::BatchNorm2d> bn1_;
  std::vector<std::shared_ptr<nn::Sequential>> layers_;
  std::shared_ptr<nn::Linear> fc_;
};

}  // namespace pacer::models
