#include "models/precision.h"

#include "nn/batch_norm.h"
#include "nn/frozen_batch_norm.h"
#include "nn/layer_norm.h"

namespace pacer::models {

Precision parse_precision(const std::string& name) {
  if (name == "32" || name == "32-true") return Precision::F32;
  if (name == "16-mixed") return Precision::Mixed16;
  if (name == "bf16-mixed") return Precision::MixedBF16;
  if (name == "16-O2") return Precision::O2F16;
  PACER_FAIL("unknown precision '{}': expected 32, 16-mixed, bf16-mixed or 16-O2", name);
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::F32: return "32";
    case Precision::Mixed16: return "16-mixed";
    case Precision::MixedBF16: return "bf16-mixed";
    case Precision::O2F16: return "16-O2";
  }
  return "?";
}

PrecisionPlan plan_for(Precision p) {
  switch (p) {
    case Precision::F32: return {};
    case Precision::Mixed16: return {.autocast = true, .lower = DType::F16, .loss_scaling = true};
    case Precision::MixedBF16: return {.autocast = true, .lower = DType::BF16};
    case Precision::O2F16:
      return {.lower = DType::F16, .loss_scaling = true, .half_model = true, .master_weights = true};
  }
  return {};
}

bool is_norm_layer(const nn::Module& m) {
  return dynamic_cast<const nn::BatchNorm2d*>(&m) || dynamic_cast<const nn::FrozenBatchNorm2d*>(&m) ||
         dynamic_cast<const nn::LayerNorm*>(&m);
}

}  // namespace pacer::models
