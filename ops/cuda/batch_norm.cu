// CUDA training batch norm: own kernels (not cuDNN), so that the outputs are exactly the CPU
// op's: y, the batch mean and 1 / sqrt(biased var + eps), in f32 (f64 for f64 inputs); no
// running statistics (batch_norm() updates them with public ops).
// x is read as a contiguous [N, C, S] (S = spatial size), or, when the output is channels-last
// (a channels-last 4-d input on CUDA keeps its layout, as in PyTorch), as NHWC: a row-major
// [M, C] matrix (M = N * H * W) whose per-channel reductions run over columns, 32 channels
// per block so that each warp reads whole rows (other layouts are copied first).
// Forward: per-channel Welford partials over a grid of (channel, split) blocks, a per-channel
// merge that also folds weight/bias into scale/shift, then y = x * scale + shift.
// Backward: per-channel partial sums of dy and dy * (x - mean), a per-channel finalize (dw,
// db and the dx coefficients), then dx = k1 * (dy - mean(dy) - (x - mean) * k2).
// Statistics and sums are kept in f32 (f64 for f64); deterministic (no atomics). Dense
// channels-last tensors whose channels suit 16-byte vectors go to the vectorized kernels of
// ops/cuda/batch_norm_nhwc.cu instead.
#include <initializer_list>

#include "ops/api.h"
#include "ops/cuda/batch_norm.h"
#include "ops/cuda/batch_norm_common.cuh"
#include "ops/cuda/launch.cuh"
#include "ops/registry.h"
#include "ops/shape_utils.h"

namespace pacer::ops::cuda {

using namespace bn;

namespace {

constexpr int kWarps = kThreads / 32;
static_assert(kThreads % 32 == 0 && kWarps <= 32, "block size must be whole warps, at most 32");

template <class A>
struct Welford {
  int64_t n;
  A mean, m2;
};

template <class A>
__device__ Welford<A> merge(Welford<A> a, Welford<A> b) {
  if (b.n == 0) return a;
  if (a.n == 0) return b;
  const int64_t n = a.n + b.n;
  const A delta = b.mean - a.mean;
  const A frac = A(b.n) / A(n);
  return {n, a.mean + delta * frac, a.m2 + b.m2 + delta * delta * A(a.n) * frac};
}

template <class A>
__device__ Welford<A> shfl_down(Welford<A> w, int offset) {
  return {__shfl_down_sync(0xffffffffu, w.n, offset), __shfl_down_sync(0xffffffffu, w.mean, offset),
          __shfl_down_sync(0xffffffffu, w.m2, offset)};
}

// Block-wide Welford merge; the result is valid in thread 0.
template <class A>
__device__ Welford<A> block_merge(Welford<A> w) {
  __shared__ int64_t sn[kWarps];
  __shared__ A smean[kWarps], sm2[kWarps];
  for (int off = 16; off > 0; off >>= 1) w = merge(w, shfl_down(w, off));
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5;
  if (lane == 0) {
    sn[warp] = w.n;
    smean[warp] = w.mean;
    sm2[warp] = w.m2;
  }
  __syncthreads();
  if (warp == 0) {
    w = lane < kWarps ? Welford<A>{sn[lane], smean[lane], sm2[lane]} : Welford<A>{0, A(0), A(0)};
    for (int off = 16; off > 0; off >>= 1) w = merge(w, shfl_down(w, off));
  }
  return w;
}

// Block-wide sums of two values; the result is valid in thread 0.
template <class A>
__device__ void block_sum2(A& a, A& b) {
  __shared__ A sa[kWarps], sb[kWarps];
  for (int off = 16; off > 0; off >>= 1) {
    a += __shfl_down_sync(0xffffffffu, a, off);
    b += __shfl_down_sync(0xffffffffu, b, off);
  }
  const int lane = int(threadIdx.x) & 31, warp = int(threadIdx.x) >> 5;
  if (lane == 0) {
    sa[warp] = a;
    sb[warp] = b;
  }
  __syncthreads();
  if (warp == 0) {
    a = lane < kWarps ? sa[lane] : A(0);
    b = lane < kWarps ? sb[lane] : A(0);
    for (int off = 16; off > 0; off >>= 1) {
      a += __shfl_down_sync(0xffffffffu, a, off);
      b += __shfl_down_sync(0xffffffffu, b, off);
    }
  }
}

// The channel-c elements of a contiguous [N, C, S] tensor are j in [0, N * S):
// (j / S) * C * S + c * S + j % S.
__device__ __forceinline__ int64_t channel_index(int64_t j, int64_t c, int64_t C, int64_t S) {
  const int64_t n = j / S;
  return (n * C + c) * S + (j - n * S);
}

// Grid (C, splits): block (c, sp) covers j in [sp * chunk, min(M, (sp + 1) * chunk)).
template <class T, class A>
__global__ void stats_partial_kernel(const T* __restrict__ x, int64_t C, int64_t S, int64_t M, int64_t chunk,
                                     A* __restrict__ pmean, A* __restrict__ pm2, int64_t* __restrict__ pcount) {
  const int64_t c = blockIdx.x, sp = blockIdx.y, splits = gridDim.y;
  const int64_t begin = sp * chunk, end = begin + chunk < M ? begin + chunk : M;
  Welford<A> w{0, A(0), A(0)};
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
    const A v = A(compute_t<T>(x[channel_index(j, c, C, S)]));
    w.n += 1;
    const A delta = v - w.mean;
    w.mean += delta / A(w.n);
    w.m2 += delta * (v - w.mean);
  }
  w = block_merge(w);
  if (threadIdx.x == 0) {
    pmean[c * splits + sp] = w.mean;
    pm2[c * splits + sp] = w.m2;
    pcount[c * splits + sp] = w.n;
  }
}

// One thread per channel: merge the splits, write mean / invstd, and scale / shift for y.
template <class T, class A>
__global__ void stats_finalize_kernel(int64_t C, int64_t splits, int64_t M, double eps, const A* __restrict__ pmean,
                                      const A* __restrict__ pm2, const int64_t* __restrict__ pcount,
                                      const void* weight, const void* bias, bool f32_params, A* __restrict__ mean,
                                      A* __restrict__ invstd, A* __restrict__ scale, A* __restrict__ shift) {
  const int64_t step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < C; c += step) {
    Welford<A> w{0, A(0), A(0)};
    for (int64_t sp = 0; sp < splits; ++sp)
      w = merge(w, Welford<A>{pcount[c * splits + sp], pmean[c * splits + sp], pm2[c * splits + sp]});
    A var = w.m2 / A(M);
    if (var < A(0)) var = A(0);  // rounding only; NaN passes through, as on the CPU
    A inv;
    if constexpr (std::is_same_v<A, double>) inv = 1.0 / ::sqrt(var + eps);
    else inv = 1.0f / sqrtf(var + float(eps));
    mean[c] = w.mean;
    invstd[c] = inv;
    const A sc = param_at<T, A>(weight, f32_params, c, A(1)) * inv;
    scale[c] = sc;
    shift[c] = param_at<T, A>(bias, f32_params, c, A(0)) - w.mean * sc;
  }
}

