#pragma once
/// LARS (layer-wise adaptive rate scaling, You, Gitman & Ginsburg 2017) as MLPerf ResNet-50
/// v0.6 trains with it: SGD momentum whose step for each parameter tensor is scaled by a
/// trust ratio.
///
/// Reference followed: NVIDIA's MLPerf v0.6 ResNet-50 submission, class SGDwLARS in
/// mlcommons/training_results_v0.6 NVIDIA/benchmarks/resnet/implementations/mxnet/common/fit.py
/// (eta 0.001, eps 0; gamma/beta/bias skipped). Per parameter w with gradient g, for a group
/// that is not excluded:
///   trust = eta * ||w|| / (||g|| + wd * ||w|| + eps)   if ||w|| > 0 and ||g|| > 0, else 1
///   d     = trust * (g + wd * w)
/// and for a group with exclude_from_lars (batch-norm scales and shifts, biases):
///   d     = g                      (no trust ratio, no weight decay)
/// then
///   buf   = momentum * buf + d     (buf = d at the first step);   w -= lr * buf
/// (momentum 0: w -= lr * d). Norms are Euclidean over the whole tensor.
///
/// NVIDIA's code keeps v = lr * buf instead: v = momentum * (lr_t / lr_{t-1}) * v + lr_t * d;
/// w -= v, the lr ratio making a changing learning rate act as above; keeping buf needs no
/// previous lr and gives the same numbers. The MLPerf TensorFlow reference
/// (tf.contrib.opt.LARSOptimizer, skip_list ['batch_normalization', 'bias']) computes the
/// same trust ratio but applies it outside the momentum (buf = momentum * buf + g;
/// w -= lr * trust * buf) and takes weight decay from the loss; that variant is not
/// implemented.
/// State: "momentum_buffer" (only when momentum != 0).

#include "optim/optimizer.h"

namespace pacer::optim {

struct LarsOptions {
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 0;
  /// The LARS coefficient.
  double eta = 0.001;
  /// Added to the trust ratio's denominator (NVIDIA's lars_eps).
  double epsilon = 0;
  /// Plain SGD momentum for this group: no trust ratio and no weight decay, so its
  /// weight_decay must be 0 (checked, so that a nonzero one is not silently ignored).
  bool exclude_from_lars = false;

  std::vector<Setting> settings();
  void check(const std::string& who) const;
};

class Lars final : public TypedOptimizer<LarsOptions> {
 public:
  Lars(std::vector<Tensor> params, LarsOptions options);
  explicit Lars(const std::vector<ParamGroup<LarsOptions>>& groups);
  void update() override;
  bool supports_lr_tensors() const override { return true; }
};

}  // namespace pacer::optim
