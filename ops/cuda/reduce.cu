// CUDA reductions: sum, amax, amin, max_dim, min_dim. As on the CPU (ops/cpu/reduce.cpp)
// the input is viewed as [M kept, R reduced] ("rows", reduced dims innermost) or as
// [R reduced, M kept] ("cols", reduced dims outermost); other layouts are first made dense
// as rows. Rows reduce with a warp (short rows) or a block (long rows) per output; cols
// reduce with a 32 x 8 block per 32 outputs. When there are too few outputs to fill the
// GPU, the reduced range is split into chunks whose partial results are reduced by a
// second launch: every step has a fixed order, so results are deterministic.
//
// Accumulation: float for f32/f16/bf16, double for f64, int64 for the integer types and
// bool (as the CPU). max/min keep (value, index) pairs combined with a total order (NaN
// first, then the better value, then the smaller index): whatever the reduction tree, the
// result is the CPU's (the first NaN, else the first position of the extremum).
#include <cuda_runtime.h>

#include <algorithm>
#include <type_traits>

#include "ops/cpu/loops.h"
#include "ops/cuda/launch.cuh"
#include "ops/cuda/loops.cuh"
#include "ops/common/reduce_layout.h"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

template <class T>
using acc_t = std::conditional_t<std::is_floating_point_v<compute_t<T>>, compute_t<T>, int64_t>;

template <class T>
inline constexpr DType dtype_of_v = DType::F32;
template <>
inline constexpr DType dtype_of_v<double> = DType::F64;
template <>
inline constexpr DType dtype_of_v<int64_t> = DType::I64;

template <class V>
__device__ __forceinline__ V shfl_down(V v, int off) {
  if constexpr (std::is_same_v<V, bool>) return __shfl_down_sync(0xffffffffu, int(v), off) != 0;
  else if constexpr (sizeof(V) < 4) return V(__shfl_down_sync(0xffffffffu, int(v), off));
  else if constexpr (std::is_same_v<V, int64_t>) return int64_t(__shfl_down_sync(0xffffffffu, (long long)v, off));
  else return __shfl_down_sync(0xffffffffu, v, off);
}

// ---- the two reductions --------------------------------------------------------------

template <class T, class O>
struct SumOp {
  using In = T;
  using Out = O;
  using Acc = acc_t<T>;
  __device__ static Acc identity() { return Acc(0); }
  __device__ static Acc make(T v, int64_t) { return Acc(compute_t<T>(v)); }
  __device__ static Acc combine(Acc a, Acc b) { return a + b; }
  __device__ static Acc shfl(Acc a, int off) { return shfl_down(a, off); }
  __device__ static void store(Acc a, int64_t m, Out* out, int64_t*) { out[m] = store_value<Out>(a); }
};

template <class C>
struct Ext {
  C v;
  int64_t i;  // position along the reduced range; < 0: empty
};

template <class T, bool IsMax>
struct ExtOp {
  using In = T;
  using Out = T;
  using C = compute_t<T>;
  using Acc = Ext<C>;
  __device__ static Acc identity() { return Acc{C(0), -1}; }
  __device__ static Acc make(T v, int64_t i) { return Acc{C(v), i}; }
  __device__ static Acc combine(Acc a, Acc b) {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    if (b.i < a.i) {
      const Acc t = a;
      a = b;
      b = t;
    }
    // a is the earlier position: it wins unless b is strictly better.
    if constexpr (std::is_floating_point_v<C>) {
      if (a.v != a.v) return a;  // the first NaN wins
      if (b.v != b.v) return b;
    }
    if constexpr (IsMax) return b.v > a.v ? b : a;
    else return b.v < a.v ? b : a;
  }
  __device__ static Acc shfl(Acc a, int off) { return Acc{shfl_down(a.v, off), shfl_down(a.i, off)}; }
  __device__ static void store(Acc a, int64_t m, Out* out, int64_t* idx) {
    out[m] = store_value<Out>(a.v);
    if (idx) idx[m] = a.i;
  }
};

// ---- kernels -------------------------------------------------------------------------

// Input element type of a pass: the op's input (first pass) or its accumulator (second).
template <class Op, bool FromAcc>
using in_t = std::conditional_t<FromAcc, typename Op::Acc, typename Op::In>;

template <class Op, bool FromAcc>
__device__ __forceinline__ typename Op::Acc load_acc(const in_t<Op, FromAcc>* p, int64_t off, int64_t r) {
  if constexpr (FromAcc) return p[off];
  else return Op::make(p[off], r);
}

template <class Op>
__device__ __forceinline__ typename Op::Acc warp_reduce(typename Op::Acc a) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) a = Op::combine(a, Op::shfl(a, off));
  return a;
}

