#pragma once
/// Module: a named tree of parameters, buffers and child modules, as torch.nn.Module.
/// Names are PyTorch's dotted state_dict names ("fc1.weight"), so weights map 1:1.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace pacer::nn {

/// The keys load_state_dict did not match (with strict=false).
struct LoadResult {
  std::vector<std::string> missing;     ///< in the module, absent from the state
  std::vector<std::string> unexpected;  ///< in the state, absent from the module
};

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// All parameters with dotted names, in registration order (children after own).
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  /// Parameters and buffers by dotted name.
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  /// Copies `state` into the parameters and buffers of the same names, in place and
  /// without autograd history. Shapes and dtypes must match exactly, or it throws naming
  /// the key, what was expected and what arrived (as PyTorch, even with strict=false).
  /// strict=true throws listing every missing and unexpected key; strict=false loads the
  /// keys that match and returns the others. Nothing is copied when it throws.
  LoadResult load_state_dict(const std::vector<std::pair<std::string, Tensor>>& state, bool strict = true);

  /// Training / evaluation mode (affects dropout and batch norm in later layers).
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Drops every parameter's gradient (PyTorch's set_to_none=True).
  void zero_grad();

  /// Converts every parameter and buffer (children included) to `dtype`, as torch's
  /// Module.to(dtype): floating tensors only (integer buffers keep their dtype). The
  /// conversion happens in place of each tensor, so every handle to it (a layer's
  /// `weight` member as well as state_dict()) sees the new dtype; parameters stay leaves
  /// that require grad, and an existing gradient is converted too. Returns *this.
  Module& to(DType dtype);
  /// to(dtype) for every module except those `keep` accepts (their subtree keeps its
  /// dtype): O2 mixed precision converts a model to f16 but keeps batch norm in f32.
  Module& to(DType dtype, const std::function<bool(const Module&)>& keep);
  /// Moves every parameter and buffer (and gradient) to `device`, in place like to(dtype).
  /// A CUDA device needs the CUDA backend and a GPU, or it throws saying which is missing.
  Module& to(Device device);

 protected:
  /// Registers a parameter (made a leaf that requires grad) and returns it.
  Tensor& register_parameter(std::string name, Tensor value);
  Tensor& register_buffer(std::string name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> m) {
    children_.emplace_back(std::move(name), m);
    return m;
  }

 private:
  void collect(const std::string& prefix, bool with_buffers, std::vector<std::pair<std::string, Tensor>>& out) const;
  void collect_kept(const std::function<bool(const Module&)>& keep, const std::string& prefix,
                    std::vector<std::pair<std::string, Tensor>>& out) const;
  Module& convert(const std::function<bool(const Tensor&)>& wants, const std::function<Tensor(const Tensor&)>& make,
                  const std::function<bool(const Module&)>& keep);

  std::vector<std::pair<std::string, Tensor>> params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

/// A module with one input and one output: the layers Sequential can chain.
class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) const = 0;
};

}  // namespace pacer::nn
