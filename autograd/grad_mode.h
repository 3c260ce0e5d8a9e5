#pragma once
/// Grad mode: whether ops record autograd history on this thread.

namespace pacer::autograd {

bool grad_enabled();
void set_grad_enabled(bool on);

}  // namespace pacer::autograd

namespace pacer {

/// Turns recording off in a scope (torch.no_grad()).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(autograd::grad_enabled()) { autograd::set_grad_enabled(false); }
  ~NoGradGuard() { autograd::set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

/// Sets grad mode to `on` in a scope (torch.set_grad_enabled).
class GradModeGuard {
 public:
  explicit GradModeGuard(bool on) : prev_(autograd::grad_enabled()) { autograd::set_grad_enabled(on); }
  ~GradModeGuard() { autograd::set_grad_enabled(prev_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace pacer
