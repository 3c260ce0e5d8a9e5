#pragma once
/// The CPU elementwise engine: broadcasting, dim coalescing, a contiguous fast path that
/// the compiler vectorizes, and parallel_for over the flattened index space. Kernels of
/// pointwise ops are one call: cpu_kernel<Out, In...>(out, {&a, &b}, functor).

#include <algorithm>
#include <array>
#include <type_traits>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace pacer::ops::cpu {

inline constexpr int64_t kPointwiseGrain = 32768;

/// Loop geometry for N operands (0 = output) over the output's shape, strides in bytes.
template <size_t N>
struct Geometry {
  Shape sizes;
  std::array<Shape, N> strides;
  std::array<char*, N> base;
};

/// Builds the geometry: inputs broadcast to out's shape, dims taken in out's memory order
/// (outermost first; an elementwise result does not depend on the order, and operands laid
/// out alike, channels-last ones say, then merge into one dense run), size-1 dims dropped,
/// adjacent dims merged when every operand allows it.
template <size_t N>
Geometry<N> make_geometry(const Tensor& out, const std::array<const Tensor*, N - 1>& ins) {
  Geometry<N> g;
  const int64_t nd = out.dim();
  std::array<const Tensor*, N> ops;
  ops[0] = &out;
  for (size_t k = 1; k < N; ++k) ops[k] = ins[k - 1];
  for (size_t k = 0; k < N; ++k) g.base[k] = static_cast<char*>(ops[k]->data());
  // Full (uncoalesced) strides, aligned right as broadcasting requires.
  std::array<Shape, N> full;
  for (size_t k = 0; k < N; ++k) {
    const Tensor& t = *ops[k];
    full[k].resize(size_t(nd), 0);
    const int64_t shift = nd - t.dim();
    const int64_t es = int64_t(t.element_size());
    for (int64_t d = 0; d < t.dim(); ++d)
      full[k][size_t(d + shift)] = t.sizes()[d] == 1 ? 0 : t.strides()[d] * es;
  }
  std::array<int64_t, 64> order{};
  PACER_CHECK(nd <= 64, "elementwise loop: {} dims, at most 64 supported", nd);
  for (int64_t d = 0; d < nd; ++d) order[size_t(d)] = d;
  std::stable_sort(order.begin(), order.begin() + nd,
                   [&](int64_t a, int64_t b) { return full[0][size_t(a)] > full[0][size_t(b)]; });
  for (int64_t i = 0; i < nd; ++i) {
    const int64_t d = order[size_t(i)];
    const int64_t sz = out.sizes()[d];
    if (sz == 1) continue;
    bool merge = !g.sizes.empty();
    for (size_t k = 0; merge && k < N; ++k) merge = g.strides[k].back() == full[k][size_t(d)] * sz;
    if (merge) {
      g.sizes.back() *= sz;
      for (size_t k = 0; k < N; ++k) g.strides[k].back() = full[k][size_t(d)];
    } else {
      g.sizes.push_back(sz);
      for (size_t k = 0; k < N; ++k) g.strides[k].push_back(full[k][size_t(d)]);
    }
  }
  if (g.sizes.empty()) {  // a single element
    g.sizes.push_back(1);
    for (size_t k = 0; k < N; ++k) g.strides[k].push_back(0);
  }
  return g;
}

/// The order sum() adds a row of n values in (ops/cpu/reduce.cpp): eight accumulators of type
/// A over blocks of eight, combined pairwise, then the tail in order. Fused kernels whose
/// sums must equal sum()'s bit for bit add in this order too.
template <class A, class T>
inline A sum_in_row_order(const T* v, int64_t n) {
  A acc[8] = {};
  int64_t r = 0;
  for (; r + 8 <= n; r += 8)
    for (int k = 0; k < 8; ++k) acc[k] += A(compute_t<T>(v[r + k]));
  A total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; r < n; ++r) total += A(compute_t<T>(v[r]));
  return total;
}

template <class T>
inline compute_t<T> load(const char* p) {
  return compute_t<T>(*reinterpret_cast<const T*>(p));
}

template <class Out, class V>
inline Out store_cast(V v) {
  if constexpr (std::is_same_v<Out, Half> || std::is_same_v<Out, BFloat16>) return Out(float(v));
  else return static_cast<Out>(v);
}

