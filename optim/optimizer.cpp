#include "optim/optimizer.h"

#include <fmt/format.h>

#include <set>

#include "autograd/grad_mode.h"
#include "ops/api.h"
#include "ops/graph/capture.h"

namespace pacer::optim {

namespace detail {

namespace {

// What a setting is saved as. A list setting (`list`) may have any length.
struct SettingKind {
  DType dtype;
  Shape shape;
  bool list = false;
};

SettingKind kind_of(const Setting& s) {
  struct Visitor {
    SettingKind operator()(double*) const { return {DType::F64, {}}; }
    SettingKind operator()(int64_t*) const { return {DType::I64, {}}; }
    SettingKind operator()(bool*) const { return {DType::Bool, {}}; }
    SettingKind operator()(std::array<double, 2>*) const { return {DType::F64, {2}}; }
    SettingKind operator()(std::vector<int64_t>*) const { return {DType::I64, {0}, true}; }
  };
  return std::visit(Visitor{}, s.value);
}

}  // namespace

Tensor setting_to_tensor(const Setting& s) {
  struct Visitor {
    Tensor operator()(double* v) const { return scalar_tensor(*v, DType::F64); }
    Tensor operator()(int64_t* v) const { return scalar_tensor(*v, DType::I64); }
    Tensor operator()(bool* v) const { return scalar_tensor(*v, DType::Bool); }
    Tensor operator()(std::array<double, 2>* v) const {
      return from_vector(std::vector<double>(v->begin(), v->end()), {2});
    }
    Tensor operator()(std::vector<int64_t>* v) const { return from_vector(*v, {int64_t(v->size())}); }
  };
  return std::visit(Visitor{}, s.value);
}

void check_setting_tensor(const std::string& who, const std::string& key, const Tensor& t, const Setting& s) {
  const SettingKind k = kind_of(s);
  const bool ok = t.dtype() == k.dtype && (k.list ? t.dim() == 1 : t.sizes() == k.shape);
  PACER_CHECK(ok, "{}: '{}' expected shape {} ({}), got shape {} ({})", who, key,
              k.list ? "[n]" : fmt::format("{}", k.shape), k.dtype, t.sizes(), t.dtype());
}

void load_setting(const Setting& s, const Tensor& t) {
  // Settings are read on the host; a CPU tensor is read where it is.
  const Tensor c = t.is_cpu() ? t : t.to(kCPU);
  struct Visitor {
    const Tensor& t;
    void operator()(double* v) const { *v = t.item<double>(); }
    void operator()(int64_t* v) const { *v = t.item<int64_t>(); }
    void operator()(bool* v) const { *v = t.item<bool>(); }
    void operator()(std::array<double, 2>* v) const {
      const std::vector<double> d = t.to_vector<double>();
      *v = {d[0], d[1]};
    }
    void operator()(std::vector<int64_t>* v) const { *v = t.to_vector<int64_t>(); }
  };
  std::visit(Visitor{c}, s.value);
}

std::map<std::string, Tensor> by_name(const std::string& who, const NamedTensors& state) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : state) {
    PACER_CHECK(t.defined(), "{}: value of '{}' is undefined", who, name);
    PACER_CHECK(out.emplace(name, t).second, "{}: key '{}' appears twice in the state", who, name);
  }
  return out;
}

}  // namespace detail

Optimizer::Optimizer(std::string name, const std::vector<std::vector<Tensor>>& groups,
                     std::vector<std::string> state_slots)
    : name_(std::move(name)), slots_(std::move(state_slots)) {
  PACER_CHECK(!groups.empty(), "{}: expected at least one parameter group", name_);
  std::set<const TensorImpl*> seen;
  group_start_.push_back(0);
  for (size_t g = 0; g < groups.size(); ++g) {
    for (const Tensor& p : groups[g]) {
      const size_t i = params_.size();
      PACER_CHECK(p.defined() && p.requires_grad() && p.is_leaf(),
                  "{}: parameter {} must be a leaf tensor that requires grad", name_, i);
      // A parameter in two groups would be updated twice per step (torch refuses it too).
      PACER_CHECK(seen.insert(p.impl()).second, "{}: parameter {} appears more than once in the parameter groups",
                  name_, i);
      params_.push_back(p);
    }
    group_start_.push_back(params_.size());
  }
  state_.assign(params_.size(), std::vector<Tensor>(slots_.size()));
  model_params_ = params_;
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.set_grad(Tensor());
  for (Tensor& p : model_params_) p.set_grad(Tensor());
}

