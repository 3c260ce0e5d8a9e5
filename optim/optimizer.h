#pragma once
/// Optimizer: updates parameters from their .grad(), in place and without recording
/// history, as torch.optim does. Parameters come in groups, each with its own options
/// (torch's param_groups); the constructors that take one parameter list make one group.
///
/// Checkpoints: state_dict() is a flat list of (name, Tensor) pairs that
/// nn::save_safetensors can write next to the model's weights:
///   "state.<i>.<slot>"          per-parameter state, i numbering the parameters of all
///                               groups in order (as torch), e.g. "state.3.exp_avg";
///                               a slot named "step" is an i64 scalar, every other slot has
///                               its parameter's shape and dtype;
///   "param_groups.<g>.<option>" each group's options as 0-d f64 / bool tensors
///                               ("param_groups.0.lr"; Adam's betas are f64 [2]);
///   "param_groups.<g>.params"   i64 [n], the indices of the group's parameters.
/// The state tensors are the optimizer's own (not copies), as in PyTorch: write them out
/// before the next step().

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/tensor.h"

namespace pacer::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// A group of parameters and the options they are updated with.
template <class Options>
struct ParamGroup {
  std::vector<Tensor> params;
  Options options;
};

/// One setting of an options struct as state_dict stores it: its name and where it lives.
/// Optimizers and LR schedules share it, so that both save and validate settings alike.
struct Setting {
  std::string name;
  std::variant<double*, int64_t*, bool*, std::array<double, 2>*, std::vector<int64_t>*> value;
};

namespace detail {
/// The tensor a setting is saved as: 0-d f64 / i64 / bool, f64 [2], or i64 [n].
Tensor setting_to_tensor(const Setting& s);
/// Throws naming `who` and `key` unless `t` has the dtype and shape that `s` is saved as
/// (any length for a list setting).
void check_setting_tensor(const std::string& who, const std::string& key, const Tensor& t, const Setting& s);
/// Writes the value of `t` (checked by check_setting_tensor) into the setting.
void load_setting(const Setting& s, const Tensor& t);
/// `state` by name, throwing naming `who` and the key on an undefined tensor or a key
/// that appears twice.
std::map<std::string, Tensor> by_name(const std::string& who, const NamedTensors& state);
}  // namespace detail

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update from the current gradients (parameters without a gradient are skipped).
  /// With a found-inf flag set (set_found_inf), a non-zero flag makes it a no-op: on the
  /// CPU the flag is read; on CUDA it is not (no host sync): the update runs and is undone
  /// on the device where the flag is set (state first created by a skipped step stays as
  /// zeros rather than absent).
  void step();
  /// Drops every gradient (PyTorch's zero_grad(set_to_none=True)), the masters' too.
  void zero_grad();

  /// The loss scaler's overflow flag (f32, one element, on the parameters' device) that the
  /// next steps obey; an undefined tensor clears it.
  void set_found_inf(const Tensor& flag) { found_inf_ = flag; }

  /// O2 mixed precision (NVIDIA apex's O2): every f16 / bf16 parameter gets an f32 master
  /// copy; step() updates the masters from the gradients (cast to f32) and writes them back
  /// rounded. The optimizer state is f32 (the masters'). Call before the first step; the
  /// masters are saved in state_dict as "master.<i>".
  void use_master_weights();
  bool has_master_weights() const { return !masters_.empty(); }
  /// The tensor the optimizer updates for parameter i: its f32 master, or the parameter.
  const Tensor& updated_param(size_t i) const { return params_[i]; }
  /// The model's parameters (what the constructor got), in params() order.
  const std::vector<Tensor>& model_params() const { return model_params_; }

  /// Every parameter, group after group (the numbering of the "state.<i>" keys); with
  /// master weights, the f32 masters of the half ones.
  const std::vector<Tensor>& params() const { return params_; }
  size_t num_groups() const { return group_start_.size() - 1; }
  /// The learning rate of one group, and setters for all groups or one (what an LR
  /// schedule drives between steps).
  virtual double lr(size_t group = 0) const = 0;
  virtual void set_lr(double lr) = 0;
  virtual void set_group_lr(size_t group, double lr) = 0;
  /// For graph capture (ops/graph): every group's learning rate enters the update as a 0-d
  /// tensor on the parameters' device, kept equal to lr(g) by set_lr / set_group_lr (and
  /// by step(), for changes made through options()), instead of as a number a captured
  /// step would keep forever. Replays then follow an LR schedule that calls set_lr between
  /// steps. SGD and LARS support it; the others refuse.
  void use_lr_tensors();
  bool uses_lr_tensors() const { return !neg_lr_.empty(); }
  /// "SGD", "Adam", "AdamW", "LARS": the prefix of this optimizer's error messages.
  const std::string& name() const { return name_; }

  NamedTensors state_dict() const;
  /// Replaces the options of every group and the per-parameter state by `state` (copied).
  /// Every key must be known and every setting present, each tensor must have the
  /// expected dtype and shape, a parameter's slots come all together or not at all, and
  /// the options must be valid; otherwise it throws pacer::Error naming the key, and the
  /// optimizer is left as it was.
  void load_state_dict(const NamedTensors& state);

 protected:
  /// `groups`: each group's parameters (leaf tensors that require grad, none twice);
  /// `state_slots`: the names of the per-parameter state ("momentum_buffer", ...).
  Optimizer(std::string name, const std::vector<std::vector<Tensor>>& groups, std::vector<std::string> state_slots);

  /// Parameters params_[group_begin(g)] .. params_[group_end(g) - 1] form group g.
  size_t group_begin(size_t g) const { return group_start_[g]; }
  size_t group_end(size_t g) const { return group_start_[g + 1]; }
  /// Slot `slot` (an index into the state_slots given to the constructor) of parameter i;
  /// undefined until the optimizer first sets it.
  Tensor& state(size_t i, size_t slot) { return state_[i][slot]; }
  /// "SGD" for a single group, "SGD parameter group 2" otherwise: names a group in errors.
  std::string who(size_t group) const;

  /// The update itself, from params_[i].grad() (step() handles skipping and masters).
  virtual void update() = 0;
  /// The options of group g as named settings (read by state_dict, written by load).
  virtual std::vector<Setting> settings(size_t group) = 0;
  /// Throws pacer::Error when the options of a group are invalid.
  virtual void check_options() const = 0;
  /// Whether update() reads neg_lr_tensor (use_lr_tensors is refused otherwise).
  virtual bool supports_lr_tensors() const { return false; }
  /// -lr of group g as a 0-d tensor (with use_lr_tensors), else undefined.
  const Tensor& neg_lr_tensor(size_t g) const;
  /// Brings the LR tensors to -lr(g) where they differ (nothing when they are not used).
  void sync_lr_tensors();

  std::vector<Tensor> params_;

 private:
  void run_update();
  void step_without_sync();
  std::vector<Tensor> model_params_;
  std::vector<bool> masters_;  // per parameter: params_[i] is an f32 master (empty: none)
  Tensor found_inf_;
  std::vector<Tensor> neg_lr_;        // per group, with use_lr_tensors
  std::vector<double> neg_lr_value_;  // what each holds
  std::string name_;
  std::vector<size_t> group_start_;  // num_groups() + 1 offsets into params_
  std::vector<std::string> slots_;
  std::vector<std::vector<Tensor>> state_;  // [parameter][slot]
};

