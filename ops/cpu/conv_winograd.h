#pragma once
/// Winograd F(4x4, 3x3) convolutions on the CPU (ops/cpu/conv_winograd.cpp): the forward,
/// input gradient and weight gradient of 3x3, stride-1, undilated, ungrouped f32 / f64
/// convolutions with a quarter of the direct method's multiply-adds. ops/cpu/conv.cpp sends
/// the problems `use_winograd` accepts here.

#include <atomic>
#include <cstdint>
#include <functional>

#include "core/tensor.h"

namespace pacer::ops::cpu::winograd {

/// x [N, C, H, W] (*) w [K, C, 3, 3] -> y [N, K, OH, OW], stride 1, padding (ph, pw).
struct Problem {
  int64_t N, C, H, W, K, OH, OW, ph, pw;
};

/// Off: never. Auto (default): where it pays (channel counts; see kMinChannels and
/// kMaxFilterBytes in the .cpp).
/// Always: every problem the algorithm can take (for tests). PACER_CONV_WINOGRAD=0 / 1 / 2
/// sets Off / Auto / Always at start-up.
enum class Mode { Off, Auto, Always };
Mode mode();
void set_mode(Mode m);

/// True when the problem (3x3, stride 1, dilation 1, groups 1, padding <= 2, f32 / f64) goes
/// through Winograd under the current mode.
bool use_winograd(const Problem& p, DType dtype);

/// y = conv(x, w) (+ bias[k] when bias is defined), then after_images(0, N) when given (the
/// im2col path's contract, images in order, with one round for the batch).
void forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Problem& p, Tensor& y,
             const std::function<void(int64_t, int64_t)>& after_images);
/// dx = the gradient of conv(x, w) w.r.t. x for the incoming gradient dy (dx is overwritten).
void input_grad(const Tensor& dy, const Tensor& w, const Problem& p, Tensor& dx);
/// dw = the gradient w.r.t. w (dw is overwritten).
void weight_grad(const Tensor& dy, const Tensor& x, const Problem& p, Tensor& dw);

/// How many forward / input-gradient / weight-gradient calls took this path (tests check
/// that a shape engaged it).
struct Calls {
  std::atomic<int64_t> forward{0}, input_grad{0}, weight_grad{0};
};
Calls& calls();

}  // namespace pacer::ops::cpu::winograd