void Optimizer::use_master_weights() {
  NoGradGuard no_grad;
  bool any_state = false;
  for (const auto& slots : state_)
    for (const Tensor& t : slots) any_state = any_state || t.defined();
  PACER_CHECK(!any_state, "{}: use_master_weights() must come before the first step (the state would be in the "
                          "parameters' half precision)", name_);
  if (!masters_.empty()) return;
  masters_.assign(params_.size(), false);
  for (size_t i = 0; i < params_.size(); ++i) {
    const DType dt = model_params_[i].dtype();
    if (dt != DType::F16 && dt != DType::BF16) continue;
    Tensor m = clone(cast(model_params_[i], DType::F32));
    m.set_requires_grad();
    params_[i] = m;
    masters_[i] = true;
  }
}

// The update proper: half gradients are handed to the f32 masters, and the masters are
// written back (rounded) into the model's half parameters afterwards.
void Optimizer::run_update() {
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (!masters_[i]) continue;
    const Tensor& g = model_params_[i].grad();
    params_[i].set_grad(g.defined() ? cast(g, DType::F32) : Tensor());
  }
  update();
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (!masters_[i]) continue;
    copy_(model_params_[i], params_[i]);
    params_[i].set_grad(Tensor());
  }
}

void Optimizer::use_lr_tensors() {
  PACER_CHECK(supports_lr_tensors(), "{}: the learning rate as a tensor (for graph capture) is supported by SGD and "
              "LARS only", name_);
  if (uses_lr_tensors()) return;
  for (size_t g = 0; g < num_groups(); ++g) {
    const Tensor& first = params_[group_begin(g)];
    const DType t = first.dtype() == DType::F64 ? DType::F64 : DType::F32;
    neg_lr_.push_back(full({}, -lr(g), {.dtype = t, .device = first.device()}));
    neg_lr_value_.push_back(-lr(g));
  }
}

const Tensor& Optimizer::neg_lr_tensor(size_t g) const {
  static const Tensor none;
  return g < neg_lr_.size() ? neg_lr_[g] : none;
}

void Optimizer::sync_lr_tensors() {
  NoGradGuard no_grad;
  for (size_t g = 0; g < neg_lr_.size(); ++g) {
    if (neg_lr_value_[g] == -lr(g)) continue;
    // Inside a captured step the fill would be recorded with this value, and every replay
    // would reset the rate to it.
    PACER_CHECK(!graph::detail::recording(),
                "{}: the learning rate of group {} changed through options() since the last set_lr, inside a captured "
                "step; call set_lr (or set_group_lr) before the step instead",
                name_, g);
    fill_(neg_lr_[g], -lr(g));
    neg_lr_value_[g] = -lr(g);
  }
}

void Optimizer::step() {
  NoGradGuard no_grad;
  sync_lr_tensors();  // changes made through options(); inside a captured step there are none
  if (found_inf_.defined()) {
    PACER_CHECK(found_inf_.numel() == 1, "{}: the found-inf flag must have one element, got shape {}", name_,
                found_inf_.sizes());
    // On a device, and inside a captured step (whose replays cannot read the flag on the
    // host), the skip is decided by the data; eagerly on the CPU the flag is read.
    if (!found_inf_.is_cpu() || graph::detail::recording()) return step_without_sync();
    if (found_inf_.item<float>() != 0.0f) return;  // an overflow: this step is skipped
  }
  run_update();
}

