#pragma once
/// The fused kernel the pointwise passes build: a PwProgram run by one loop, over one set
/// of tensors (pointwise_fusion) or over many sets at once (multi_tensor: a node's inputs
/// and outputs are the members' lists one after another).

#include "ops/graph/graph.h"
#include "ops/graph/pointwise_program.h"

namespace pacer::graph {

/// What the CUDA runner last copied to the device for a node (its binding table and chunk
/// list, whose bytes are mostly tensor addresses): the next run over the same tensors reuses
/// them instead of copying again, and a CUDA graph captured over them keeps addressing them.
struct PwDeviceTables {
  std::vector<uint8_t> host;  // the table's bytes, then the chunk list's
  Tensor table, chunks;
};

class FusedPointwiseKernel final : public FusedKernel {
 public:
  FusedPointwiseKernel(PwProgram program, int members) : program_(std::move(program)), members_(members) {}

  std::string name() const override { return members_ > 1 ? "multi_tensor_pointwise" : "fused_pointwise"; }
  std::string describe() const override;
  void run(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) const override;

  const PwProgram& program() const { return program_; }
  int members() const { return members_; }
  /// What the CUDA runner last uploaded for this node (a CUDA graph keeps it alive).
  const PwDeviceTables& device_tables() const { return device_tables_; }

 private:
  PwProgram program_;
  int members_;
  mutable PwDeviceTables device_tables_;  // CUDA only; a node's runs are never concurrent
};

/// The pointwise kernel of a node, or null when it has none.
const FusedPointwiseKernel* pointwise_kernel_of(const Node& n);

namespace detail {
/// Runs a program over CUDA bindings (NVRTC-generated kernel): registered by the CUDA
/// backend (ops/cuda/fused_pointwise.cpp); null in a build without it.
using CudaPointwiseRunner = void (*)(const PwProgram&, const std::vector<PwBinding>&, PwDeviceTables&);
CudaPointwiseRunner& cuda_pointwise_runner();
}  // namespace detail

/// Whether fused pointwise loops can run on CUDA tensors in this build.
inline bool cuda_pointwise_available() { return detail::cuda_pointwise_runner() != nullptr; }

}  // namespace pacer::graph
