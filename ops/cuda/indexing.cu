// CUDA kernels of cat, index_select, gather, scatter(_add), pad, slice_backward, one_hot:
// the twins of ops/cpu/indexing.cpp. Region copies and fills reuse the elementwise engine
// (loops.cuh) on strided views of the output, exactly as the CPU kernels do; the indexed
// ops share one kernel over a coalesced geometry of the index space.
//
// Index validation (ops/cuda/bad_index.h): a thread that meets an out-of-range index skips
// its element and records its flat position; after the launch the first one is read back and
// the CPU's message is thrown, naming the first bad index in the index tensor's order. The
// cost is one host sync per call of index_select / gather / scatter / scatter_add / one_hot
// (none while a CUDA graph is being captured: then bad indices are skipped, not raised).
//
// scatter with repeated indices: the CPU writes in index order, so the last write wins;
// here the writes race and which one lands is unspecified (as in other GPU frameworks).
// scatter_add accumulates with atomics, so float sums may differ from the CPU's in
// rounding (the summation order is not fixed).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <array>
#include <type_traits>

#include "ops/cuda/bad_index.h"
#include "ops/cuda/loops.cuh"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

// ---------------------------------------------------------------------------------------
// Region copies and fills (as the CPU: the engine on strided views of the output).

struct Identity {
  template <class C>
  PACER_HOST_DEVICE C operator()(C v) const { return v; }
};

template <class C>
struct Constant {
  C value;
  PACER_HOST_DEVICE C operator()() const { return value; }
};

// `t` itself when it is on the device, else a device copy (a 0-dim CPU tensor may join a
// CUDA call as a scalar; kernels that read it through a raw pointer need it on the device).
Tensor on_device(const Tensor& t, Device d) { return t.is_cpu() ? t.to(d) : t; }

void copy_into(const Tensor& dst, const Tensor& src) {
  dispatch_dtype(dst.dtype(), [&]<class T>() { cuda_kernel<T, T>(dst, {&src}, Identity{}); });
}

void fill(const Tensor& dst, const Scalar& value) {
  dispatch_dtype(dst.dtype(), [&]<class T>() {
    using C = compute_t<T>;
    cuda_kernel<T>(dst, {}, Constant<C>{value.to<C>()});
  });
}

// The view of `t` with dim `dim` narrowed to [start, start + len) in steps of `step`.
Tensor region(const Tensor& t, int64_t dim, int64_t start, int64_t len, int64_t step = 1) {
  Shape s = t.sizes(), st = t.strides();
  s[size_t(dim)] = len;
  st[size_t(dim)] *= step;
  return make_view(t, s, st, t.storage_offset() + start * t.stride(dim));
}

void cat_kernel(OpCall& c) {
  const int64_t dim = c.attrs.i("dim");
  int64_t at = 0;
  for (const Tensor& x : c.inputs) {
    if (x.numel() > 0) copy_into(region(c.out(0), dim, at, x.size(dim)), x);
    at += x.size(dim);
  }
}

void pad_kernel(OpCall& c) {
  Tensor& out = c.out(0);
  const Shape& p = c.attrs.shape("pad");
  if (out.numel() == 0) return;
  fill(out, c.attrs.scalar("value"));
  Tensor inner = out;
  for (size_t i = 0; i < p.size() / 2; ++i) {
    const int64_t dim = out.dim() - 1 - int64_t(i);
    inner = region(inner, dim, p[2 * i], c.in(0).size(dim));
  }
  if (c.in(0).numel() > 0) copy_into(inner, c.in(0));
}

void slice_backward_kernel(OpCall& c) {
  Tensor& out = c.out(0);
  if (out.numel() == 0) return;
  fill(out, 0);
  const Tensor& g = c.in(0);
  const int64_t dim = c.attrs.i("dim");
  if (g.numel() > 0) copy_into(region(out, dim, c.attrs.i("start"), g.size(dim), c.attrs.i("step")), g);
}

