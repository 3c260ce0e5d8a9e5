#pragma once
/// OpDef: the one declaration of an op (DESIGN §3): name, tags, shape/dtype inference with
/// its checks, autocast policy, backward (or not_differentiable), per-device kernels, or a
/// decomposition into other ops.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ops/attrs.h"

namespace pacer::ops {

enum Tag : uint32_t {
  kPointwise = 1u << 0,
  kReduction = 1u << 1,
  kView = 1u << 2,       // outputs alias input 0; the kernel builds them
  kInplace = 1u << 3,    // output 0 is input 0, modified
  kFactory = 1u << 4,    // no tensor inputs
  kRandom = 1u << 5,
  kShape = 1u << 6,
  kLinalg = 1u << 7,
  // Output sizes depend on the data (nonzero): infer fills only dtype and device, the
  // dispatcher allocates nothing, and the kernel sets c.outputs itself (as for kView).
  kDynamicShape = 1u << 8,
  // Inputs may live on different devices (copy_, to_device): the dispatcher skips its
  // one-device check and infer picks the kernel's device.
  kCrossDevice = 1u << 9,
  // Kernels exist only for some devices (cudnn_lstm: CUDA); the public function that uses
  // the op routes around it elsewhere. The registry self-test asks such an op for a kernel
  // only on CUDA, in builds that have it.
  kDeviceSpecific = 1u << 10,
};

/// Autocast policy (applied by the autocast layer of a later issue).
enum class AmpPolicy : uint8_t { None, Lower, Fp32, Promote };

struct TensorMeta {
  Shape sizes;
  DType dtype = DType::F32;
  Device device = kCPU;
  /// Element strides of the output the dispatcher allocates; empty means contiguous. Set
  /// to keep a channels-last (NHWC) layout flowing through conv and pointwise ops on CUDA.
  Shape strides = {};
};

struct OpDef;

/// Arguments of one forward call as the op's functions see them.
struct OpCall {
  const OpDef& op;
  std::vector<Tensor> inputs;
  Attrs attrs;                          // infer may normalize them (e.g. wrap dims)
  std::vector<TensorMeta> output_meta;  // filled by infer
  std::vector<Tensor> outputs;          // allocated by the dispatcher (or by view/inplace kernels)
  Device device = kCPU;                 // where the kernel runs

  const Tensor& in(size_t i) const { return inputs[i]; }
  Tensor& out(size_t i) { return outputs[i]; }
};

/// Arguments of one backward call.
struct GradCall {
  const Attrs& attrs;
  std::vector<Tensor> inputs;       // saved inputs (undefined when not saved)
  std::vector<Tensor> outputs;      // saved outputs (undefined when not saved)
  std::vector<TensorMeta> input_meta;
  std::vector<Tensor> grads;        // one per output; zeros where no gradient arrived
  std::vector<bool> needs_input_grad;

  const Tensor& grad(size_t i = 0) const { return grads[i]; }
  bool needs(size_t i) const { return i < needs_input_grad.size() && needs_input_grad[i]; }
};

using InferFn = void (*)(OpCall&);
using KernelFn = void (*)(OpCall&);
using BackwardFn = std::vector<Tensor> (*)(const GradCall&);
using DecomposeFn = std::vector<Tensor> (*)(const std::vector<Tensor>&, const Attrs&);

struct OpDef {
  std::string name;
  uint32_t tags = 0;
  AmpPolicy amp = AmpPolicy::None;
  InferFn infer = nullptr;
  BackwardFn backward = nullptr;
  /// Set for ops with no gradient (comparisons, argmax, factories, integer outputs).
  bool not_differentiable = false;
  /// Bit i set: input i (output i) is saved for backward.
  uint32_t save_inputs = 0;
  uint32_t save_outputs = 0;
  /// kInplace ops: the inputs the kernel writes. Bit i: input i (output 0 is input 0, which
  /// every in-place op writes); with writes_from >= 0, every input from that one on too (a
  /// variadic list updated in place, as amp_unscale_'s gradients).
  uint32_t writes = 1;
  int writes_from = -1;
  /// Composite ops give only this: no kernels, no backward.
  DecomposeFn decompose = nullptr;
  KernelFn kernels[kNumDeviceTypes] = {nullptr, nullptr};

  bool has(Tag t) const { return (tags & t) != 0; }
  /// The inputs a call with `num_inputs` inputs writes (none unless kInplace).
  std::vector<int> written_inputs(size_t num_inputs) const {
    std::vector<int> out;
    if (!has(kInplace)) return out;
    for (size_t i = 0; i < num_inputs; ++i)
      if ((i < 32 && (writes >> i & 1u)) || (writes_from >= 0 && i >= size_t(writes_from))) out.push_back(int(i));
    return out;
  }
};

inline constexpr uint32_t kAll = 0xffffffffu;

}  // namespace pacer::ops
