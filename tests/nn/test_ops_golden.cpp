// Ops against PyTorch goldens (tests/golden/ops.safetensors, written by
// tests/golden/make_ops_golden.py with torch 1.13): the forward result and every input /
// weight gradient of loss = sum(out * r) for a fixed random r, in f64 within 1e-10, for
// conv2d (stride + padding, groups + dilation, a channels-last input), conv_transpose2d,
// batch_norm (training with its running-buffer update, and evaluation), the losses
// (cross_entropy with label smoothing and ignored targets, smooth_l1, bce_with_logits
// with pos_weight, mse), layer_norm, pooling, nearest upsampling and adaptive average
// pooling. (Lives with the nn tests because it reads the file with nn::load_safetensors.)
#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nn/safetensors.h"

namespace pacer {

namespace {

constexpr double kTol = 1e-10;

using Inputs = std::map<std::string, Tensor>;

const std::map<std::string, Tensor>& golden() {
  static const std::map<std::string, Tensor> g = [] {
    std::map<std::string, Tensor> m;
    for (auto& [name, t] : nn::load_safetensors(std::string(PACER_GOLDEN_DIR) + "/ops.safetensors")) m[name] = t;
    return m;
  }();
  return g;
}

const Tensor& G(const std::string& name) {
  auto it = golden().find(name);
  REQUIRE_MESSAGE(it != golden().end(), "golden tensor " << name << " missing");
  return it->second;
}

// Largest |got - want| (shapes must agree); PACER_GOLDEN_VERBOSE=1 prints it.
void check_close(const std::string& what, const Tensor& got, const Tensor& want) {
  INFO(what);
  REQUIRE(got.defined());
  REQUIRE(got.dtype() == DType::F64);
  REQUIRE(got.sizes() == want.sizes());
  const std::vector<double> a = got.to_vector<double>(), b = want.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  if (std::getenv("PACER_GOLDEN_VERBOSE") != nullptr) std::printf("%-32s max error %.3g\n", what.c_str(), worst);
  CHECK_MESSAGE(worst <= kTol, what << ": max error " << worst << " > " << kTol);
}

// A leaf copy of a golden tensor that requires grad.
Tensor leaf(const Tensor& t) {
  Tensor c = clone(t);
  c.set_requires_grad(true);
  return c;
}

// Case `prefix`: the inputs named in `grads` become leaves that require grad, the others
// are passed as stored; runs `fn`, compares its result with prefix.out, then backward of
// sum(out * r) and every gradient with prefix.grad.<name>.
void check_case(const std::string& prefix, const std::vector<std::string>& grads,
                const std::vector<std::string>& others,
                const std::function<Tensor(Inputs&)>& fn) {
  Inputs in;
  for (const auto& n : grads) in[n] = leaf(G(prefix + "." + n));
  for (const auto& n : others) in[n] = G(prefix + "." + n);
  Tensor out = fn(in);
  check_close(prefix + ".out", out, G(prefix + ".out"));
  sum(out * G(prefix + ".r")).backward();
  for (const auto& n : grads) check_close(prefix + ".grad." + n, in.at(n).grad(), G(prefix + ".grad." + n));
}

}  // namespace

TEST_CASE("ops golden: conv2d (stride 2 + padding 1, groups 2 + dilation 2, channels-last input)") {
  check_case("conv_s2p1", {"x", "weight", "bias"}, {}, [](Inputs& in) {
    return conv2d(in["x"], in["weight"], in["bias"], {2, 2}, {1, 1});
  });
  check_case("conv_g2d2", {"x", "weight", "bias"}, {}, [](Inputs& in) {
    return conv2d(in["x"], in["weight"], in["bias"], {1, 1}, {1, 0}, {2, 2}, 2);
  });

  // The same values laid out NHWC: a leaf whose strides are channels-last.
  Tensor x = detach(permute(contiguous(permute(G("conv_cl.x"), {0, 2, 3, 1})), {0, 3, 1, 2}));
  x.set_requires_grad(true);
  REQUIRE(!x.is_contiguous());
  REQUIRE(x.strides() == Shape{60, 1, 12, 3});
  Tensor w = leaf(G("conv_cl.weight")), b = leaf(G("conv_cl.bias"));
  Tensor out = conv2d(x, w, b, {1, 1}, {1, 1});
  check_close("conv_cl.out", out, G("conv_cl.out"));
  sum(out * G("conv_cl.r")).backward();
  check_close("conv_cl.grad.x", x.grad(), G("conv_cl.grad.x"));
  check_close("conv_cl.grad.weight", w.grad(), G("conv_cl.grad.weight"));
  check_close("conv_cl.grad.bias", b.grad(), G("conv_cl.grad.bias"));
}

TEST_CASE("ops golden: conv_transpose2d (stride 2, padding 1, output_padding 1, groups 2)") {
  check_case("convt", {"x", "weight", "bias"}, {}, [](Inputs& in) {
    return conv_transpose2d(in["x"], in["weight"], in["bias"], {2, 2}, {1, 1}, {1, 1}, {1, 1}, 2);
  });
}

TEST_CASE("ops golden: batch_norm in training (batch statistics, running update) and in eval") {
  for (bool training : {true, false}) {
    const std::string p = training ? "bn_train" : "bn_eval";
    Tensor rm = clone(G(p + ".running_mean")), rv = clone(G(p + ".running_var"));
    check_case(p, {"x", "weight", "bias"}, {}, [&](Inputs& in) {
      return batch_norm(in["x"], in["weight"], in["bias"], rm, rv, training, 0.1, 1e-5);
    });
    check_close(p + ".running_mean_after", rm, G(p + ".running_mean_after"));
    check_close(p + ".running_var_after", rv, G(p + ".running_var_after"));
  }
}

TEST_CASE("ops golden: losses (cross_entropy, smooth_l1, bce_with_logits, mse)") {
  // label_smoothing 0.1, mean over the targets not ignored: -100 (default) twice in ce,
  // class 2 as ignore_index four times in ce_spatial ([N, C, d] logits).
  check_case("ce", {"logits"}, {"target"}, [](Inputs& in) {
    return cross_entropy(in["logits"], in["target"], "mean", -100, 0.1);
  });
  check_case("ce_spatial", {"logits"}, {"target"}, [](Inputs& in) {
    return cross_entropy(in["logits"], in["target"], "mean", 2, 0.1);
  });
  check_case("smooth_l1", {"x", "y"}, {}, [](Inputs& in) { return smooth_l1_loss(in["x"], in["y"], "mean", 0.5); });
  check_case("bce", {"x", "y"}, {"pos_weight"}, [](Inputs& in) {
    return bce_with_logits(in["x"], in["y"], in["pos_weight"], "mean");
  });
  check_case("mse", {"x", "y"}, {}, [](Inputs& in) { return mse_loss(in["x"], in["y"], "mean"); });
}

TEST_CASE("ops golden: layer_norm over the last two dims with weight and bias") {
  check_case("layer_norm", {"x", "weight", "bias"}, {}, [](Inputs& in) {
    return layer_norm(in["x"], {4, 5}, in["weight"], in["bias"], 1e-5);
  });
}

TEST_CASE("ops golden: max_pool2d and avg_pool2d (kernel 3, stride 2, padding 1)") {
  check_case("max_pool", {"x"}, {}, [](Inputs& in) {
    auto [values, indices] = max_pool2d_with_indices(in["x"], {3, 3}, {2, 2}, {1, 1});
    REQUIRE(indices.dtype() == DType::I64);
    const bool same = indices.to_vector<int64_t>() == G("max_pool.indices").to_vector<int64_t>();
    CHECK_MESSAGE(same, "max_pool.indices differ from torch's");
    return values;
  });
  check_case("avg_pool", {"x"}, {}, [](Inputs& in) { return avg_pool2d(in["x"], {3, 3}, {2, 2}, {1, 1}); });
}

TEST_CASE("ops golden: upsample nearest to an explicit size ([4, 5] -> [7, 3])") {
  check_case("upsample", {"x"}, {}, [](Inputs& in) { return upsample_nearest2d(in["x"], {7, 3}); });
}

TEST_CASE("ops golden: adaptive_avg_pool2d to a non-divisible size ([7, 5] -> [3, 4])") {
  check_case("adaptive", {"x"}, {}, [](Inputs& in) { return adaptive_avg_pool2d(in["x"], {3, 4}); });
}

}  // namespace pacer