// x: [M, R] dense. Work item w = m * P + p reduces x[m, p*chunk : min(R, (p+1)*chunk)].
// blockDim = (32, 8): one warp per item; (256, 1): one block per item. Results go to
// partial[w] (an [M, P] array) when partial is set, else to out[m] (then P == 1).
template <class Op, bool FromAcc>
__global__ void reduce_rows(const in_t<Op, FromAcc>* x, int64_t M, int64_t R, int64_t chunk, int64_t P,
                            typename Op::Acc* partial, typename Op::Out* out, int64_t* idx) {
  using Acc = typename Op::Acc;
  __shared__ __align__(16) unsigned char raw[32 * sizeof(Acc)];
  Acc* smem = reinterpret_cast<Acc*>(raw);
  const int64_t work = M * P;
  const int lanes = int(blockDim.x);
  const int tid = int(threadIdx.y * blockDim.x + threadIdx.x);
  const int lane = tid & 31, warp = tid >> 5;
  for (int64_t base = int64_t(blockIdx.x) * blockDim.y; base < work; base += int64_t(gridDim.x) * blockDim.y) {
    const int64_t w = base + threadIdx.y;
    Acc acc = Op::identity();
    if (w < work) {
      const int64_t m = w / P, p = w % P;
      const int64_t r0 = p * chunk, r1 = min(R, r0 + chunk);
      const in_t<Op, FromAcc>* row = x + m * R;
      for (int64_t r = r0 + threadIdx.x; r < r1; r += lanes) acc = Op::combine(acc, load_acc<Op, FromAcc>(row, r, r));
    }
    acc = warp_reduce<Op>(acc);
    if (lanes > 32) {  // uniform over the block (blockDim.y == 1 here)
      if (lane == 0) smem[warp] = acc;
      __syncthreads();
      if (warp == 0) {
        acc = lane < lanes / 32 ? smem[lane] : Op::identity();
        acc = warp_reduce<Op>(acc);
      }
      __syncthreads();
    }
    if (threadIdx.x == 0 && w < work) {
      if (partial) partial[w] = acc;
      else Op::store(acc, w, out, idx);
    }
  }
}

// x: [R, M] dense; blockDim = (32, 8); block (bx, p) reduces rows [p*chunk, min(R, (p+1)*chunk))
// of 32 columns. Results go to partial[p * M + m] when partial is set, else to out[m].
template <class Op, bool FromAcc>
__global__ void reduce_cols(const in_t<Op, FromAcc>* x, int64_t R, int64_t M, int64_t chunk,
                            typename Op::Acc* partial, typename Op::Out* out, int64_t* idx) {
  using Acc = typename Op::Acc;
  __shared__ __align__(16) unsigned char raw[8 * 32 * sizeof(Acc)];
  Acc* smem = reinterpret_cast<Acc*>(raw);
  const int64_t ncb = (M + 31) / 32;
  const int64_t p = blockIdx.y;
  const int64_t r0 = p * chunk, r1 = min(R, r0 + chunk);
  for (int64_t cb = blockIdx.x; cb < ncb; cb += gridDim.x) {
    const int64_t m = cb * 32 + threadIdx.x;
    Acc acc = Op::identity();
    if (m < M)
      for (int64_t r = r0 + threadIdx.y; r < r1; r += blockDim.y)
        acc = Op::combine(acc, load_acc<Op, FromAcc>(x, r * M + m, r));
    smem[threadIdx.y * 32 + threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && m < M) {
      for (unsigned k = 1; k < blockDim.y; ++k) acc = Op::combine(acc, smem[k * 32 + threadIdx.x]);
      if (partial) partial[p * M + m] = acc;
      else Op::store(acc, m, out, idx);
    }
    __syncthreads();
  }
}

// ---- host side -----------------------------------------------------------------------

using Layout = ReduceLayout;

Layout arrange(const Tensor& x, const Shape& dims) {
  return arrange_reduction(x, dims, [](const Tensor& t) { return materialize(t); });
}

