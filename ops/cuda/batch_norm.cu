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
// Statistics and sums are kept in f32 (f64 for f64); deterministic (no atomics).
#include <cstdlib>
#include <string>

#include "ops/api.h"
#include "ops/cuda/batch_norm.h"
#include "ops/graph/cuda_batch_norm_relu.h"
#include "ops/cuda/launch.cuh"
#include "ops/registry.h"
#include "ops/shape_utils.h"

namespace pacer::ops::cuda {

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

// A batch norm's affine parameter at channel c (`none` when absent): of the data's type T, or
// float32 beside half data (`f32`: mixed precision keeps the parameters f32); and the store
// of a parameter gradient in the same type.
template <class T, class A>
__device__ __forceinline__ A param_at(const void* p, bool f32, int64_t c, A none) {
  if (!p) return none;
  return f32 ? A(static_cast<const float*>(p)[c]) : A(compute_t<T>(static_cast<const T*>(p)[c]));
}
template <class T, class A>
__device__ __forceinline__ void store_param(void* p, bool f32, int64_t c, A v) {
  if (f32) static_cast<float*>(p)[c] = float(v);
  else static_cast<T*>(p)[c] = T(compute_t<T>(v));
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

// One thread per channel: dw, db and the dx coefficients k1 = w * inv, mean(dy), k2.
template <class T, class A>
__global__ void grad_finalize_kernel(int64_t C, int64_t splits, int64_t M, const A* __restrict__ psdy,
                                     const A* __restrict__ psdyx, const void* weight, bool f32_params,
                                     const A* __restrict__ invstd, void* dw, void* db, A* __restrict__ coef) {
  const int64_t step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < C; c += step) {
    A sdy = A(0), sdyx = A(0);
    for (int64_t sp = 0; sp < splits; ++sp) {
      sdy += psdy[c * splits + sp];
      sdyx += psdyx[c * splits + sp];
    }
    const A inv = invstd[c];
    store_param<T, A>(dw, f32_params, c, sdyx * inv);
    store_param<T, A>(db, f32_params, c, sdy);
    coef[c] = param_at<T, A>(weight, f32_params, c, A(1)) * inv;  // k1
    coef[C + c] = sdy / A(M);                                      // mean(dy)
    coef[2 * C + c] = sdyx * inv * inv / A(M);                     // k2
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

// --- channels-last, vectorized ---------------------------------------------------------
// The kernels above read one element per thread per row, with a division per element in the
// Welford update: measured at ~5x the bandwidth floor on an H200 (ResNet-50, batch 256, f16).
// These read 16 bytes per thread (kVec<T> channels), keep shifted sums in f32 registers
// (x - x[row 0, c]: no cancellation worth the name when the shift is near the mean), reduce
// the rows of a block through shared memory in a fixed order, and keep each thread's
// channels (and so its scale / shift or coefficients) fixed over a grid-stride loop of rows.
// Taken when C is a multiple of kVec<T>, the row's vectors (C / kVec) divide kThreads or are
// a multiple of it (ResNet's 64 ... 2048 channels), and the pointers are 16-byte aligned.
template <class T>
constexpr int kVec = 16 / int(sizeof(T));

template <class T>
struct alignas(16) Pack {
  T v[kVec<T>];
};

struct VecTiling {
  int tile_vecs = 0;      // vectors of a row one block covers
  int rows_per_pass = 0;  // rows a block covers per step: kThreads / tile_vecs
  int64_t tiles = 0;      // blocks across a row
};

template <class T>
bool vec_tiling(int64_t C, VecTiling& t) {
  if constexpr (sizeof(T) > 4) {
    return false;
  } else {
    if (C <= 0 || C % kVec<T> != 0) return false;
    const int64_t vecs = C / kVec<T>;
    if (vecs <= kThreads ? kThreads % vecs != 0 : vecs % kThreads != 0) return false;
    t.tile_vecs = int(std::min<int64_t>(vecs, kThreads));
    t.rows_per_pass = kThreads / t.tile_vecs;
    t.tiles = vecs / t.tile_vecs;
    return true;
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// PACER_BN_SCALAR=1: the scalar kernels for every batch norm, the graph's fused ones included
// (bn_relu and conv_bn then leave CUDA batch norms alone), for A/B comparisons.
bool scalar_forced() {
  static const bool on = [] {
    const char* v = std::getenv("PACER_BN_SCALAR");
    return v != nullptr && std::string(v) == "1";
  }();
  return on;
}

// Row splits for the partial kernels: ~1024 blocks in all, at least 8 steps per thread.
int64_t vec_splits(const VecTiling& t, int64_t M) {
  const int64_t by_size = std::max<int64_t>(1, M / (int64_t(t.rows_per_pass) * 8));
  return std::clamp<int64_t>(std::min(by_size, std::max<int64_t>(1, 1024 / t.tiles)), 1, 65535);
}

// Blocks down the rows for the elementwise kernels: ~2048 blocks in all.
unsigned vec_row_blocks(const VecTiling& t, int64_t M) {
  const int64_t by_rows = (M + t.rows_per_pass - 1) / t.rows_per_pass;
  return unsigned(std::clamp<int64_t>(std::min(by_rows, std::max<int64_t>(1, 2048 / t.tiles)), 1, 65535));
}

// Adds the kThreads x kVec sums of `a` (and `b`) over the rows of the block into thread
// (row 0, tv)'s registers, in row order.
template <int V>
__device__ void sum_block_rows(float (&a)[V], float (&b)[V], int tile_vecs, int rows_per_pass) {
  __shared__ float sa[kThreads * V], sb[kThreads * V];
  for (int e = 0; e < V; ++e) {
    sa[threadIdx.x * V + e] = a[e];
    sb[threadIdx.x * V + e] = b[e];
  }
  __syncthreads();
  if (int(threadIdx.x) < tile_vecs) {
    for (int r = 1; r < rows_per_pass; ++r) {
      const int k = (r * tile_vecs + int(threadIdx.x)) * V;
      for (int e = 0; e < V; ++e) {
        a[e] += sa[k + e];
        b[e] += sb[k + e];
      }
    }
  }
}

// The shift of channel c's sums: the mean of x at kShiftRows rows spread over the M rows (not
// one row, which may be far off the mean: a padded or dead image), so that the shifted sums
// stay small and var = E[d^2] - E[d]^2 keeps its precision. The partial and the finalize
// kernels compute it the same way, so they agree bit for bit.
constexpr int kShiftRows = 8;
template <class T>
__device__ __forceinline__ float shift_of(const T* __restrict__ x, int64_t C, int64_t M, int64_t c) {
  float s = 0.0f;
  for (int k = 0; k < kShiftRows; ++k) s += float(compute_t<T>(x[(int64_t(k) * M / kShiftRows) * C + c]));
  return s / float(kShiftRows);
}

// Grid (tiles, splits): per channel c, psum[c * splits + sp] = sum of (x - shift_of(c)) and
// psq of its squares over the split's rows.
template <class T>
__global__ void stats_partial_vec_kernel(const T* __restrict__ x, int64_t C, int64_t M, int64_t rows_per_split,
                                         int tile_vecs, int rows_per_pass, float* __restrict__ psum,
                                         float* __restrict__ psq) {
  constexpr int V = kVec<T>;
  const int tv = int(threadIdx.x) % tile_vecs, r0 = int(threadIdx.x) / tile_vecs;
  const int64_t c0 = (int64_t(blockIdx.x) * tile_vecs + tv) * V, sp = blockIdx.y, splits = gridDim.y;
  const int64_t begin = sp * rows_per_split, end = begin + rows_per_split < M ? begin + rows_per_split : M;
  float k[V];
  for (int e = 0; e < V; ++e) k[e] = shift_of(x, C, M, c0 + e);
  float s[V] = {}, q[V] = {};
  for (int64_t m = begin + r0; m < end; m += rows_per_pass) {
    const Pack<T> a = *reinterpret_cast<const Pack<T>*>(x + m * C + c0);
    for (int e = 0; e < V; ++e) {
      const float d = float(compute_t<T>(a.v[e])) - k[e];
      s[e] += d;
      q[e] += d * d;
    }
  }
  sum_block_rows(s, q, tile_vecs, rows_per_pass);
  if (r0 == 0)
    for (int e = 0; e < V; ++e) {
      psum[(c0 + e) * splits + sp] = s[e];
      psq[(c0 + e) * splits + sp] = q[e];
    }
}

// One thread per channel: mean, invstd and scale / shift from the shifted sums (in f64).
template <class T>
__global__ void stats_finalize_vec_kernel(const T* __restrict__ x, int64_t C, int64_t splits, int64_t M, double eps,
                                          const float* __restrict__ psum, const float* __restrict__ psq,
                                          const void* weight, const void* bias, bool f32_params,
                                          float* __restrict__ mean, float* __restrict__ invstd,
                                          float* __restrict__ scale, float* __restrict__ shift) {
  const int64_t step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < C; c += step) {
    double s = 0, q = 0;
    for (int64_t sp = 0; sp < splits; ++sp) {
      s += double(psum[c * splits + sp]);
      q += double(psq[c * splits + sp]);
    }
    const double md = s / double(M);
    double var = q / double(M) - md * md;
    if (var < 0) var = 0;  // rounding only; NaN passes through
    const float mu = float(double(shift_of(x, C, M, c)) + md);
    const float inv = float(1.0 / ::sqrt(var + eps));
    mean[c] = mu;
    invstd[c] = inv;
    const float sc = param_at<T, float>(weight, f32_params, c, 1.0f) * inv;
    scale[c] = sc;
    shift[c] = param_at<T, float>(bias, f32_params, c, 0.0f) - mu * sc;
  }
}

// One thread per channel: mean, invstd and scale / shift from plain sums of x and of its
// squares over M rows (float32, from the convolution that wrote x: conv_bn), in f64. The
// variance is E[x^2] - mean^2 of unshifted f32 sums (as fused conv + statistics kernels
// give them): a channel whose |mean| is many standard deviations loses precision here that
// the shifted sums of the unfused path keep.
template <class T>
__global__ void stats_from_sums_kernel(int64_t C, int64_t M, double eps, const float* __restrict__ sum,
                                       const float* __restrict__ sqsum, const void* weight, const void* bias,
                                       bool f32_params, float* __restrict__ mean, float* __restrict__ invstd,
                                       float* __restrict__ scale, float* __restrict__ shift) {
  const int64_t step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < C; c += step) {
    const double md = double(sum[c]) / double(M);
    double var = double(sqsum[c]) / double(M) - md * md;
    if (var < 0) var = 0;  // rounding only; NaN passes through
    const float mu = float(md);
    const float inv = float(1.0 / ::sqrt(var + eps));
    mean[c] = mu;
    invstd[c] = inv;
    const float sc = param_at<T, float>(weight, f32_params, c, 1.0f) * inv;
    scale[c] = sc;
    shift[c] = param_at<T, float>(bias, f32_params, c, 0.0f) - mu * sc;
  }
}

// Grid (tiles, row blocks): y = x * scale + shift; with a residual, y rounded to T and the
// residual added (as the unfused add would read the stored y); with relu, clamped at 0.
// (Both flags are the same for every thread: no divergence.)
template <class T>
__global__ void bn_apply_vec_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t C, int64_t M, int tile_vecs,
                                    int rows_per_pass, const float* __restrict__ scale,
                                    const float* __restrict__ shift, const T* __restrict__ residual, bool relu) {
  constexpr int V = kVec<T>;
  const int tv = int(threadIdx.x) % tile_vecs, r0 = int(threadIdx.x) / tile_vecs;
  const int64_t c0 = (int64_t(blockIdx.x) * tile_vecs + tv) * V;
  float sc[V], sh[V];
  for (int e = 0; e < V; ++e) {
    sc[e] = scale[c0 + e];
    sh[e] = shift[c0 + e];
  }
  const int64_t stride = int64_t(gridDim.y) * rows_per_pass;
  for (int64_t m = int64_t(blockIdx.y) * rows_per_pass + r0; m < M; m += stride) {
    const Pack<T> a = *reinterpret_cast<const Pack<T>*>(x + m * C + c0);
    Pack<T> r = {};
    if (residual) r = *reinterpret_cast<const Pack<T>*>(residual + m * C + c0);
    Pack<T> o;
    for (int e = 0; e < V; ++e) {
      float v = float(compute_t<T>(a.v[e])) * sc[e] + sh[e];
      if (residual) v = float(compute_t<T>(T(v))) + float(compute_t<T>(r.v[e]));
      if (relu) v = v < 0.0f ? 0.0f : v;
      o.v[e] = T(v);
    }
    *reinterpret_cast<Pack<T>*>(y + m * C + c0) = o;
  }
}

// ReLU's backward, as relu_backward computes it: 0 where the output is <= 0 (NaN passes).
__device__ __forceinline__ float relu_masked(float g, float z) { return z <= 0.0f ? 0.0f : g; }

// Grid (tiles, splits): per channel, the split's sum(dy) and sum(dy * (x - mean)); with z
// (a ReLU's output), dy is relu_backward(dy, z) taken on the fly.
template <class T>
__global__ void grad_partial_vec_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                        const float* __restrict__ mean, int64_t C, int64_t M, int64_t rows_per_split,
                                        int tile_vecs, int rows_per_pass, float* __restrict__ psdy,
                                        float* __restrict__ psdyx, const T* __restrict__ z) {
  constexpr int V = kVec<T>;
  const int tv = int(threadIdx.x) % tile_vecs, r0 = int(threadIdx.x) / tile_vecs;
  const int64_t c0 = (int64_t(blockIdx.x) * tile_vecs + tv) * V, sp = blockIdx.y, splits = gridDim.y;
  const int64_t begin = sp * rows_per_split, end = begin + rows_per_split < M ? begin + rows_per_split : M;
  float mu[V], s[V] = {}, sx[V] = {};
  for (int e = 0; e < V; ++e) mu[e] = mean[c0 + e];
  for (int64_t m = begin + r0; m < end; m += rows_per_pass) {
    const Pack<T> g = *reinterpret_cast<const Pack<T>*>(dy + m * C + c0);
    const Pack<T> a = *reinterpret_cast<const Pack<T>*>(x + m * C + c0);
    Pack<T> zz = {};
    if (z) zz = *reinterpret_cast<const Pack<T>*>(z + m * C + c0);
    for (int e = 0; e < V; ++e) {
      float gv = float(compute_t<T>(g.v[e]));
      if (z) gv = relu_masked(gv, float(compute_t<T>(zz.v[e])));
      s[e] += gv;
      sx[e] += gv * (float(compute_t<T>(a.v[e])) - mu[e]);
    }
  }
  sum_block_rows(s, sx, tile_vecs, rows_per_pass);
  if (r0 == 0)
    for (int e = 0; e < V; ++e) {
      psdy[(c0 + e) * splits + sp] = s[e];
      psdyx[(c0 + e) * splits + sp] = sx[e];
    }
}

// Grid (tiles, row blocks): dx = k1 * (dy - mean(dy) - (x - mean) * k2) (with z: dy masked
// by ReLU's output, as above).
template <class T>
__global__ void grad_apply_vec_kernel(const T* __restrict__ dy, const T* __restrict__ x,
                                      const float* __restrict__ mean, const float* __restrict__ coef,
                                      T* __restrict__ dx, int64_t C, int64_t M, int tile_vecs, int rows_per_pass,
                                      const T* __restrict__ z) {
  constexpr int V = kVec<T>;
  const int tv = int(threadIdx.x) % tile_vecs, r0 = int(threadIdx.x) / tile_vecs;
  const int64_t c0 = (int64_t(blockIdx.x) * tile_vecs + tv) * V;
  float k1[V], mdy[V], k2[V], mu[V];
  for (int e = 0; e < V; ++e) {
    k1[e] = coef[c0 + e];
    mdy[e] = coef[C + c0 + e];
    k2[e] = coef[2 * C + c0 + e];
    mu[e] = mean[c0 + e];
  }
  const int64_t stride = int64_t(gridDim.y) * rows_per_pass;
  for (int64_t m = int64_t(blockIdx.y) * rows_per_pass + r0; m < M; m += stride) {
    const Pack<T> g = *reinterpret_cast<const Pack<T>*>(dy + m * C + c0);
    const Pack<T> a = *reinterpret_cast<const Pack<T>*>(x + m * C + c0);
    Pack<T> zz = {};
    if (z) zz = *reinterpret_cast<const Pack<T>*>(z + m * C + c0);
    Pack<T> o;
    for (int e = 0; e < V; ++e) {
      float gv = float(compute_t<T>(g.v[e]));
      if (z) gv = relu_masked(gv, float(compute_t<T>(zz.v[e])));
      o.v[e] = T(k1[e] * (gv - mdy[e] - (float(compute_t<T>(a.v[e])) - mu[e]) * k2[e]));
    }
    *reinterpret_cast<Pack<T>*>(dx + m * C + c0) = o;
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

struct Dims {
  int64_t N, C, S, M;
};

Dims dims_of(const Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1);
  const int64_t S = N * C > 0 ? x.numel() / (N * C) : 0;
  return {N, C, S, N * S};
}

Tensor optional_input(const OpCall& c, size_t i) {
  return c.inputs.size() > i && c.in(i).defined() ? contiguous(c.in(i)) : Tensor();
}

template <class U>
const U* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const U*>(t.data()) : nullptr;
}

const void* raw_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

// Whether the affine parameters are float32 beside half data x (else of x's dtype; the op's
// infer allows nothing else).
bool f32_params(const Tensor& x, const Tensor& w, const Tensor& b = Tensor()) {
  const bool f32 = w.defined() && w.dtype() == DType::F32 && (x.dtype() == DType::F16 || x.dtype() == DType::BF16);
  const DType p = f32 ? DType::F32 : x.dtype();
  PACER_CHECK((!w.defined() || w.dtype() == p) && (!b.defined() || b.dtype() == p),
              "batch norm: expected the weight and bias as {} (beside {} data), got {} and {}", p, x.dtype(),
              w.defined() ? dtype_name(w.dtype()) : "none", b.defined() ? dtype_name(b.dtype()) : "none");
  return f32;
}

// t as a dense channels-last tensor (itself when it is one).
Tensor channels_last_dense(const Tensor& t) {
  return is_channels_last(t) ? t : permute(contiguous(permute(t, {0, 2, 3, 1})), {0, 3, 1, 2});
}

// The vectorized channels-last forward (f32 statistics): x, out (and residual) dense [M, C];
// out = [relu](batch_norm(x) [+ residual]).
// With `sums` (float32 [2, C]: the sums of x and of its squares, from the convolution that
// wrote x), the statistics come from them and x is read once.
template <class T>
void forward_vec(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& residual, bool relu, double eps,
                 const Dims& d, const VecTiling& vt, Tensor& out, Tensor& mean, Tensor& invstd,
                 const Tensor& sums = Tensor()) {
  const Device device = x.device();
  Tensor coef = empty({2, d.C}, {.dtype = DType::F32, .device = device});  // scale, shift
  float* pc = static_cast<float*>(coef.data());
  const T* px = static_cast<const T*>(x.data());
  if (sums.defined()) {
    const float* ps = static_cast<const float*>(sums.data());
    stats_from_sums_kernel<T><<<blocks_for(d.C), kThreads, 0, stream()>>>(
        d.C, d.M, eps, ps, ps + d.C, raw_or_null(w), raw_or_null(b), f32_params(x, w, b),
        static_cast<float*>(mean.data()), static_cast<float*>(invstd.data()), pc, pc + d.C);
    PACER_CUDA_KERNEL_CHECK();
  } else {
    const int64_t splits = vec_splits(vt, d.M), rows = (d.M + splits - 1) / splits;
    Tensor part = empty({2, d.C * splits}, {.dtype = DType::F32, .device = device});  // shifted sums, squares
    float* pp = static_cast<float*>(part.data());
    stats_partial_vec_kernel<T><<<dim3(unsigned(vt.tiles), unsigned(splits)), kThreads, 0, stream()>>>(
        px, d.C, d.M, rows, vt.tile_vecs, vt.rows_per_pass, pp, pp + d.C * splits);
    PACER_CUDA_KERNEL_CHECK();
    stats_finalize_vec_kernel<T><<<blocks_for(d.C), kThreads, 0, stream()>>>(
        px, d.C, splits, d.M, eps, pp, pp + d.C * splits, raw_or_null(w), raw_or_null(b), f32_params(x, w, b),
        static_cast<float*>(mean.data()), static_cast<float*>(invstd.data()), pc, pc + d.C);
    PACER_CUDA_KERNEL_CHECK();
  }
  bn_apply_vec_kernel<T><<<dim3(unsigned(vt.tiles), vec_row_blocks(vt, d.M)), kThreads, 0, stream()>>>(
      px, static_cast<T*>(out.data()), d.C, d.M, vt.tile_vecs, vt.rows_per_pass, pc, pc + d.C,
      ptr_or_null<T>(residual), relu);
  PACER_CUDA_KERNEL_CHECK();
}

// The vectorized channels-last backward: dy, x, dx (and z) dense [M, C]; f32 statistics.
// With z (a ReLU's output after this batch norm), dy is relu_backward(dy, z) on the fly.
template <class T>
void backward_vec(const Tensor& dy, const Tensor& z, const Tensor& x, const Tensor& w, const Tensor& mean,
                  const Tensor& invstd, const Dims& d, const VecTiling& vt, Tensor& dx, Tensor& dw, Tensor& db) {
  const Device device = x.device();
  const int64_t splits = vec_splits(vt, d.M), rows = (d.M + splits - 1) / splits;
  Tensor part = empty({2, d.C * splits}, {.dtype = DType::F32, .device = device});  // sum dy, sum dy * (x - mu)
  Tensor coef = empty({3, d.C}, {.dtype = DType::F32, .device = device});
  float* pp = static_cast<float*>(part.data());
  float* pc = static_cast<float*>(coef.data());
  const float* pm = static_cast<const float*>(mean.data());
  const T* pdy = static_cast<const T*>(dy.data());
  const T* px = static_cast<const T*>(x.data());
  const T* pz = ptr_or_null<T>(z);
  grad_partial_vec_kernel<T><<<dim3(unsigned(vt.tiles), unsigned(splits)), kThreads, 0, stream()>>>(
      pdy, px, pm, d.C, d.M, rows, vt.tile_vecs, vt.rows_per_pass, pp, pp + d.C * splits, pz);
  PACER_CUDA_KERNEL_CHECK();
  grad_finalize_kernel<T, float><<<blocks_for(d.C), kThreads, 0, stream()>>>(
      d.C, splits, d.M, pp, pp + d.C * splits, raw_or_null(w), f32_params(x, w),
      static_cast<const float*>(invstd.data()), dw.data(), db.data(), pc);
  PACER_CUDA_KERNEL_CHECK();
  grad_apply_vec_kernel<T><<<dim3(unsigned(vt.tiles), vec_row_blocks(vt, d.M)), kThreads, 0, stream()>>>(
      pdy, px, pm, pc, static_cast<T*>(dx.data()), d.C, d.M, vt.tile_vecs, vt.rows_per_pass, pz);
  PACER_CUDA_KERNEL_CHECK();
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
  const DType sdt = c.out(1).dtype();  // f32, or f64 for f64 inputs
  dispatch_floating(x.dtype(), "batch_norm_train", [&]<class T>() {
    VecTiling vt;
    if (nhwc && sdt == DType::F32 && vec_tiling<T>(d.C, vt) && aligned16(x.data()) && aligned16(c.out(0).data()) &&
        !scalar_forced()) {
      forward_vec<T>(x, w, b, Tensor(), false, eps, d, vt, c.out(0), c.out(1), c.out(2));
      return;
    }
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
  dispatch_floating(x.dtype(), "batch_norm_train_backward", [&]<class T>() {
    VecTiling vt;
    if (d.M > 0 && nhwc && sdt == DType::F32 && vec_tiling<T>(d.C, vt) && aligned16(dy.data()) &&
        aligned16(x.data()) && aligned16(c.out(0).data()) && !scalar_forced()) {
      backward_vec<T>(dy, Tensor(), x, w, mean, invstd, d, vt, c.out(0), c.out(1), c.out(2));
      return;
    }
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

// --- the bn_relu graph fusion on CUDA (ops/graph/cuda_batch_norm_relu.h) ----------------

bool dense_channels_last(const Shape& sizes, const Shape& strides) {
  if (sizes.size() != 4) return false;
  const int64_t C = sizes[1], H = sizes[2], W = sizes[3];
  return strides == Shape{H * W * C, 1, W * C, C};
}

bool fused_takes(const TensorMeta& m) {
  if (scalar_forced() || !m.device.is_cuda() || !dense_channels_last(m.sizes, m.strides) ||
      m.sizes[0] * m.sizes[2] * m.sizes[3] == 0)
    return false;
  VecTiling vt;
  switch (m.dtype) {
    case DType::F32: return vec_tiling<float>(m.sizes[1], vt);
    case DType::F16: return vec_tiling<Half>(m.sizes[1], vt);
    case DType::BF16: return vec_tiling<BFloat16>(m.sizes[1], vt);
    default: return false;
  }
}

// An input of the fused kernels at a 16-byte aligned address: itself, or (a view at an odd
// offset) a dense channels-last copy.
Tensor aligned_input(const Tensor& t) {
  if (!t.defined() || aligned16(t.data()) || !dense_channels_last(t.sizes(), t.strides())) return t;
  return permute(contiguous(permute(t, {0, 2, 3, 1})), {0, 3, 1, 2});
}

void check_fused_operand(const Tensor& t, const char* what) {
  PACER_CHECK(t.device().is_cuda() && dense_channels_last(t.sizes(), t.strides()) && aligned16(t.data()),
              "bn_relu on CUDA: expected {} as a dense channels-last CUDA tensor at a 16-byte aligned address, got "
              "{} {} with strides {}",
              what, t.dtype(), t.sizes(), t.strides());
}

void fused_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& residual, double eps, Tensor& out,
                   Tensor& mean, Tensor& invstd) {
  batch_norm_channels_last(x, w, b, residual, true, eps, out, mean, invstd);
}

void fused_backward(const Tensor& dout_in, const Tensor& z_in, const Tensor& x_in, const Tensor& w, const Tensor& mean,
                    const Tensor& invstd, Tensor& dx, Tensor& dw, Tensor& db) {
  const Tensor dout = aligned_input(dout_in), z = aligned_input(z_in), x = aligned_input(x_in);
  check_fused_operand(dout, "the gradient");
  check_fused_operand(z, "the ReLU output");
  check_fused_operand(x, "the input");
  check_fused_operand(dx, "the input gradient");
  const Tensor wc = w.defined() ? contiguous(w) : Tensor();
  const Dims d = dims_of(x);
  dispatch_floating(x.dtype(), "bn_relu_backward", [&]<class T>() {
    VecTiling vt;
    PACER_CHECK(vec_tiling<T>(d.C, vt), "bn_relu_backward on CUDA: {} channels of {} do not suit the vectorized kernels",
                d.C, x.dtype());
    backward_vec<T>(dout, z, x, wc, contiguous(mean), contiguous(invstd), d, vt, dx, dw, db);
  });
}

}  // namespace

bool batch_norm_vec_takes(const TensorMeta& m) { return fused_takes(m); }

void batch_norm_channels_last(const Tensor& x_in, const Tensor& w, const Tensor& b, const Tensor& residual_in,
                              bool relu, double eps, Tensor& out, Tensor& mean, Tensor& invstd, const Tensor& sums) {
  const Tensor x = aligned_input(x_in), residual = aligned_input(residual_in);
  check_fused_operand(x, "the input");
  check_fused_operand(out, "the output");
  if (residual.defined()) check_fused_operand(residual, "the residual");
  const Dims d = dims_of(x);
  PACER_CHECK(!sums.defined() || (sums.dtype() == DType::F32 && sums.is_contiguous() && sums.numel() == 2 * d.C &&
                                  sums.device() == x.device()),
              "batch norm from sums: expected float32 sums [2, {}] on {}, got {} {} on {}", d.C, x.device(),
              sums.dtype(), sums.sizes(), sums.device());
  const Tensor wc = w.defined() ? contiguous(w) : Tensor(), bc = b.defined() ? contiguous(b) : Tensor();
  dispatch_floating(x.dtype(), "batch norm (channels-last)", [&]<class T>() {
    VecTiling vt;
    PACER_CHECK(vec_tiling<T>(d.C, vt), "batch norm on CUDA: {} channels of {} do not suit the vectorized kernels",
                d.C, x.dtype());
    forward_vec<T>(x, wc, bc, residual, relu, eps, d, vt, out, mean, invstd, sums);
  });
}

namespace {

struct RegisterBatchNormRelu {
  RegisterBatchNormRelu() {
    graph::detail::CudaBatchNormRelu& h = graph::detail::cuda_batch_norm_relu();
    h.takes = &fused_takes;
    h.forward = &fused_forward;
    h.backward = &fused_backward;
  }
} register_batch_norm_relu;

}  // namespace

PACER_KERNEL(batch_norm_train, CUDA, forward_kernel);
PACER_KERNEL(batch_norm_train_backward, CUDA, backward_kernel);

}  // namespace pacer::ops::cuda
