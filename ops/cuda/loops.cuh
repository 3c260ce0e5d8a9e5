#pragma once
/// The CUDA elementwise engine, twin of ops/cpu/loops.h: out[i] = f(in0[i], in1[i], ...)
/// with broadcasting. Out and In... are storage types; f gets compute types (float for the
/// half types) and is one of the PACER_HOST_DEVICE functors of ops/common/ (or a
/// __host__ __device__ lambda). Three paths:
///  - contiguous operands (and scalars), 16-byte aligned: each thread moves 16 bytes of the
///    widest operand per load (vectorized, the memory-bound fast path);
///  - contiguous but unaligned: one element per thread;
///  - anything else: offsets from the coalesced geometry, one div/mod per dim.
/// A 0-dim CPU tensor (a wrapped number such as the 0.9 of x * 0.9) is passed by value.

#include <array>
#include <cstring>
#include <type_traits>

#include "ops/cpu/loops.h"
#include "ops/cuda/launch.cuh"

namespace pacer::ops::cuda {

inline constexpr int kMaxLoopDims = 12;

template <size_t N>
struct LoopArgs {
  char* ptr[N];
  alignas(8) unsigned char scalar[N][8];  // value of a by-value operand (storage type bytes)
  bool is_scalar[N];
  int ndim;
  int64_t sizes[kMaxLoopDims];
  int64_t strides[kMaxLoopDims][N];  // bytes
};

template <class T, size_t N>
__device__ __forceinline__ compute_t<T> load_operand(const LoopArgs<N>& a, int k, int64_t offset) {
  if (a.is_scalar[k]) return compute_t<T>(*reinterpret_cast<const T*>(a.scalar[k]));
  return compute_t<T>(*reinterpret_cast<const T*>(a.ptr[k] + offset));
}

template <class Out, class V>
__device__ __forceinline__ Out store_value(V v) {
  if constexpr (std::is_same_v<Out, Half> || std::is_same_v<Out, BFloat16>) return Out(float(v));
  else return static_cast<Out>(v);
}

template <class Out, class... In, class F, size_t N, size_t... K>
__device__ __forceinline__ void apply_at(const LoopArgs<N>& a, const F& f, const int64_t* off, std::index_sequence<K...>) {
  *reinterpret_cast<Out*>(a.ptr[0] + off[0]) = store_value<Out>(f(load_operand<In>(a, int(K + 1), off[K + 1])...));
}

// (nvcc wants a __global__ template's pack last: hence F and N first.)
template <class F, size_t N, class Out, class... In>
__global__ void strided_loop(int64_t n, LoopArgs<N> a, F f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[N] = {};
    int64_t rest = i;
    for (int d = a.ndim - 1; d >= 0; --d) {
      const int64_t idx = rest % a.sizes[d];
      rest /= a.sizes[d];
#pragma unroll
      for (size_t k = 0; k < N; ++k) off[k] += idx * a.strides[d][k];
    }
    apply_at<Out, In...>(a, f, off, std::index_sequence_for<In...>{});
  }
}

template <class F, size_t N, class Out, class... In>
__global__ void contiguous_loop(int64_t n, LoopArgs<N> a, F f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[N];
    off[0] = i * int64_t(sizeof(Out));
    constexpr size_t sizes[] = {sizeof(Out), sizeof(In)...};
#pragma unroll
    for (size_t k = 1; k < N; ++k) off[k] = i * int64_t(sizes[k]);
    apply_at<Out, In...>(a, f, off, std::index_sequence_for<In...>{});
  }
}

template <class T, int V>
struct alignas(sizeof(T) * V) VecOf {
  T v[V];
};

// V elements per thread per step; every non-scalar operand's pointer is aligned to V * its
// element size, so each operand moves in one vector load / store.
template <int V, class Out, class... In, class F, size_t N, size_t... K>
__device__ __forceinline__ void vector_step(const LoopArgs<N>& a, const F& f, int64_t base, std::index_sequence<K...>) {
  std::tuple<VecOf<In, V>...> in;
  ((a.is_scalar[K + 1] ? void() : void(std::get<K>(in) = reinterpret_cast<const VecOf<In, V>*>(a.ptr[K + 1])[base / V])),
   ...);
  VecOf<Out, V> out;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    out.v[j] = store_value<Out>(f((a.is_scalar[K + 1] ? compute_t<In>(*reinterpret_cast<const In*>(a.scalar[K + 1]))
                                                         : compute_t<In>(std::get<K>(in).v[j]))...));
  }
  reinterpret_cast<VecOf<Out, V>*>(a.ptr[0])[base / V] = out;
}