// ---------------------------------------------------------------------------------------
// The indexed kernel. Iterates over an index space (the output's shape for index_select,
// the index's shape otherwise) with three operands, in elements: 0 = the index tensor,
// 1 = the read side, 2 = the write side. The dim being indexed has stride 0 in the side
// that the index value addresses; that side gets `k * sel_stride` instead.

constexpr int kMaxIndexDims = 16;
constexpr int kOperands = 3;

struct IndexGeom {
  int ndim = 0;
  int64_t sizes[kMaxIndexDims] = {};
  int64_t strides[kOperands][kMaxIndexDims] = {};
};

// Drops size-1 dims and merges adjacent dims that every operand walks as one (row-major
// linear order is preserved, so flat positions keep their meaning). `sizes` must have no 0.
IndexGeom make_geom(const Shape& sizes, const std::array<Shape, kOperands>& strides) {
  struct Dim {
    int64_t size;
    std::array<int64_t, kOperands> st;
  };
  std::vector<Dim> dims;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    Dim cur{sizes[d], {}};
    for (int k = 0; k < kOperands; ++k) cur.st[size_t(k)] = strides[size_t(k)][d];
    if (!dims.empty()) {
      Dim& outer = dims.back();
      bool merge = true;
      for (int k = 0; k < kOperands; ++k) merge = merge && outer.st[size_t(k)] == cur.st[size_t(k)] * cur.size;
      if (merge) {
        outer.size *= cur.size;
        outer.st = cur.st;
        continue;
      }
    }
    dims.push_back(cur);
  }
  PACER_CHECK(dims.size() <= size_t(kMaxIndexDims), "CUDA indexing: {} dims after coalescing, at most {} supported",
              dims.size(), kMaxIndexDims);
  IndexGeom g;
  g.ndim = int(dims.size());
  for (size_t d = 0; d < dims.size(); ++d) {
    g.sizes[d] = dims[d].size;
    for (int k = 0; k < kOperands; ++k) g.strides[k][d] = dims[d].st[size_t(k)];
  }
  return g;
}

// Element offset of operand k at flat position `pos` of the geometry (host side).
int64_t host_offset(const IndexGeom& g, int k, int64_t pos) {
  int64_t off = 0;
  for (int d = g.ndim - 1; d >= 0; --d) {
    off += (pos % g.sizes[d]) * g.strides[k][d];
    pos /= g.sizes[d];
  }
  return off;
}

// scatter_add's accumulation: out += v, atomically.
template <class T>
__device__ __forceinline__ void atomic_accumulate(T* p, T v) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, int32_t>) {
    atomicAdd(p, v);
  } else if constexpr (std::is_same_v<T, int64_t>) {
    // Two's-complement addition is the same on the unsigned representation.
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
  } else if constexpr (std::is_same_v<T, Half>) {
    atomicAdd(reinterpret_cast<__half*>(p), __ushort_as_half(v.bits));
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    atomicAdd(reinterpret_cast<__nv_bfloat16*>(p), __ushort_as_bfloat16(v.bits));
  } else if constexpr (std::is_same_v<T, bool>) {
    // The CPU stores bool(a + b) == a || b: only a true source changes the cell, and every
    // such writer stores the same byte.
    if (v) *reinterpret_cast<volatile bool*>(p) = true;
  } else {
    static_assert(std::is_same_v<T, uint8_t>, "unhandled scatter_add type");
    // No byte atomics: compare-and-swap on the aligned 32-bit word holding the byte (device
    // allocations are at least 256-byte aligned and rounded up, so the word is in bounds).
    const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
    unsigned int* word = reinterpret_cast<unsigned int*>(addr & ~uintptr_t(3));
    const unsigned int shift = unsigned(addr & 3) * 8u;
    unsigned int old = *word, assumed;
    do {
      assumed = old;
      const unsigned int byte = ((assumed >> shift) + unsigned(v)) & 0xffu;
      old = atomicCAS(word, assumed, (assumed & ~(0xffu << shift)) | (byte << shift));
    } while (assumed != old);
  }
}

enum class Mode { Copy, Add, One, Check };  // Check: validate the indices only

