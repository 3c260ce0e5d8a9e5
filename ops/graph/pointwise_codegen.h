#pragma once
/// CUDA source for a fused pointwise program (the CUDA side of pointwise_fusion /
/// multi_tensor): one kernel over a table of work chunks, each a range of one binding's
/// elements, so that one launch covers every tensor set of a multi-tensor node; a
/// reduction program writes one partial sum per chunk and a second kernel adds each
/// binding's partials in order (deterministic). The source is self-contained (no headers:
/// half and bfloat16 conversions are written out), for NVRTC.

#include <string>
#include <vector>

#include "ops/graph/pointwise_program.h"

namespace pacer::graph {

/// How each input of a program reaches the kernel.
enum class PwInputKind : uint8_t {
  Tensor,        // a full tensor: element i
  DeviceScalar,  // a 0-d tensor on the device: element 0
  HostScalar,    // a 0-d CPU tensor: its value, passed in the binding table as a float
};

struct PwSignature {
  std::vector<DType> input_dtypes;
  std::vector<PwInputKind> input_kinds;
  std::vector<DType> output_dtypes;
};

/// The layout of one binding in the table the kernel reads (host and device agree on it):
///   const void* in[NI]; float value[NI]; void* out[NO]; long long n;
/// and of one chunk: { int binding; long long begin, end; } (padded to 24 bytes).
struct PwBindingLayout {
  static size_t binding_bytes(int inputs, int outputs) { return size_t(8 * inputs + 4 * inputs + 8 * outputs + 8 + 7) / 8 * 8; }
  static size_t value_offset(int inputs) { return size_t(8 * inputs); }
  static size_t out_offset(int inputs) { return size_t(12 * inputs + 7) / 8 * 8; }
  static size_t n_offset(int inputs, int outputs) { return out_offset(inputs) + size_t(8 * outputs); }
  static constexpr size_t kChunkBytes = 24;
};

/// The kernels' names in the source: `<name>` (the elementwise / partial-sum kernel) and,
/// for a reduction, `<name>_finish`.
std::string cuda_pointwise_source(const PwProgram& program, const PwSignature& signature, const std::string& name);

}  // namespace pacer::graph
