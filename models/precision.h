#pragma once
/// Precision modes of `pacer train --precision`, named as PyTorch Lightning users know them,
/// and what each means for a training step (DESIGN §6):
///   "32"          f32 everything (alias "32-true");
///   "16-mixed"    autocast to f16 + dynamic loss scaling; f32 parameters;
///   "bf16-mixed"  autocast to bf16, no loss scaling (bf16 has f32's range);
///   "16-O2"       NVIDIA apex's O2: f16 model and activations, batch norm kept in f32,
///                 f32 master weights in the optimizer, dynamic loss scaling.

#include <string>

#include "core/dtype.h"
#include "nn/module.h"

namespace pacer::models {

enum class Precision { F32, Mixed16, MixedBF16, O2F16 };

/// Parses a mode name; throws pacer::Error listing the valid names.
Precision parse_precision(const std::string& name);
const char* precision_name(Precision p);

struct PrecisionPlan {
  bool autocast = false;        // run forward + loss under AutocastGuard(lower)
  DType lower = DType::F32;     // the half type of autocast / of the model
  bool loss_scaling = false;    // LossScaler around backward and step
  bool half_model = false;      // parameters (except norms) and inputs in `lower`
  bool master_weights = false;  // the optimizer keeps f32 masters
};

PrecisionPlan plan_for(Precision p);

/// True for the normalization layers O2 keeps in f32 (BatchNorm2d, FrozenBatchNorm2d,
/// LayerNorm).
bool is_norm_layer(const nn::Module& m);

}  // namespace pacer::models
