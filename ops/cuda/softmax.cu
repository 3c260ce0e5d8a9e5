// CUDA softmax / log_softmax along one dim, as ops/cpu/softmax.cpp: max-shifted (the max
// ignores NaN; an all -inf row uses a shift of 0), accumulated in float (double for f64).
// The dense input is viewed as [outer, R, inner] with R the softmax dim:
//  - inner == 1: one warp per row (R <= 1024) or one block per row;
//  - inner >= 32: strided rows, a 32 x 8 block per 32 neighbouring rows (coalesced);
//  - otherwise: the input is copied with dim innermost, done as rows, and copied back.
#include <cuda_runtime.h>
#include <math_constants.h>

#include <algorithm>
#include <type_traits>

#include "ops/api.h"
#include "ops/cpu/loops.h"
#include "ops/cuda/bad_index.h"
#include "ops/cuda/launch.cuh"
#include "ops/cuda/loops.cuh"
#include "ops/graph/cuda_softmax_xent.h"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

template <class C>
__device__ __forceinline__ C dexp(C v) {
  if constexpr (std::is_same_v<C, double>) return ::exp(v);
  else return ::expf(v);
}
template <class C>
__device__ __forceinline__ C dlog(C v) {
  if constexpr (std::is_same_v<C, double>) return ::log(v);
  else return ::logf(v);
}

// The CPU's std::max(m, v): keeps m when v is NaN.
template <class C>
__device__ __forceinline__ C max_keep(C m, C v) { return m < v ? v : m; }

template <class C>
__device__ __forceinline__ C neg_inf() {
  if constexpr (std::is_same_v<C, double>) return -CUDART_INF;
  else return -CUDART_INF_F;
}

// The shift of a row whose (NaN-ignoring) max is mx.
template <class C>
__device__ __forceinline__ C shift_of(C mx) { return mx == neg_inf<C>() ? C(0) : mx; }

template <class C>
__device__ __forceinline__ C warp_allreduce_max(C v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = max_keep(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
template <class C>
__device__ __forceinline__ C warp_allreduce_sum(C v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <class T, bool Log, class C>
__device__ __forceinline__ T finish(C v, C shift, C denom_or_log) {
  if constexpr (Log) return store_value<T>((v - shift) - denom_or_log);
  else return store_value<T>(dexp(v - shift) * denom_or_log);
}

// One warp per row of length R; rows are dense and contiguous ([M, R]).
template <class T, bool Log>
__global__ void softmax_warp_rows(const T* x, T* y, int64_t M, int64_t R) {
  using C = compute_t<T>;
  const int lane = int(threadIdx.x);
  for (int64_t m = int64_t(blockIdx.x) * blockDim.y + threadIdx.y; m < M; m += int64_t(gridDim.x) * blockDim.y) {
    const T* row = x + m * R;
    C mx = neg_inf<C>();
    for (int64_t r = lane; r < R; r += 32) mx = max_keep(mx, C(row[r]));
    const C shift = shift_of(warp_allreduce_max(mx));
    C s = 0;
    for (int64_t r = lane; r < R; r += 32) s += dexp(C(row[r]) - shift);
    s = warp_allreduce_sum(s);
    const C k = Log ? dlog(s) : C(1) / s;
    T* out = y + m * R;
    for (int64_t r = lane; r < R; r += 32) out[r] = finish<T, Log>(C(row[r]), shift, k);
  }
}

// Reduces v over the block (blockDim.x threads, a multiple of 32, at most 1024) and returns
// the result to every thread. `smem` holds 32 values.
template <class C, bool IsMax>
__device__ __forceinline__ C block_allreduce(C v, C* smem) {
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5, nwarps = int(blockDim.x) >> 5;
  v = IsMax ? warp_allreduce_max(v) : warp_allreduce_sum(v);
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  C r = smem[0];
  for (int k = 1; k < nwarps; ++k) r = IsMax ? max_keep(r, smem[k]) : r + smem[k];
  __syncthreads();  // smem may be reused at once
  return r;
}

// One block per row ([M, R] dense, long rows).
template <class T, bool Log>
__global__ void __launch_bounds__(1024) softmax_block_rows(const T* x, T* y, int64_t M, int64_t R) {
  using C = compute_t<T>;
  __shared__ C smem[32];
  for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
    const T* row = x + m * R;
    C mx = neg_inf<C>();
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) mx = max_keep(mx, C(row[r]));
    const C shift = shift_of(block_allreduce<C, true>(mx, smem));
    C s = 0;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) s += dexp(C(row[r]) - shift);
    s = block_allreduce<C, false>(s, smem);
    const C k = Log ? dlog(s) : C(1) / s;
    T* out = y + m * R;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) out[r] = finish<T, Log>(C(row[r]), shift, k);
  }
}

