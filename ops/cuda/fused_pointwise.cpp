// The CUDA side of fused pointwise nodes: the program becomes CUDA source
// (ops/graph/pointwise_codegen.h), NVRTC compiles it once per program, dtype signature and
// GPU architecture (ops/cuda/nvrtc.h, cached on disk), and one launch runs it over a table
// of chunks covering every binding. A reduction adds a second, tiny launch.
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <cstring>
#include <map>
#include <mutex>

#include "core/cuda/check.h"
#include "core/cuda/graph.h"
#include "core/cuda/runtime.h"
#include "core/cuda/stream.h"
#include "ops/api.h"
#include "ops/cuda/nvrtc.h"
#include "ops/graph/fused_pointwise.h"
#include "ops/graph/pointwise_codegen.h"

namespace pacer::ops::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kChunk = 64 * 1024;  // elements per block

struct Kernels {
  cudaLibrary_t library = nullptr;
  cudaKernel_t main = nullptr, finish = nullptr;
};

graph::PwSignature signature_of(const graph::PwBinding& b) {
  graph::PwSignature s;
  for (const Tensor& t : b.inputs) {
    s.input_dtypes.push_back(t.dtype());
    s.input_kinds.push_back(t.dim() > 0  ? graph::PwInputKind::Tensor
                            : t.is_cpu() ? graph::PwInputKind::HostScalar
                                         : graph::PwInputKind::DeviceScalar);
  }
  for (const Tensor& t : b.outputs) s.output_dtypes.push_back(t.dtype());
  return s;
}

bool same_signature(const graph::PwSignature& a, const graph::PwSignature& b) {
  return a.input_dtypes == b.input_dtypes && a.input_kinds == b.input_kinds && a.output_dtypes == b.output_dtypes;
}

// Per device, program and signature (the source is generated and compiled only on a miss:
// replays look the kernels up by the program's short text).
const Kernels& kernels_for(const graph::PwProgram& p, const graph::PwSignature& sig, int device) {
  static std::mutex m;
  static std::map<std::string, Kernels> cache;
  static std::map<int, int> arch_of;  // device -> sm version
  std::string key = fmt::format("{}|{}|", device, p.text());
  for (size_t i = 0; i < sig.input_dtypes.size(); ++i) key += fmt::format("{}{},", sig.input_dtypes[i], int(sig.input_kinds[i]));
  for (DType t : sig.output_dtypes) key += fmt::format("{},", t);
  std::lock_guard<std::mutex> lock(m);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (!arch_of.count(device)) {
    const pacer::cuda::DeviceProperties props = pacer::cuda::device_properties(device);
    arch_of[device] = props.major * 10 + props.minor;
  }
  const NvrtcBinary bin = nvrtc_compile(graph::cuda_pointwise_source(p, sig, "pacer_fused"), arch_of[device]);
  Kernels k;
  PACER_CUDA_CHECK(cudaLibraryLoadData(&k.library, bin.cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0));
  PACER_CUDA_CHECK(cudaLibraryGetKernel(&k.main, k.library, "pacer_fused"));
  if (p.reduce_sum) PACER_CUDA_CHECK(cudaLibraryGetKernel(&k.finish, k.library, "pacer_fused_finish"));
  return cache.emplace(key, k).first->second;
}

// Copies the binding table and chunk list to the device unless the node's last copy holds
// the same bytes (the same tensors, as in every replay of a planned graph): then the kernels
// read that copy again. A CUDA graph being captured cannot take a copy from pageable memory
// that the replays would read again: the executor captures only after a run over the same
// tensors, so a copy needed then is an error it reports (and it runs without the graph).
void upload_tables(const std::vector<uint8_t>& table, const std::vector<uint8_t>& chunks, Device device,
                   graph::PwDeviceTables& cached) {
  const size_t bytes = table.size() + chunks.size();
  if (cached.table.defined() && cached.host.size() == bytes &&
      std::memcmp(cached.host.data(), table.data(), table.size()) == 0 &&
      std::memcmp(cached.host.data() + table.size(), chunks.data(), chunks.size()) == 0)
    return;
  PACER_CHECK(!pacer::cuda::is_capturing(pacer::cuda::current_stream(device.index)),
              "fused pointwise kernel: its tensors moved since its last run, and a CUDA graph is being captured (a "
              "graph captures only after a run over the same tensors)");
  auto to_device = [&](const std::vector<uint8_t>& b) {
    Tensor host = empty({std::max<int64_t>(int64_t(b.size()), 1)}, {.dtype = DType::U8});
    if (!b.empty()) std::memcpy(host.data(), b.data(), b.size());
    return host.to(device);
  };
  // Both copies first: the cache changes only once they exist (a failed copy leaves it as it was).
  Tensor d_table = to_device(table), d_chunks = to_device(chunks);
  std::vector<uint8_t> host(table.begin(), table.end());
  host.insert(host.end(), chunks.begin(), chunks.end());
  cached.table = std::move(d_table);
  cached.chunks = std::move(d_chunks);
  cached.host = std::move(host);
}

