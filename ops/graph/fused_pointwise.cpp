#include "ops/graph/fused_pointwise.h"

#include <fmt/format.h>

namespace pacer::graph {

std::string FusedPointwiseKernel::describe() const {
  return members_ > 1 ? fmt::format("{} tensor sets: {}", members_, program_.text()) : program_.text();
}

void FusedPointwiseKernel::run(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const {
  const size_t ni = size_t(program_.num_inputs), no = program_.outputs.size();
  PACER_CHECK(inputs.size() == ni * size_t(members_) && outputs.size() == no * size_t(members_),
              "{}: expected {} inputs and {} outputs, got {} and {}", name(), ni * size_t(members_),
              no * size_t(members_), inputs.size(), outputs.size());
  std::vector<PwBinding> bindings(static_cast<size_t>(members_));
  for (size_t m = 0; m < bindings.size(); ++m) {
    bindings[m].inputs.assign(inputs.begin() + long(m * ni), inputs.begin() + long((m + 1) * ni));
    bindings[m].outputs.assign(outputs.begin() + long(m * no), outputs.begin() + long((m + 1) * no));
  }
  const bool on_cuda = !outputs.empty() && outputs[0].device().is_cuda();
  if (!on_cuda) return run_pointwise_program(program_, bindings);
  PACER_CHECK(cuda_pointwise_available(), "{}: this build has no CUDA backend to run it on {}", name(),
              outputs[0].device());
  detail::cuda_pointwise_runner()(program_, bindings, device_tables_);
}

namespace detail {
CudaPointwiseRunner& cuda_pointwise_runner() {
  static CudaPointwiseRunner runner = nullptr;
  return runner;
}
}  // namespace detail

const FusedPointwiseKernel* pointwise_kernel_of(const Node& n) {
  return dynamic_cast<const FusedPointwiseKernel*>(n.fused.get());
}

}  // namespace pacer::graph