template <int V, class F, size_t N, class Out, class... In>
__global__ void vector_loop(int64_t n, LoopArgs<N> a, F f) {
  const int64_t nvec = n / V;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < nvec; i += int64_t(gridDim.x) * blockDim.x)
    vector_step<V, Out, In...>(a, f, i * V, std::index_sequence_for<In...>{});
  // The tail (n % V elements) goes one per thread.
  const int64_t t = nvec * V + int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < n) {
    int64_t off[N];
    off[0] = t * int64_t(sizeof(Out));
    constexpr size_t sizes[] = {sizeof(Out), sizeof(In)...};
#pragma unroll
    for (size_t k = 1; k < N; ++k) off[k] = t * int64_t(sizes[k]);
    apply_at<Out, In...>(a, f, off, std::index_sequence_for<In...>{});
  }
}

template <class... T>
constexpr size_t max_size() {
  size_t m = 1;
  ((m = sizeof(T) > m ? sizeof(T) : m), ...);
  return m;
}

/// Launches out = f(ins...) on the current stream. Inputs must have out's dtype layout
/// (infer has cast them); shapes broadcast to out's.
template <class Out, class... In, class F>
void cuda_kernel(const Tensor& out, const std::array<const Tensor*, sizeof...(In)>& ins, F f) {
  constexpr size_t N = sizeof...(In) + 1;
  const int64_t n = out.numel();
  if (n == 0) return;
  LoopArgs<N> a{};
  a.ptr[0] = static_cast<char*>(out.data());
  // By-value operands: 0-dim tensors on the host. They take no part in the geometry.
  std::array<const Tensor*, N - 1> geo_ins = ins;
  Tensor dummy;
  for (size_t k = 0; k + 1 < N; ++k) {
    const Tensor& t = *ins[k];
    if (t.is_cpu()) {
      PACER_CHECK(t.numel() == 1, "a CPU operand of a CUDA kernel must be a single number, got shape {}", t.sizes());
      std::memcpy(a.scalar[k + 1], t.data(), t.element_size());
      a.is_scalar[k + 1] = true;
      geo_ins[k] = &out;  // any same-shape stand-in; its strides are ignored below
    } else {
      PACER_CHECK(t.device() == out.device(), "CUDA kernel operand on {}, output on {}", t.device(), out.device());
      a.ptr[k + 1] = static_cast<char*>(const_cast<void*>(t.data()));
    }
  }
  cpu::Geometry<N> g = cpu::make_geometry<N>(out, geo_ins);
  const int nd = int(g.sizes.size());
  bool contiguous = nd == 1;
  constexpr size_t elem[] = {sizeof(Out), sizeof(In)...};
  for (size_t k = 0; contiguous && k < N; ++k) contiguous = a.is_scalar[k] || g.strides[k][0] == int64_t(elem[k]);
  const cudaStream_t s = stream();
  if (contiguous) {
    constexpr int V = int(16 / max_size<Out, In...>());
    bool aligned = V > 1;
    for (size_t k = 0; aligned && k < N; ++k)
      aligned = a.is_scalar[k] || reinterpret_cast<uintptr_t>(a.ptr[k]) % (elem[k] * V) == 0;
    if constexpr (V > 1) {
      if (aligned) {
        vector_loop<V, F, N, Out, In...><<<blocks_for(n / V + 1), kThreads, 0, s>>>(n, a, f);
        PACER_CUDA_KERNEL_CHECK();
        return;
      }
    }
    contiguous_loop<F, N, Out, In...><<<blocks_for(n), kThreads, 0, s>>>(n, a, f);
    PACER_CUDA_KERNEL_CHECK();
    return;
  }
  PACER_CHECK(nd <= kMaxLoopDims, "CUDA pointwise loop: {} dims after coalescing, at most {} supported", nd,
              kMaxLoopDims);
  a.ndim = nd;
  for (int d = 0; d < nd; ++d) {
    a.sizes[d] = g.sizes[size_t(d)];
    for (size_t k = 0; k < N; ++k) a.strides[d][k] = a.is_scalar[k] ? 0 : g.strides[k][size_t(d)];
  }
  strided_loop<F, N, Out, In...><<<blocks_for(n), kThreads, 0, s>>>(n, a, f);
  PACER_CUDA_KERNEL_CHECK();
}

struct Identity {
  template <class V>
  PACER_HOST_DEVICE V operator()(V v) const { return v; }
};

/// A contiguous copy of `t` on its device made by the loop engine directly (no dispatch, no
/// autograd), or t itself when already contiguous: the CUDA twin of cpu::materialize.
inline Tensor materialize(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = empty(t.sizes(), {.dtype = t.dtype(), .device = t.device()});
  dispatch_dtype(t.dtype(), [&]<class T>() { cuda_kernel<T, T>(out, {&t}, Identity{}); });
  return out;
}

}  // namespace pacer::ops::cuda