void run(const graph::PwProgram& p, const std::vector<graph::PwBinding>& bindings, graph::PwDeviceTables& cached) {
  if (bindings.empty()) return;
  const int ni = p.num_inputs, no = int(p.outputs.size());
  const Device device = bindings[0].outputs.at(0).device();
  const graph::PwSignature sig = signature_of(bindings[0]);
  // The binding table and the chunk list, built on the host and copied over.
  const size_t bb = graph::PwBindingLayout::binding_bytes(ni, no);
  std::vector<uint8_t> table(bb * bindings.size(), 0);
  std::vector<uint8_t> chunks;
  int64_t num_chunks = 0;
  for (size_t k = 0; k < bindings.size(); ++k) {
    const graph::PwBinding& b = bindings[k];
    uint8_t* row = table.data() + k * bb;
    int64_t n = 1;
    for (const Tensor& t : b.inputs) n = t.dim() > 0 ? t.numel() : n;
    if (!p.reduce_sum) n = b.outputs[0].numel();
    for (int i = 0; i < ni; ++i) {
      const Tensor& t = b.inputs[size_t(i)];
      const bool laid_out = p.reduce_sum ? t.is_contiguous() : t.strides() == b.outputs[0].strides();
      PACER_CHECK(t.dim() == 0 ? (t.is_cpu() || t.device() == device)
                               : (t.device() == device && t.numel() == n && laid_out),
                  "fused pointwise kernel: input {} is {} {} (strides {}) on {}, expected {} elements laid out as the "
                  "output on {}, or a scalar",
                  i, t.dtype(), t.sizes(), t.strides(), t.device(), n, device);
      const void* ptr = t.is_cpu() ? nullptr : t.data();
      const float value = t.is_cpu() ? float(t.to(DType::F64).item<double>()) : 0.0f;
      std::memcpy(row + 8 * size_t(i), &ptr, 8);
      std::memcpy(row + graph::PwBindingLayout::value_offset(ni) + 4 * size_t(i), &value, 4);
    }
    // Every binding runs the kernel compiled for the first's signature, and every output is
    // walked in the first output's layout (as the CPU loop checks).
    if (k > 0)
      PACER_CHECK(same_signature(signature_of(b), sig),
                  "fused pointwise kernel: tensor set {} differs from the first in dtypes or scalar kinds", k);
    for (int o = 0; o < no; ++o) {
      const Tensor& t = b.outputs[size_t(o)];
      PACER_CHECK(t.device() == device && (p.reduce_sum ? t.is_contiguous()
                                                        : t.numel() == n && t.strides() == b.outputs[0].strides()),
                  "fused pointwise kernel: output {} is {} {} (strides {}) on {}, expected {} elements laid out as "
                  "output 0 on {}",
                  o, t.dtype(), t.sizes(), t.strides(), t.device(), n, device);
    }
    for (int o = 0; o < no; ++o) {
      void* ptr = b.outputs[size_t(o)].data();
      std::memcpy(row + graph::PwBindingLayout::out_offset(ni) + 8 * size_t(o), &ptr, 8);
    }
    std::memcpy(row + graph::PwBindingLayout::n_offset(ni, no), &n, 8);
    for (int64_t at = 0; at < n; at += kChunk) {
      uint8_t c[graph::PwBindingLayout::kChunkBytes] = {};
      const int binding = int(k);
      const int64_t end = std::min(n, at + kChunk);
      std::memcpy(c, &binding, 4);
      std::memcpy(c + 8, &at, 8);
      std::memcpy(c + 16, &end, 8);
      chunks.insert(chunks.end(), c, c + sizeof(c));
      ++num_chunks;
    }
  }
  const Kernels& k = kernels_for(p, sig, device.index);
  upload_tables(table, chunks, device, cached);
  const Tensor& d_table = cached.table;
  cudaStream_t stream = static_cast<cudaStream_t>(pacer::cuda::current_stream(device.index).handle());
  const void* table_ptr = d_table.data();
  if (!p.reduce_sum) {
    if (num_chunks == 0) return;
    const Tensor& d_chunks = cached.chunks;
    const void* chunks_ptr = d_chunks.data();
    void* args[] = {&table_ptr, &chunks_ptr};
    PACER_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(k.main), dim3(unsigned(num_chunks)), dim3(kThreads),
                                      args, 0, stream));
    return;
  }
  const Tensor& d_chunks = cached.chunks;
  Tensor partial = empty({std::max<int64_t>(num_chunks, 1)}, {.dtype = DType::F64, .device = device});
  const void* chunks_ptr = d_chunks.data();
  void* partial_ptr = partial.data();
  if (num_chunks > 0) {
    void* args[] = {&table_ptr, &chunks_ptr, &partial_ptr};
    PACER_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(k.main), dim3(unsigned(num_chunks)), dim3(kThreads),
                                      args, 0, stream));
  }
  int nc = int(num_chunks), nb = int(bindings.size());
  const void* partial_const = partial_ptr;
  void* args[] = {&table_ptr, &chunks_ptr, &nc, &nb, &partial_const};
  PACER_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void*>(k.finish), dim3(unsigned((nb + 127) / 128)), dim3(128),
                                    args, 0, stream));
}

struct Register {
  Register() { graph::detail::cuda_pointwise_runner() = &run; }
} register_runner;

}  // namespace

}  // namespace pacer::ops::cuda