int64_t sm_count() {
  int dev = 0, n = 0;
  PACER_CUDA_CHECK(cudaGetDevice(&dev));
  PACER_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  return std::max(n, 1);
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline unsigned grid_cap(int64_t n) { return unsigned(std::clamp<int64_t>(n, 1, int64_t(1) << 20)); }

// Scratch of n accumulators on `device` (a byte tensor kept alive by the caller).
template <class Acc>
Tensor scratch(int64_t n, Device device) {
  return empty({n * int64_t(sizeof(Acc))}, {.dtype = DType::U8, .device = device});
}

template <class Op, bool FromAcc>
void launch_rows(const in_t<Op, FromAcc>* x, int64_t M, int64_t R, int64_t chunk, int64_t P,
                 typename Op::Acc* partial, typename Op::Out* out, int64_t* idx) {
  const bool warp_rows = chunk <= 512;
  const dim3 block = warp_rows ? dim3(32, 8) : dim3(256, 1);
  const unsigned grid = grid_cap(ceil_div(M * P, int64_t(block.y)));
  reduce_rows<Op, FromAcc><<<grid, block, 0, stream()>>>(x, M, R, chunk, P, partial, out, idx);
  PACER_CUDA_KERNEL_CHECK();
}

template <class Op, bool FromAcc>
void launch_cols(const in_t<Op, FromAcc>* x, int64_t R, int64_t M, int64_t chunk, int64_t P,
                 typename Op::Acc* partial, typename Op::Out* out, int64_t* idx) {
  const dim3 grid(unsigned(std::min<int64_t>(ceil_div(M, 32), 65535)), unsigned(P));
  reduce_cols<Op, FromAcc><<<grid, dim3(32, 8), 0, stream()>>>(x, R, M, chunk, partial, out, idx);
  PACER_CUDA_KERNEL_CHECK();
}

// Reduces l.dense into out[M] (and idx[M] for max/min with indices).
template <class Op>
void run_reduce(const Layout& l, typename Op::Out* out, int64_t* idx, Device device) {
  using Acc = typename Op::Acc;
  using In = typename Op::In;
  const In* x = static_cast<const In*>(l.dense.data());
  const int64_t M = l.M, R = l.R;
  if (M == 0) return;
  const int64_t target = 4 * sm_count();  // blocks wanted in flight
  if (!l.reduced_outer) {
    int64_t P = 1;
    if (M < target && R > 8192) P = std::min(ceil_div(R, 4096), ceil_div(target, M));
    const int64_t chunk = P > 1 ? ceil_div(R, P) : R;
    if (P > 1) P = ceil_div(R, chunk);
    if (P == 1) return launch_rows<Op, false>(x, M, R, R, 1, nullptr, out, idx);
    Tensor buf = scratch<Acc>(M * P, device);
    Acc* part = static_cast<Acc*>(buf.data());
    launch_rows<Op, false>(x, M, R, chunk, P, part, nullptr, nullptr);
    launch_rows<Op, true>(part, M, P, P, 1, nullptr, out, idx);
  } else {
    const int64_t ncb = ceil_div(M, 32);
    int64_t P = 1;
    if (ncb < target && R > 256) P = std::min({ceil_div(R, 128), ceil_div(target, ncb), int64_t(65535)});
    const int64_t chunk = P > 1 ? ceil_div(R, P) : R;
    if (P > 1) P = ceil_div(R, chunk);
    if (P == 1) return launch_cols<Op, false>(x, R, M, R, 1, nullptr, out, idx);
    Tensor buf = scratch<Acc>(M * P, device);
    Acc* part = static_cast<Acc*>(buf.data());
    launch_cols<Op, false>(x, R, M, chunk, P, part, nullptr, nullptr);
    launch_cols<Op, true>(part, P, M, P, 1, nullptr, out, idx);
  }
}

void sum_kernel(OpCall& c) {
  const Tensor& x = c.in(0);
  Tensor& out = c.out(0);
  if (out.numel() == 0) return;
  Layout l = arrange(x, c.attrs.shape("dims"));
  dispatch_dtype(x.dtype(), [&]<class T>() {
    using A = acc_t<T>;
    if (out.dtype() == x.dtype()) {
      run_reduce<SumOp<T, T>>(l, data_ptr<T>(out), nullptr, c.device);
    } else if (out.dtype() == dtype_of_v<A>) {
      run_reduce<SumOp<T, A>>(l, data_ptr<A>(out), nullptr, c.device);
    } else {
      // Any other output dtype: accumulate into the accumulator's dtype, then convert
      // (the same single rounding as the CPU's store_cast of the accumulator).
      Tensor tmp = empty(out.sizes(), {.dtype = dtype_of_v<A>, .device = c.device});
      run_reduce<SumOp<T, A>>(l, data_ptr<A>(tmp), nullptr, c.device);
      dispatch_dtype(out.dtype(), [&]<class O>() { cuda_kernel<O, A>(out, {&tmp}, Identity{}); });
    }
  });
}

template <bool IsMax>
void extremum(const Tensor& x, const Shape& dims, Tensor& values, Tensor* indices, Device device) {
  Layout l = arrange(x, dims);
  PACER_CHECK(l.R > 0, "cannot reduce over a dimension of size 0 (no identity for max/min)");
  dispatch_dtype(x.dtype(), [&]<class T>() {
    run_reduce<ExtOp<T, IsMax>>(l, data_ptr<T>(values), indices ? data_ptr<int64_t>(*indices) : nullptr, device);
  });
}

void amax_kernel(OpCall& c) { extremum<true>(c.in(0), c.attrs.shape("dims"), c.out(0), nullptr, c.device); }
void amin_kernel(OpCall& c) { extremum<false>(c.in(0), c.attrs.shape("dims"), c.out(0), nullptr, c.device); }
void max_dim_kernel(OpCall& c) { extremum<true>(c.in(0), {c.attrs.i("dim")}, c.out(0), &c.out(1), c.device); }
void min_dim_kernel(OpCall& c) { extremum<false>(c.in(0), {c.attrs.i("dim")}, c.out(0), &c.out(1), c.device); }

}  // namespace

PACER_KERNEL(sum, CUDA, sum_kernel);
PACER_KERNEL(amax, CUDA, amax_kernel);
PACER_KERNEL(amin, CUDA, amin_kernel);
PACER_KERNEL(max_dim, CUDA, max_dim_kernel);
PACER_KERNEL(min_dim, CUDA, min_dim_kernel);

}  // namespace pacer::ops::cuda