// Elementwise over x and y in one layout: NCHW (channel (i / S) % C) or NHWC (i % C).
template <class T, class A, bool kNhwc>
__global__ void bn_apply_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t total, int64_t C, int64_t S,
                                const A* __restrict__ scale, const A* __restrict__ shift) {
  using Cpt = compute_t<T>;
  const int64_t step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t c = kNhwc ? i % C : (i / S) % C;
    y[i] = T(Cpt(x[i]) * Cpt(scale[c]) + Cpt(shift[c]));
  }
}

template <class T, class A>
__global__ void grad_partial_kernel(const T* __restrict__ dy, const T* __restrict__ x, const A* __restrict__ mean,
                                    int64_t C, int64_t S, int64_t M, int64_t chunk, A* __restrict__ psdy,
                                    A* __restrict__ psdyx) {
  const int64_t c = blockIdx.x, sp = blockIdx.y, splits = gridDim.y;
  const int64_t begin = sp * chunk, end = begin + chunk < M ? begin + chunk : M;
  const A mu = mean[c];
  A sdy = A(0), sdyx = A(0);
  for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
    const int64_t i = channel_index(j, c, C, S);
    const A g = A(compute_t<T>(dy[i]));
    sdy += g;
    sdyx += g * (A(compute_t<T>(x[i])) - mu);
  }
  block_sum2(sdy, sdyx);
  if (threadIdx.x == 0) {
    psdy[c * splits + sp] = sdy;
    psdyx[c * splits + sp] = sdyx;
  }
}

template <class T, class A, bool kNhwc>
__global__ void grad_apply_kernel(const T* __restrict__ dy, const T* __restrict__ x, const A* __restrict__ mean,
                                  const A* __restrict__ coef, T* __restrict__ dx, int64_t total, int64_t C,
                                  int64_t S) {
  using Cpt = compute_t<T>;
  const int64_t step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += step) {
    const int64_t c = kNhwc ? i % C : (i / S) % C;
    const Cpt k1 = Cpt(coef[c]), mdy = Cpt(coef[C + c]), k2 = Cpt(coef[2 * C + c]), mu = Cpt(mean[c]);
    dx[i] = T(k1 * (Cpt(dy[i]) - mdy - (Cpt(x[i]) - mu) * k2));
  }
}