// For each flat position i < total: k = index[off0]; when 0 <= k < n,
// dst[off2 + k * dst_sel] (=, +=) src[off1 + k * src_sel] (Mode::One stores T(1), Mode::Check
// nothing);
// otherwise records i in *bad when `bad` is set (the smallest such i survives) and touches
// nothing.
template <Mode M, class T, class I>
__global__ void index_kernel(int64_t total, IndexGeom g, const I* __restrict__ index, const T* src, T* dst, int64_t n,
                             int64_t src_sel, int64_t dst_sel, unsigned long long* bad) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[kOperands] = {0, 0, 0};
    int64_t rest = i;
    for (int d = g.ndim - 1; d >= 0; --d) {
      const int64_t q = rest % g.sizes[d];
      rest /= g.sizes[d];
#pragma unroll
      for (int k = 0; k < kOperands; ++k) off[k] += q * g.strides[k][d];
    }
    const int64_t k = int64_t(index[off[0]]);
    if (k < 0 || k >= n) {
      if (bad) atomicMin(bad, static_cast<unsigned long long>(i));
      continue;
    }
    if constexpr (M == Mode::Check) continue;
    T* cell = dst + off[2] + k * dst_sel;
    if constexpr (M == Mode::One) *cell = T(1);
    else if constexpr (M == Mode::Copy) *cell = src[off[1] + k * src_sel];
    else atomic_accumulate(cell, src[off[1] + k * src_sel]);
  }
}

// Runs one indexed launch and raises the CPU's error for an out-of-range index.
// `message(k)` formats the error for bad index value k.
template <Mode M, class T, class F>
void run_indexed(const IndexGeom& g, int64_t total, const Tensor& index, const T* src, T* dst, int64_t n,
                 int64_t src_sel, int64_t dst_sel, Device device, F message) {
  if (total == 0) return;
  const cudaStream_t s = stream();
  const BadIndexSlot bad(device);
  auto launch = [&]<class I>() {
    index_kernel<M, T, I><<<blocks_for(total), kThreads, 0, s>>>(total, g, static_cast<const I*>(index.data()), src,
                                                                 dst, n, src_sel, dst_sel, bad.get());
    PACER_CUDA_KERNEL_CHECK();
  };
  if (index.dtype() == DType::I64) launch.template operator()<int64_t>();
  else launch.template operator()<int32_t>();
  const int64_t first = bad.first();
  if (first >= 0) message(BadIndexSlot::value_at(index, host_offset(g, 0, first)));
}

// Stride of `t` in dim `d`, and `t`'s strides with dim `d`'s set to 0.
Shape strides_without(const Tensor& t, int64_t d) {
  Shape st = t.strides();
  if (t.dim() > 0) st[size_t(d)] = 0;
  return st;
}

void index_select_kernel(OpCall& c) {
  const Tensor& x0 = c.in(0);
  Tensor& out = c.out(0);
  if (x0.dim() == 0) return copy_into(out, x0);  // as the CPU: no index check for a 0-d input
  const Tensor x = on_device(x0, c.device), idx = on_device(c.in(1), c.device);
  const int64_t dim = c.attrs.i("dim"), n = x.size(dim);
  auto message = [&](int64_t k) { PACER_FAIL("index {} is out of range for dimension {} of size {}", k, dim, n); };
  if (out.numel() == 0) {
    // Nothing to copy, but the CPU still checks every index.
    if (idx.numel() == 0) return;
    const Shape no_st(size_t(idx.dim()), 0);
    const IndexGeom g = make_geom(idx.sizes(), {idx.strides(), no_st, no_st});
    return run_indexed<Mode::Check>(g, idx.numel(), idx, static_cast<const int64_t*>(nullptr),
                                    static_cast<int64_t*>(nullptr), n, 0, 0, c.device, message);
  }
  // Index space = the output's shape; the index walks dim `dim` only.
  Shape idx_st(size_t(out.dim()), 0);
  if (idx.dim() == 1) idx_st[size_t(dim)] = idx.stride(0);
  const IndexGeom g = make_geom(out.sizes(), {idx_st, strides_without(x, dim), contiguous_strides(out.sizes())});
  dispatch_dtype(x.dtype(), [&]<class T>() {
    run_indexed<Mode::Copy>(g, out.numel(), idx, data_ptr<T>(x), data_ptr<T>(out), n, x.stride(dim), 0, c.device,
                            message);
  });
}