// On a device the flag stays there: every tensor the update may change is kept, the update
// runs, and where the flag is set the kept values are selected back, all queued on the
// device.
void Optimizer::step_without_sync() {
  const Tensor skip = ne(found_inf_, scalar_tensor(0.0, DType::F32));
  std::vector<std::pair<Tensor, Tensor>> kept;  // (live tensor, its value before the update)
  for (size_t i = 0; i < params_.size(); ++i) {
    kept.emplace_back(params_[i], clone(params_[i]));
    if (i < masters_.size() && masters_[i]) kept.emplace_back(model_params_[i], clone(model_params_[i]));
  }
  std::vector<std::vector<bool>> had(state_.size());
  for (size_t i = 0; i < state_.size(); ++i)
    for (const Tensor& t : state_[i]) had[i].push_back(t.defined());
  for (size_t i = 0; i < state_.size(); ++i)
    for (const Tensor& t : state_[i])
      if (t.defined()) kept.emplace_back(t, clone(t));
  run_update();
  for (auto& [live, before] : kept) {
    Tensor target = live;
    copy_(target, where(skip, before, live));
  }
  for (size_t i = 0; i < state_.size(); ++i)
    for (size_t k = 0; k < state_[i].size(); ++k)
      if (!had[i][k] && state_[i][k].defined()) {
        Tensor& t = state_[i][k];
        copy_(t, where(skip, zeros_like(t), t));
        // A replay would make this state again instead of updating it.
        graph::detail::mark_not_replayable(fmt::format(
            "{} made its state in this step (an overflowed first step makes none): not replayed, captured again "
            "at the next step",
            name_));
      }
}

std::string Optimizer::who(size_t group) const {
  return num_groups() == 1 ? name_ : fmt::format("{} parameter group {}", name_, group);
}

NamedTensors Optimizer::state_dict() const {
  NamedTensors out;
  for (size_t i = 0; i < params_.size(); ++i)
    for (size_t k = 0; k < slots_.size(); ++k)
      if (state_[i][k].defined()) out.emplace_back(fmt::format("state.{}.{}", i, slots_[k]), state_[i][k]);
  for (size_t i = 0; i < masters_.size(); ++i)
    if (masters_[i]) out.emplace_back(fmt::format("master.{}", i), params_[i]);
  for (size_t g = 0; g < num_groups(); ++g) {
    std::vector<int64_t> indices;
    for (size_t i = group_begin(g); i < group_end(g); ++i) indices.push_back(int64_t(i));
    out.emplace_back(fmt::format("param_groups.{}.params", g), from_vector(indices, {int64_t(indices.size())}));
    // settings() hands out pointers so that load_state_dict can write through them; here
    // they are only read.
    for (const Setting& s : const_cast<Optimizer*>(this)->settings(g))
      out.emplace_back(fmt::format("param_groups.{}.{}", g, s.name), detail::setting_to_tensor(s));
  }
  return out;
}