// --- channels-last ([M, C] row-major) ------------------------------------------------
// Blocks of kThreads = 32 channels x kRows rows: thread (r, l) takes channel tile * 32 + l and
// rows begin + r, begin + r + kRows, ... of its split; the kRows partials of a channel are
// then merged in a fixed order (deterministic).
constexpr int kRows = kThreads / 32;

template <class T, class A>
__global__ void stats_partial_nhwc_kernel(const T* __restrict__ x, int64_t C, int64_t M, int64_t chunk,
                                          A* __restrict__ pmean, A* __restrict__ pm2, int64_t* __restrict__ pcount) {
  __shared__ int64_t sn[kRows][32];
  __shared__ A smean[kRows][32], sm2[kRows][32];
  const int lane = int(threadIdx.x) & 31, row = int(threadIdx.x) >> 5;
  const int64_t c = int64_t(blockIdx.x) * 32 + lane, sp = blockIdx.y, splits = gridDim.y;
  const int64_t begin = sp * chunk, end = begin + chunk < M ? begin + chunk : M;
  Welford<A> w{0, A(0), A(0)};
  if (c < C) {
    for (int64_t j = begin + row; j < end; j += kRows) {
      const A v = A(compute_t<T>(x[j * C + c]));
      w.n += 1;
      const A delta = v - w.mean;
      w.mean += delta / A(w.n);
      w.m2 += delta * (v - w.mean);
    }
  }
  sn[row][lane] = w.n;
  smean[row][lane] = w.mean;
  sm2[row][lane] = w.m2;
  __syncthreads();
  if (row == 0 && c < C) {
    for (int r = 1; r < kRows; ++r) w = merge(w, Welford<A>{sn[r][lane], smean[r][lane], sm2[r][lane]});
    pmean[c * splits + sp] = w.mean;
    pm2[c * splits + sp] = w.m2;
    pcount[c * splits + sp] = w.n;
  }
}

template <class T, class A>
__global__ void grad_partial_nhwc_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                         const A* __restrict__ mean, int64_t C, int64_t M, int64_t chunk,
                                         A* __restrict__ psdy, A* __restrict__ psdyx) {
  __shared__ A sa[kRows][32], sb[kRows][32];
  const int lane = int(threadIdx.x) & 31, row = int(threadIdx.x) >> 5;
  const int64_t c = int64_t(blockIdx.x) * 32 + lane, sp = blockIdx.y, splits = gridDim.y;
  const int64_t begin = sp * chunk, end = begin + chunk < M ? begin + chunk : M;
  A sdy = A(0), sdyx = A(0);
  if (c < C) {
    const A mu = mean[c];
    for (int64_t j = begin + row; j < end; j += kRows) {
      const A g = A(compute_t<T>(dy[j * C + c]));
      sdy += g;
      sdyx += g * (A(compute_t<T>(x[j * C + c])) - mu);
    }
  }
  sa[row][lane] = sdy;
  sb[row][lane] = sdyx;
  __syncthreads();
  if (row == 0 && c < C) {
    for (int r = 1; r < kRows; ++r) {
      sdy += sa[r][lane];
      sdyx += sb[r][lane];
    }
    psdy[c * splits + sp] = sdy;
    psdyx[c * splits + sp] = sdyx;
  }
}

// Splits of the M rows for channel-last partials: ~4 blocks per SM's worth in all (2048
// blocks over the channel tiles), at least 4 rows per thread.
int64_t split_count_nhwc(int64_t C, int64_t M) {
  const int64_t tiles = (C + 31) / 32;
  const int64_t by_size = (M + kRows * 4 - 1) / (kRows * 4);
  const int64_t by_tiles = std::max<int64_t>(1, 2048 / tiles);
  return std::clamp<int64_t>(std::min(by_size, by_tiles), 1, 65535);
}

// Splits of the N * S reduction per channel: enough blocks to fill the GPU for few channels,
// at least ~4 elements per thread.
int64_t split_count(int64_t C, int64_t M) {
  const int64_t by_size = (M + kThreads * 4 - 1) / (kThreads * 4);
  const int64_t by_channels = std::max<int64_t>(1, 2048 / std::max<int64_t>(C, 1));
  return std::clamp<int64_t>(std::min(by_size, by_channels), 1, 1024);
}