// Strided rows: x is dense [outer, R, inner]; block (32, 8) handles rows (o, i0 .. i0+31),
// threadIdx.y splitting R.
template <class T, bool Log>
__global__ void softmax_strided(const T* x, T* y, int64_t outer, int64_t R, int64_t inner) {
  using C = compute_t<T>;
  __shared__ C smem[8][32];
  const int tx = int(threadIdx.x), ty = int(threadIdx.y);
  const int64_t nib = (inner + 31) / 32, work = outer * nib;
  for (int64_t w = blockIdx.x; w < work; w += gridDim.x) {
    const int64_t o = w / nib, i = (w % nib) * 32 + tx;
    const bool active = i < inner;
    const int64_t base = o * R * inner + i;
    C mx = neg_inf<C>();
    if (active)
      for (int64_t r = ty; r < R; r += 8) mx = max_keep(mx, C(x[base + r * inner]));
    smem[ty][tx] = mx;
    __syncthreads();
    mx = smem[0][tx];
    for (int k = 1; k < 8; ++k) mx = max_keep(mx, smem[k][tx]);
    __syncthreads();
    const C shift = shift_of(mx);
    C s = 0;
    if (active)
      for (int64_t r = ty; r < R; r += 8) s += dexp(C(x[base + r * inner]) - shift);
    smem[ty][tx] = s;
    __syncthreads();
    s = smem[0][tx];
    for (int k = 1; k < 8; ++k) s += smem[k][tx];
    __syncthreads();
    const C norm = Log ? dlog(s) : C(1) / s;
    if (active)
      for (int64_t r = ty; r < R; r += 8) y[base + r * inner] = finish<T, Log>(C(x[base + r * inner]), shift, norm);
  }
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline unsigned grid_cap(int64_t n) { return unsigned(std::clamp<int64_t>(n, 1, int64_t(1) << 20)); }

template <class T, bool Log>
void launch_rows(const T* x, T* y, int64_t M, int64_t R) {
  if (R <= 1024) {
    softmax_warp_rows<T, Log><<<grid_cap(ceil_div(M, 8)), dim3(32, 8), 0, stream()>>>(x, y, M, R);
  } else {
    const unsigned threads = R >= 8192 ? 1024 : 256;
    softmax_block_rows<T, Log><<<grid_cap(M), threads, 0, stream()>>>(x, y, M, R);
  }
  PACER_CUDA_KERNEL_CHECK();
}

template <bool Log>
void softmax_kernel(OpCall& c) {
  const Tensor& x = c.in(0);
  Tensor& out = c.out(0);
  if (x.numel() == 0) return;
  const int64_t nd = x.dim();
  const int64_t dim = nd == 0 ? 0 : c.attrs.i("dim");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < nd; ++d) {
    if (d < dim) outer *= x.size(d);
    else if (d > dim) inner *= x.size(d);
  }
  const int64_t R = nd == 0 ? 1 : x.size(dim);
  dispatch_floating(x.dtype(), c.op.name, [&]<class T>() {
    if (inner == 1 || inner >= 32) {
      // These kernels write [outer, R, inner] densely: an output that keeps a channels-last
      // input's layout gets the result through a dense buffer and a strided copy.
      Tensor in = materialize(x);
      Tensor dst = out.is_contiguous() ? out : empty(out.sizes(), {.dtype = out.dtype(), .device = c.device});
      if (inner == 1) {
        launch_rows<T, Log>(data_ptr<T>(in), data_ptr<T>(dst), outer, R);
      } else {
        const unsigned grid = grid_cap(outer * ceil_div(inner, 32));
        softmax_strided<T, Log><<<grid, dim3(32, 8), 0, stream()>>>(data_ptr<T>(in), data_ptr<T>(dst), outer, R, inner);
        PACER_CUDA_KERNEL_CHECK();
      }
      if (!dst.is_same(out)) cuda_kernel<T, T>(out, {&dst}, Identity{});
    } else {
      // Few neighbouring rows: make dim innermost, do rows, copy back through the inverse view.
      Shape order;
      for (int64_t d = 0; d < nd; ++d)
        if (d != dim) order.push_back(d);
      order.push_back(dim);
      Tensor in = materialize(cpu::permuted(x, order));
      Tensor dst = empty(in.sizes(), {.dtype = out.dtype(), .device = c.device});
      launch_rows<T, Log>(data_ptr<T>(in), data_ptr<T>(dst), outer * inner, R);
      Shape inv(static_cast<size_t>(nd));
      for (size_t i = 0; i < order.size(); ++i) inv[size_t(order[i])] = int64_t(i);
      Tensor back = cpu::permuted(dst, inv);
      cuda_kernel<T, T>(out, {&back}, Identity{});
    }
  });
}

