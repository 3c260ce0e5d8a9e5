// The Tensor methods declared in core/tensor.h whose meaning is autograd's.
#include "autograd/engine.h"
#include "autograd/node.h"
#include "core/autograd_meta.h"

namespace pacer {

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  autograd::backward({*this}, {gradient}, retain_graph, create_graph);
}

void Tensor::retain_grad() const {
  PACER_CHECK(requires_grad(), "retain_grad: the tensor does not require grad");
  if (is_leaf()) return;
  AutogradMeta& m = impl()->autograd_mut();
  if (m.retains_grad) return;
  m.retains_grad = true;
  m.retained_grad = std::make_shared<Tensor>();
  std::shared_ptr<Tensor> slot = m.retained_grad;
  m.grad_fn->add_pre_hook(m.output_nr, [slot](const Tensor& g) {
    *slot = slot->defined() ? autograd::grad_functions().add(*slot, g) : autograd::grad_functions().clone(g);
    return Tensor();
  });
}

void Tensor::register_hook(std::function<Tensor(const Tensor&)> hook) const {
  PACER_CHECK(requires_grad(), "register_hook: cannot register a hook on a tensor that does not require grad");
  AutogradMeta& m = impl()->autograd_mut();
  if (m.grad_fn) m.grad_fn->add_pre_hook(m.output_nr, std::move(hook));
  else m.hooks.push_back(std::move(hook));
}

}  // namespace pacer
