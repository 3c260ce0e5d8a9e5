#include "nn/module.h"

#include <fmt/format.h>

#include <map>
#include <new>

#include "autograd/grad_mode.h"
#include "core/autograd_meta.h"
#include "ops/api.h"

namespace pacer::nn {

Tensor& Module::register_parameter(std::string name, Tensor value) {
  PACER_CHECK(value.defined(), "register_parameter: '{}' is undefined", name);
  if (!value.requires_grad()) value.set_requires_grad(true);
  params_.emplace_back(std::move(name), std::move(value));
  return params_.back().second;
}

Tensor& Module::register_buffer(std::string name, Tensor value) {
  buffers_.emplace_back(std::move(name), std::move(value));
  return buffers_.back().second;
}

void Module::collect(const std::string& prefix, bool with_buffers,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  if (with_buffers)
    for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", with_buffers, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

LoadResult Module::load_state_dict(const std::vector<std::pair<std::string, Tensor>>& state, bool strict) {
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : state) {
    PACER_CHECK(t.defined(), "load_state_dict: value of '{}' is undefined", name);
    PACER_CHECK(given.emplace(name, &t).second, "load_state_dict: key '{}' appears twice in the state", name);
  }
  // Everything is checked before the first copy, so an error leaves the module untouched.
  LoadResult result;
  std::vector<std::pair<Tensor, const Tensor*>> copies;
  for (auto& [name, dst] : state_dict()) {
    auto it = given.find(name);
    if (it == given.end()) {
      result.missing.push_back(name);
      continue;
    }
    const Tensor& src = *it->second;
    PACER_CHECK(src.sizes() == dst.sizes() && src.dtype() == dst.dtype(),
                "load_state_dict: '{}' expected shape {} ({}), got shape {} ({})", name, dst.sizes(), dst.dtype(),
                src.sizes(), src.dtype());
    copies.emplace_back(dst, &src);
    given.erase(it);
  }
  for (const auto& [name, t] : state)
    if (given.count(name)) result.unexpected.push_back(name);
  if (strict && (!result.missing.empty() || !result.unexpected.empty())) {
    std::string msg = "load_state_dict: the state does not match the module";
    if (!result.missing.empty()) msg += fmt::format("; missing keys: {}", fmt::join(result.missing, ", "));
    if (!result.unexpected.empty()) msg += fmt::format("; unexpected keys: {}", fmt::join(result.unexpected, ", "));
    PACER_FAIL("{}", msg);
  }
  // Parameters are leaves that require grad: an in-place copy is only legal without history.
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) copy_(dst, *src);
  return result;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.set_grad(Tensor());
}


Module& Module::to(DType dtype) {
  PACER_CHECK(is_floating(dtype), "Module::to: expected a floating dtype, got {}", dtype);
  return convert([dtype](const Tensor& t) { return is_floating(t.dtype()) && t.dtype() != dtype; },
                 [dtype](const Tensor& t) { return contiguous(cast(t, dtype)); }, {});
}

Module& Module::to(DType dtype, const std::function<bool(const Module&)>& keep) {
  PACER_CHECK(is_floating(dtype), "Module::to: expected a floating dtype, got {}", dtype);
  return convert([dtype](const Tensor& t) { return is_floating(t.dtype()) && t.dtype() != dtype; },
                 [dtype](const Tensor& t) { return contiguous(cast(t, dtype)); }, keep);
}

Module& Module::to(Device device) {
  return convert([device](const Tensor& t) { return !(t.device() == device); },
                 [device](const Tensor& t) { return contiguous(t).to(device); }, {});
}

void Module::collect_kept(const std::function<bool(const Module&)>& keep, const std::string& prefix,
                          std::vector<std::pair<std::string, Tensor>>& out) const {
  if (keep && keep(*this)) return;
  for (const auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect_kept(keep, prefix + n + ".", out);
}

Module& Module::convert(const std::function<bool(const Tensor&)>& wants, const std::function<Tensor(const Tensor&)>& make,
                        const std::function<bool(const Module&)>& keep) {
  // Every tensor is converted before the first is replaced, so an error changes nothing.
  std::vector<std::pair<Tensor, Tensor>> todo;  // (tensor, converted value)
  std::vector<Tensor> grads;
  {
    NoGradGuard no_grad;
    std::vector<std::pair<std::string, Tensor>> tensors;
    collect_kept(keep, "", tensors);
    for (auto& [name, t] : tensors) {
      if (!wants(t)) continue;
      bool seen = false;  // a tensor registered under two names is converted once
      for (auto& [u, v] : todo) seen = seen || u.is_same(t);
      if (seen) continue;
      PACER_CHECK(t.is_leaf(), "Module::to: '{}' has autograd history; only leaves can be converted", name);
      todo.emplace_back(t, make(detach(t)));
      const Tensor& g = t.grad();
      grads.push_back(g.defined() ? make(g) : Tensor());
    }
  }
  for (size_t i = 0; i < todo.size(); ++i) {
    Tensor& t = todo[i].first;
    const Tensor& v = todo[i].second;
    // Swapping the data keeps the tensor's identity: layers hold their own handles
    // (Linear::weight) and must see the new dtype or device too.
    t.impl()->set_data(v.storage(), v.dtype(), v.sizes(), v.strides(), v.storage_offset());
    if (t.impl()->autograd()) t.impl()->autograd_mut().grad = grads[i];
  }
  return *this;
}

}  // namespace pacer::nn