/// Walks geometry `g` over the flat index range [begin, end), calling
/// run(pointers, inner_strides, n) for each innermost run.
template <size_t N, class Run>
void for_each_run(const Geometry<N>& g, int64_t begin, int64_t end, Run&& run) {
  const size_t nd = g.sizes.size();
  const int64_t inner = g.sizes[nd - 1];
  Shape index(nd, 0);
  int64_t rest = begin;
  for (size_t d = nd; d-- > 0;) {
    index[d] = rest % g.sizes[d];
    rest /= g.sizes[d];
  }
  std::array<int64_t, N> inner_stride;
  for (size_t k = 0; k < N; ++k) inner_stride[k] = g.strides[k][nd - 1];
  int64_t i = begin;
  while (i < end) {
    std::array<char*, N> p;
    for (size_t k = 0; k < N; ++k) {
      int64_t off = 0;
      for (size_t d = 0; d < nd; ++d) off += index[d] * g.strides[k][d];
      p[k] = g.base[k] + off;
    }
    const int64_t n = std::min(inner - index[nd - 1], end - i);
    run(p, inner_stride, n);
    i += n;
    index[nd - 1] += n;
    for (size_t d = nd - 1; d > 0 && index[d] >= g.sizes[d]; --d) {
      index[d] = 0;
      ++index[d - 1];
    }
  }
}

/// out[i] = f(in0[i], in1[i], ...) with broadcasting. Out and In... are storage types;
/// f receives compute types (float for half types).
template <class Out, class... In, class F>
void cpu_kernel(const Tensor& out, const std::array<const Tensor*, sizeof...(In)>& ins, F f) {
  constexpr size_t N = sizeof...(In) + 1;
  if (out.numel() == 0) return;
  Geometry<N> g = make_geometry<N>(out, ins);
  constexpr std::array<int64_t, N> sizes = {int64_t(sizeof(Out)), int64_t(sizeof(In))...};
  auto run = [&](const std::array<char*, N>& p, const std::array<int64_t, N>& s, int64_t n) {
    bool contiguous = true, dense_or_scalar = s[0] == sizes[0];
    for (size_t k = 0; k < N; ++k) contiguous = contiguous && s[k] == sizes[k];
    for (size_t k = 1; k < N; ++k) dense_or_scalar = dense_or_scalar && (s[k] == sizes[k] || s[k] == 0);
    if (!contiguous && dense_or_scalar) {
      // Scalar operands (stride 0, e.g. x * 0.9) are copied into a small buffer once, so the
      // loop below has unit strides only and vectorizes like the contiguous one.
      [&]<size_t... K>(std::index_sequence<K...>) {
        constexpr int64_t kChunk = 256;
        [[maybe_unused]] std::tuple<std::array<In, kChunk>...> bufs;
        [[maybe_unused]] const std::array<bool, N - 1> scalar = {(s[K + 1] == 0)...};
        ((scalar[K] ? std::get<K>(bufs).fill(*reinterpret_cast<const In*>(p[K + 1])) : void()), ...);
        for (int64_t j0 = 0; j0 < n; j0 += kChunk) {
          const int64_t m = std::min(kChunk, n - j0);
          Out* o = reinterpret_cast<Out*>(p[0]) + j0;
          std::tuple<const In*...> in{(scalar[K] ? std::get<K>(bufs).data() : reinterpret_cast<const In*>(p[K + 1]) + j0)...};
          for (int64_t j = 0; j < m; ++j) o[j] = store_cast<Out>(f(compute_t<In>(std::get<K>(in)[j])...));
        }
      }(std::index_sequence_for<In...>{});
    } else if (contiguous) {
      Out* o = reinterpret_cast<Out*>(p[0]);
      [&]<size_t... K>(std::index_sequence<K...>) {
        std::tuple<const In*...> in{reinterpret_cast<const In*>(p[K + 1])...};
        for (int64_t j = 0; j < n; ++j) o[j] = store_cast<Out>(f(compute_t<In>(std::get<K>(in)[j])...));
      }(std::index_sequence_for<In...>{});
    } else {
      [&]<size_t... K>(std::index_sequence<K...>) {
        for (int64_t j = 0; j < n; ++j)
          *reinterpret_cast<Out*>(p[0] + j * s[0]) = store_cast<Out>(f(load<In>(p[K + 1] + j * s[K + 1])...));
      }(std::index_sequence_for<In...>{});
    }
  };
  const int64_t total = out.numel();
  if (total < kPointwiseGrain) {
    for_each_run(g, 0, total, run);
  } else {
    parallel_for(0, total, kPointwiseGrain, [&](int64_t b, int64_t e) { for_each_run(g, b, e, run); });
  }
}

}  // namespace pacer::ops::cpu

namespace pacer::ops::cpu {

/// A contiguous copy of `t` made directly by the loop engine (no dispatch, no autograd):
/// for kernels that need a dense layout of an input.
inline Tensor materialize(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = empty(t.sizes(), {.dtype = t.dtype(), .device = t.device()});
  dispatch_dtype(t.dtype(), [&]<class T>() { cpu_kernel<T, T>(out, {&t}, [](compute_t<T> v) { return v; }); });
  return out;
}

/// `t` with its dims reordered (a view; no copy).
inline Tensor permuted(const Tensor& t, const Shape& order) {
  Shape sizes, strides;
  for (int64_t d : order) {
    sizes.push_back(t.sizes()[size_t(d)]);
    strides.push_back(t.strides()[size_t(d)]);
  }
  return make_view(t, sizes, strides, t.storage_offset());
}

}  // namespace pacer::ops::cpu