Tensor optional_input(const OpCall& c, size_t i) {
  return c.inputs.size() > i && c.in(i).defined() ? contiguous(c.in(i)) : Tensor();
}

// t as a dense channels-last tensor (itself when it is one).
Tensor channels_last_dense(const Tensor& t) {
  return is_channels_last(t) ? t : permute(contiguous(permute(t, {0, 2, 3, 1})), {0, 3, 1, 2});
}

// Whether the vectorized channels-last kernels (batch_norm_nhwc.cu) take dense channels-last
// x and the other operands as they are: channels that suit them, 16-byte aligned pointers,
// every operand strictly dense channels-last (is_channels_last also passes odd strides on
// size-1 dims, which those kernels refuse), not under PACER_BN_SCALAR=1.
bool vectorized(const Tensor& x, std::initializer_list<const Tensor*> others) {
  if (!batch_norm_vec_takes({.sizes = x.sizes(), .dtype = x.dtype(), .device = x.device(), .strides = x.strides()}) ||
      !aligned16(x.data()))
    return false;
  for (const Tensor* t : others)
    if (!aligned16(t->data()) || !is_dense_channels_last(t->sizes(), t->strides())) return false;
  return true;
}

void forward_kernel(OpCall& c) {
  const bool nhwc = is_channels_last(c.out(0));  // the infer kept a channels-last input's layout
  const Tensor x = nhwc ? channels_last_dense(c.in(0)) : contiguous(c.in(0));
  const Tensor w = optional_input(c, 1), b = optional_input(c, 2);
  const double eps = c.attrs.f("eps");
  const Dims d = dims_of(x);
  if (d.C == 0) return;
  PACER_CHECK(d.M > 0, "batch_norm_train: training needs more than one value per channel, got input shape {}",
              x.sizes());
  if (nhwc && vectorized(x, {&c.out(0)}))
    return batch_norm_channels_last(x, w, b, Tensor(), false, eps, c.out(0), c.out(1), c.out(2));
  const DType sdt = c.out(1).dtype();  // f32, or f64 for f64 inputs
  dispatch_floating(x.dtype(), "batch_norm_train", [&]<class T>() {
    auto run = [&]<class A>() {
      const int64_t splits = nhwc ? split_count_nhwc(d.C, d.M) : split_count(d.C, d.M);
      const int64_t chunk = (d.M + splits - 1) / splits;
      Tensor part = empty({3, d.C * splits}, {.dtype = sdt, .device = c.device});  // mean, m2, (count below)
      Tensor counts = empty({d.C * splits}, {.dtype = DType::I64, .device = c.device});
      Tensor coef = empty({2, d.C}, {.dtype = sdt, .device = c.device});  // scale, shift
      A* pp = static_cast<A*>(part.data());
      A* pc = static_cast<A*>(coef.data());
      PACER_CHECK(d.C <= int64_t(INT32_MAX) && splits <= 65535, "batch_norm_train: {} channels are too many", d.C);
      if (nhwc) {
        stats_partial_nhwc_kernel<T, A><<<dim3(unsigned((d.C + 31) / 32), unsigned(splits)), kThreads, 0, stream()>>>(
            static_cast<const T*>(x.data()), d.C, d.M, chunk, pp, pp + d.C * splits,
            static_cast<int64_t*>(counts.data()));
      } else {
        stats_partial_kernel<T, A><<<dim3(unsigned(d.C), unsigned(splits)), kThreads, 0, stream()>>>(
            static_cast<const T*>(x.data()), d.C, d.S, d.M, chunk, pp, pp + d.C * splits,
            static_cast<int64_t*>(counts.data()));
      }
      PACER_CUDA_KERNEL_CHECK();
      stats_finalize_kernel<T, A><<<blocks_for(d.C), kThreads, 0, stream()>>>(
          d.C, splits, d.M, eps, pp, pp + d.C * splits, static_cast<const int64_t*>(counts.data()), raw_or_null(w),
          raw_or_null(b), f32_params(x, w), static_cast<A*>(c.out(1).data()), static_cast<A*>(c.out(2).data()), pc,
          pc + d.C);
      PACER_CUDA_KERNEL_CHECK();
      const int64_t total = x.numel();
      auto apply = nhwc ? bn_apply_kernel<T, A, true> : bn_apply_kernel<T, A, false>;
      apply<<<blocks_for(total), kThreads, 0, stream()>>>(static_cast<const T*>(x.data()),
                                                          static_cast<T*>(c.out(0).data()), total, d.C, d.S, pc,
                                                          pc + d.C);
      PACER_CUDA_KERNEL_CHECK();
    };
    if (sdt == DType::F64) run.template operator()<double>();
    else run.template operator()<float>();
  });
}