void Optimizer::load_state_dict(const NamedTensors& state) {
  const std::string w = name_ + " load_state_dict";
  std::map<std::string, Tensor> given = detail::by_name(w, state);
  auto take = [&](const std::string& key) {
    Tensor t;
    if (auto it = given.find(key); it != given.end()) {
      t = it->second;
      given.erase(it);
    }
    return t;
  };

  // Everything is checked before the first change, so that an error leaves the optimizer
  // as it was.
  std::vector<std::pair<Setting, Tensor>> new_settings;
  for (size_t g = 0; g < num_groups(); ++g) {
    const std::string key = fmt::format("param_groups.{}.params", g);
    const Tensor t = take(key);
    PACER_CHECK(t.defined(), "{}: missing key '{}'", w, key);
    std::vector<int64_t> want;
    for (size_t i = group_begin(g); i < group_end(g); ++i) want.push_back(int64_t(i));
    PACER_CHECK(t.dtype() == DType::I64 && t.dim() == 1, "{}: '{}' expected shape [n] ({}), got shape {} ({})", w, key,
                DType::I64, t.sizes(), t.dtype());
    const std::vector<int64_t> got = (t.is_cpu() ? t : t.to(kCPU)).to_vector<int64_t>();
    PACER_CHECK(got == want, "{}: '{}' lists parameters [{}], but group {} of this optimizer holds parameters [{}]", w,
                key, fmt::join(got, ", "), g, fmt::join(want, ", "));
    for (const Setting& s : settings(g)) {
      const std::string skey = fmt::format("param_groups.{}.{}", g, s.name);
      const Tensor v = take(skey);
      PACER_CHECK(v.defined(), "{}: missing key '{}'", w, skey);
      detail::check_setting_tensor(w, skey, v, s);
      new_settings.emplace_back(s, v);
    }
  }

  std::vector<std::vector<Tensor>> new_state(params_.size(), std::vector<Tensor>(slots_.size()));
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    size_t present = 0;
    for (size_t k = 0; k < slots_.size(); ++k) {
      const std::string key = fmt::format("state.{}.{}", i, slots_[k]);
      const Tensor t = take(key);
      if (!t.defined()) continue;
      if (slots_[k] == "step") {
        PACER_CHECK(t.dtype() == DType::I64 && t.dim() == 0, "{}: '{}' expected shape [] ({}), got shape {} ({})", w,
                    key, DType::I64, t.sizes(), t.dtype());
      } else {
        PACER_CHECK(t.sizes() == p.sizes() && t.dtype() == p.dtype(),
                    "{}: '{}' expected shape {} ({}) like parameter {}, got shape {} ({})", w, key, p.sizes(),
                    p.dtype(), i, t.sizes(), t.dtype());
      }
      new_state[i][k] = t;
      ++present;
    }
    // A parameter's slots are created together at its first step, so a partial set
    // cannot come from a state_dict.
    for (size_t k = 0; present > 0 && k < slots_.size(); ++k)
      PACER_CHECK(new_state[i][k].defined(), "{}: missing key 'state.{}.{}': parameter {} has {} of its {} state slots",
                  w, i, slots_[k], i, present, slots_.size());
  }
  // Masters (O2): present exactly for the parameters that have one here.
  std::vector<Tensor> new_masters(masters_.size());
  for (size_t i = 0; i < masters_.size(); ++i) {
    if (!masters_[i]) continue;
    const std::string key = fmt::format("master.{}", i);
    const Tensor t = take(key);
    PACER_CHECK(t.defined(), "{}: missing key '{}' (this optimizer keeps f32 master weights)", w, key);
    PACER_CHECK(t.sizes() == params_[i].sizes() && t.dtype() == DType::F32,
                "{}: '{}' expected shape {} (float32), got shape {} ({})", w, key, params_[i].sizes(), t.sizes(),
                t.dtype());
    new_masters[i] = t;
  }
  if (!given.empty())
    PACER_FAIL("{}: unexpected key '{}' (this optimizer has {} parameters in {} groups, with state slots {})", w,
               given.begin()->first, params_.size(), num_groups(), fmt::join(slots_, ", "));

  // The options are checked once written; invalid ones are put back before rethrowing.
  std::vector<std::pair<Setting, Tensor>> old_settings;
  for (const auto& [s, t] : new_settings) old_settings.emplace_back(s, detail::setting_to_tensor(s));
  for (const auto& [s, t] : new_settings) detail::load_setting(s, t);
  try {
    check_options();
  } catch (const Error& e) {
    for (const auto& [s, t] : old_settings) detail::load_setting(s, t);
    PACER_FAIL("{}: the state holds invalid options: {}", w, e.what());
  }

  // Copies, so that the optimizer shares nothing with the caller's tensors; the state
  // lives on its parameter's device, step counters on the CPU.
  for (size_t i = 0; i < params_.size(); ++i) {
    for (size_t k = 0; k < slots_.size(); ++k) {
      const Tensor& t = new_state[i][k];
      Tensor c;
      if (t.defined() && slots_[k] == "step") {
        c = scalar_tensor((t.is_cpu() ? t : t.to(kCPU)).item<int64_t>(), DType::I64);
      } else if (t.defined()) {
        c = clone(t);
        if (!(c.device() == params_[i].device())) c = c.to(params_[i].device());
      }
      state_[i][k] = c;
    }
  }
  NoGradGuard no_grad;
  for (size_t i = 0; i < new_masters.size(); ++i)
    if (new_masters[i].defined()) copy_(params_[i], new_masters[i]);
}

}  // namespace pacer::optim