void gather_kernel(OpCall& c) {
  const Tensor x = on_device(c.in(0), c.device), idx = on_device(c.in(1), c.device);
  Tensor& out = c.out(0);  // contiguous, idx's shape
  const int64_t dim = x.dim() == 0 ? 0 : c.attrs.i("dim");
  const int64_t n = x.dim() == 0 ? 1 : x.size(dim), xs = x.dim() == 0 ? 0 : x.stride(dim);
  if (out.numel() == 0) return;
  const IndexGeom g = make_geom(idx.sizes(), {idx.strides(), strides_without(x, dim), contiguous_strides(idx.sizes())});
  dispatch_dtype(x.dtype(), [&]<class T>() {
    run_indexed<Mode::Copy>(g, idx.numel(), idx, data_ptr<T>(x), data_ptr<T>(out), n, xs, 0, c.device,
                            [&](int64_t k) {
                              PACER_FAIL("index {} is out of range for dimension {} of size {}", k, dim, n);
                            });
  });
}

template <bool Add>
void scatter_kernel(OpCall& c) {
  const Tensor& x = c.in(0);
  const Tensor idx = on_device(c.in(1), c.device), src = on_device(c.in(2), c.device);
  Tensor& out = c.out(0);  // contiguous, x's shape
  copy_into(out, x);
  const int64_t dim = x.dim() == 0 ? 0 : c.attrs.i("dim");
  const int64_t n = x.dim() == 0 ? 1 : x.size(dim), os = x.dim() == 0 ? 0 : out.stride(dim);
  if (idx.numel() == 0) return;
  // The source is walked at the index's positions (it may be larger than the index).
  const IndexGeom g = make_geom(idx.sizes(), {idx.strides(), src.strides(), strides_without(out, dim)});
  dispatch_dtype(x.dtype(), [&]<class T>() {
    run_indexed<Add ? Mode::Add : Mode::Copy>(
        g, idx.numel(), idx, data_ptr<T>(src), data_ptr<T>(out), n, 0, os, c.device,
        [&](int64_t k) { PACER_FAIL("index {} is out of range for dimension {} of size {}", k, dim, n); });
  });
}

void one_hot_kernel(OpCall& c) {
  const Tensor idx = on_device(c.in(0), c.device);
  Tensor& out = c.out(0);  // contiguous int64, idx's shape + [num_classes]
  const int64_t n = c.attrs.i("num_classes");
  if (out.numel() == 0) return;
  PACER_CUDA_CHECK(cudaMemsetAsync(out.data(), 0, out.nbytes(), stream()));
  Shape out_st = contiguous_strides(idx.sizes());
  for (int64_t& s : out_st) s *= n;
  const IndexGeom g = make_geom(idx.sizes(), {idx.strides(), Shape(size_t(idx.dim()), 0), out_st});
  run_indexed<Mode::One>(g, idx.numel(), idx, static_cast<const int64_t*>(nullptr), data_ptr<int64_t>(out), n, 0, 1,
                         c.device, [&](int64_t k) {
                           PACER_FAIL("class index {} is out of range for num_classes {}", k, n);
                         });
}

}  // namespace

PACER_KERNEL(cat, CUDA, cat_kernel);
PACER_KERNEL(index_select, CUDA, index_select_kernel);
PACER_KERNEL(gather, CUDA, gather_kernel);
PACER_KERNEL(scatter, CUDA, scatter_kernel<false>);
PACER_KERNEL(scatter_add, CUDA, scatter_kernel<true>);
PACER_KERNEL(pad, CUDA, pad_kernel);
PACER_KERNEL(slice_backward, CUDA, slice_backward_kernel);
PACER_KERNEL(one_hot, CUDA, one_hot_kernel);

}  // namespace pacer::ops::cuda