/// The part of an optimizer that knows its options type: one Options per group. Options
/// structs provide `std::vector<Setting> settings()` and `void check(const std::string&
/// who) const`, and have a field `lr`.
template <class Options>
class TypedOptimizer : public Optimizer {
 public:
  /// The options of a group (by default the first, which is all there is for an optimizer
  /// built from one parameter list). Changes apply from the next step().
  Options& options(size_t group = 0) {
    check_group(group);
    return options_[group];
  }
  const Options& options(size_t group = 0) const {
    check_group(group);
    return options_[group];
  }

  double lr(size_t group = 0) const override { return options(group).lr; }
  void set_lr(double lr) override {
    for (Options& o : options_) o.lr = lr;
    sync_lr_tensors();
  }
  void set_group_lr(size_t group, double lr) override {
    options(group).lr = lr;
    sync_lr_tensors();
  }

 protected:
  TypedOptimizer(std::string name, const std::vector<ParamGroup<Options>>& groups, std::vector<std::string> state_slots)
      : Optimizer(std::move(name), params_of(groups), std::move(state_slots)) {
    for (const ParamGroup<Options>& g : groups) options_.push_back(g.options);
    TypedOptimizer::check_options();
  }

  std::vector<Setting> settings(size_t group) override { return options_[group].settings(); }
  void check_options() const override {
    for (size_t g = 0; g < options_.size(); ++g) options_[g].check(who(g));
  }

  std::vector<Options> options_;

 private:
  void check_group(size_t group) const {
    PACER_CHECK(group < options_.size(), "{}: no parameter group {} (there are {})", name(), group, options_.size());
  }
  static std::vector<std::vector<Tensor>> params_of(const std::vector<ParamGroup<Options>>& groups) {
    std::vector<std::vector<Tensor>> out;
    for (const ParamGroup<Options>& g : groups) out.push_back(g.params);
    return out;
  }
};

}  // namespace pacer::optim