// (dy, x, weight or undefined, mean, invstd) -> (dx, dweight, dbias).
void backward_kernel(OpCall& c) {
  const bool nhwc = is_channels_last(c.out(0));  // the infer kept a channels-last input's layout
  const auto dense = [nhwc](const Tensor& t) { return nhwc ? channels_last_dense(t) : contiguous(t); };
  const Tensor dy = dense(c.in(0)), x = dense(c.in(1));
  const Tensor w = optional_input(c, 2);
  const Tensor mean = contiguous(c.in(3)), invstd = contiguous(c.in(4));
  const Dims d = dims_of(x);
  if (d.C == 0) return;
  const DType sdt = mean.dtype();
  PACER_CHECK(sdt == (x.dtype() == DType::F64 ? DType::F64 : DType::F32) && invstd.dtype() == sdt,
              "batch_norm_train_backward: expected {} statistics, got mean {} and invstd {}",
              x.dtype() == DType::F64 ? "float64" : "float32", dtype_name(sdt), dtype_name(invstd.dtype()));
  if (nhwc && vectorized(x, {&dy, &c.out(0)}))
    return batch_norm_channels_last_backward(dy, Tensor(), x, w, mean, invstd, c.out(0), c.out(1), c.out(2));
  dispatch_floating(x.dtype(), "batch_norm_train_backward", [&]<class T>() {
    auto run = [&]<class A>() {
      void* pdw = c.out(1).data();
      void* pdb = c.out(2).data();
      if (d.M == 0) {  // no elements: zero gradients
        PACER_CUDA_CHECK(cudaMemsetAsync(pdw, 0, c.out(1).nbytes(), stream()));
        PACER_CUDA_CHECK(cudaMemsetAsync(pdb, 0, c.out(2).nbytes(), stream()));
        return;
      }
      const int64_t splits = nhwc ? split_count_nhwc(d.C, d.M) : split_count(d.C, d.M);
      const int64_t chunk = (d.M + splits - 1) / splits;
      Tensor part = empty({2, d.C * splits}, {.dtype = sdt, .device = c.device});  // sum dy, sum dy * (x - mu)
      Tensor coef = empty({3, d.C}, {.dtype = sdt, .device = c.device});
      A* pp = static_cast<A*>(part.data());
      A* pc = static_cast<A*>(coef.data());
      const A* pm = static_cast<const A*>(mean.data());
      PACER_CHECK(d.C <= int64_t(INT32_MAX) && splits <= 65535, "batch_norm_train_backward: {} channels are too many",
                  d.C);
      if (nhwc) {
        grad_partial_nhwc_kernel<T, A><<<dim3(unsigned((d.C + 31) / 32), unsigned(splits)), kThreads, 0, stream()>>>(
            static_cast<const T*>(dy.data()), static_cast<const T*>(x.data()), pm, d.C, d.M, chunk, pp,
            pp + d.C * splits);
      } else {
        grad_partial_kernel<T, A><<<dim3(unsigned(d.C), unsigned(splits)), kThreads, 0, stream()>>>(
            static_cast<const T*>(dy.data()), static_cast<const T*>(x.data()), pm, d.C, d.S, d.M, chunk, pp,
            pp + d.C * splits);
      }
      PACER_CUDA_KERNEL_CHECK();
      grad_finalize_kernel<T, A><<<blocks_for(d.C), kThreads, 0, stream()>>>(
          d.C, splits, d.M, pp, pp + d.C * splits, raw_or_null(w), f32_params(x, w),
          static_cast<const A*>(invstd.data()), pdw, pdb, pc);
      PACER_CUDA_KERNEL_CHECK();
      const int64_t total = x.numel();
      auto apply = nhwc ? grad_apply_kernel<T, A, true> : grad_apply_kernel<T, A, false>;
      apply<<<blocks_for(total), kThreads, 0, stream()>>>(static_cast<const T*>(dy.data()),
                                                          static_cast<const T*>(x.data()), pm, pc,
                                                          static_cast<T*>(c.out(0).data()), total, d.C, d.S);
      PACER_CUDA_KERNEL_CHECK();
    };
    if (sdt == DType::F64) run.template operator()<double>();
    else run.template operator()<float>();
  });
}

}  // namespace

PACER_KERNEL(batch_norm_train, CUDA, forward_kernel);
PACER_KERNEL(batch_norm_train_backward, CUDA, backward_kernel);

}  // namespace pacer::ops::cuda