// The softmax_xent fusion's kernels (ops/graph/cuda_softmax_xent.h): one block per row of
// [N, R] logits, the row's shift and log-sum-exp as the softmax above, the log-probabilities
// recomputed where they are needed and rounded to T where the unfused ops store them.

constexpr int kXentThreads = 256;

template <class C>
__device__ __forceinline__ C quiet_nan() {
  if constexpr (std::is_same_v<C, double>) return CUDART_NAN;
  else return CUDART_NAN_F;
}

// The row's shift and log-sum-exp, to every thread of the block.
template <class T, class C>
__device__ __forceinline__ void row_shift_lse(const T* row, int64_t R, C* smem, C& shift, C& lse) {
  C mx = neg_inf<C>();
  for (int64_t r = threadIdx.x; r < R; r += blockDim.x) mx = max_keep(mx, C(row[r]));
  shift = shift_of(block_allreduce<C, true>(mx, smem));
  C s = 0;
  for (int64_t r = threadIdx.x; r < R; r += blockDim.x) s += dexp(C(row[r]) - shift);
  lse = dlog(block_allreduce<C, false>(s, smem));
}

template <class T, class I>
__global__ void __launch_bounds__(kXentThreads)
    xent_pick_rows(const T* x, const I* index, T* picked, T* rowsum, int64_t N, int64_t R, unsigned long long* bad) {
  using C = compute_t<T>;
  __shared__ C smem[32];
  for (int64_t m = blockIdx.x; m < N; m += gridDim.x) {
    const T* row = x + m * R;
    C shift, lse;
    row_shift_lse<T, C>(row, R, smem, shift, lse);
    if (rowsum) {  // the same for the whole block
      C t = 0;
      for (int64_t r = threadIdx.x; r < R; r += blockDim.x) t += C(store_value<T>((C(row[r]) - shift) - lse));
      t = block_allreduce<C, false>(t, smem);
      if (threadIdx.x == 0) rowsum[m] = store_value<T>(t);
    }
    if (threadIdx.x == 0) {
      const int64_t k = int64_t(index[m]);
      if (k >= 0 && k < R) {
        picked[m] = store_value<T>((C(row[k]) - shift) - lse);
      } else {
        picked[m] = store_value<T>(quiet_nan<C>());
        atomicMin(bad, static_cast<unsigned long long>(m));
      }
    }
  }
}

template <class T, class I>
__global__ void __launch_bounds__(kXentThreads)
    xent_backward_rows(const T* x, const I* index, const T* src, const T* spread, T* dx, int64_t N, int64_t R,
                       unsigned long long* bad) {
  using C = compute_t<T>;
  __shared__ C smem[32];
  for (int64_t m = blockIdx.x; m < N; m += gridDim.x) {
    const T* row = x + m * R;
    C shift, lse;
    row_shift_lse<T, C>(row, R, smem, shift, lse);
    const int64_t k = int64_t(index[m]);
    if (threadIdx.x == 0 && (k < 0 || k >= R)) atomicMin(bad, static_cast<unsigned long long>(m));
    // P's element r, as scatter_add into zeros [and the add of the spread] store it.
    const T picked = src[m];
    auto p_at = [&](int64_t r) -> T {
      const T sc = r == k ? picked : T(0);
      return spread ? store_value<T>(C(spread[m]) + C(sc)) : sc;
    };
    C t = 0;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) t += C(p_at(r));
    const C total = C(store_value<T>(block_allreduce<C, false>(t, smem)));
    T* out = dx + m * R;
    for (int64_t r = threadIdx.x; r < R; r += blockDim.x) {
      const T logp = store_value<T>((C(row[r]) - shift) - lse);
      const T ex = store_value<T>(dexp(C(logp)));
      const T mm = store_value<T>(C(ex) * total);
      out[r] = store_value<T>(C(p_at(r)) - C(mm));
    }
  }
}

void check_xent_args(const Tensor& x, const Tensor& index, const char* who) {
  PACER_CHECK(x.dim() == 2 && x.is_contiguous() && x.device().is_cuda() &&
                  (x.dtype() == DType::F32 || x.dtype() == DType::F64),
              "{}: expected contiguous float32 / float64 CUDA logits [N, C], got {} {} on {}", who, x.dtype(),
              x.sizes(), x.device());
  PACER_CHECK(index.numel() == x.size(0) && index.is_contiguous() && index.device() == x.device() &&
                  (index.dtype() == DType::I64 || index.dtype() == DType::I32),
              "{}: expected int64 / int32 class indices [{}, 1] on {}, got {} {} on {}", who, x.size(0), x.device(),
              index.dtype(), index.sizes(), index.device());
}

// Launches `launch(bad_slot)` with a slot for the first row whose index is out of range and
// raises the unfused gather's error for it (ops/cuda/bad_index.h).
template <class F>
void with_index_check(const Tensor& x, const Tensor& index, F launch) {
  const BadIndexSlot bad(x.device());
  launch(bad.get());
  PACER_CUDA_KERNEL_CHECK();
  const int64_t first = bad.first();
  if (first >= 0)
    PACER_FAIL("index {} is out of range for dimension 1 of size {}", BadIndexSlot::value_at(index, first), x.size(1));
}

template <class F>
void dispatch_xent(const Tensor& x, const Tensor& index, const char* who, F f) {
  dispatch_floating(x.dtype(), who, [&]<class T>() {
    if (index.dtype() == DType::I64) f.template operator()<T, int64_t>();
    else f.template operator()<T, int32_t>();
  });
}

void xent_pick(const Tensor& x, const Tensor& index, Tensor& picked, Tensor* rowsum) {
  check_xent_args(x, index, "log_softmax_pick");
  const int64_t N = x.size(0), R = x.size(1);
  if (N == 0) return;
  dispatch_xent(x, index, "log_softmax_pick", [&]<class T, class I>() {
    with_index_check(x, index, [&](unsigned long long* bad) {
      xent_pick_rows<T, I><<<grid_cap(N), kXentThreads, 0, stream()>>>(
          data_ptr<T>(x), data_ptr<I>(index), data_ptr<T>(picked), rowsum ? data_ptr<T>(*rowsum) : nullptr, N, R, bad);
    });
  });
}

void xent_backward(const Tensor& x, const Tensor& index, const Tensor& src, const Tensor& spread, Tensor& dx) {
  check_xent_args(x, index, "log_softmax_xent_backward");
  const int64_t N = x.size(0), R = x.size(1);
  PACER_CHECK(src.numel() == N && src.dtype() == x.dtype() && src.device() == x.device() &&
                  (!spread.defined() || (spread.numel() == N && spread.dtype() == x.dtype() &&
                                         spread.device() == x.device())) &&
                  dx.sizes() == x.sizes() && dx.is_contiguous(),
              "log_softmax_xent_backward: expected src / spread [{}, 1] of {} on {} and dx [{}, {}]", N, x.dtype(),
              x.device(), N, R);
  if (N == 0) return;
  const Tensor s = contiguous(src), u = spread.defined() ? contiguous(spread) : Tensor();
  dispatch_xent(x, index, "log_softmax_xent_backward", [&]<class T, class I>() {
    with_index_check(x, index, [&](unsigned long long* bad) {
      xent_backward_rows<T, I><<<grid_cap(N), kXentThreads, 0, stream()>>>(
          data_ptr<T>(x), data_ptr<I>(index), data_ptr<T>(s), u.defined() ? data_ptr<T>(u) : nullptr,
          data_ptr<T>(dx), N, R, bad);
    });
  });
}

struct RegisterSoftmaxXent {
  RegisterSoftmaxXent() {
    graph::detail::CudaSoftmaxXent& h = graph::detail::cuda_softmax_xent();
    h.pick = &xent_pick;
    h.backward = &xent_backward;
  }
} register_softmax_xent;

}  // namespace

PACER_KERNEL(softmax, CUDA, softmax_kernel<false>);
PACER_KERNEL(log_softmax, CUDA, softmax_kernel<true>);

}  // namespace pacer::ops::cuda
