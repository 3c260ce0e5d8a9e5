// Training batch norm over dense channels-last [M, C] tensors (M = N * H * W), vectorized:
// the op's kernel (ops/cuda/batch_norm.cu) takes these when the channels suit them, and the
// graph's fused nodes (bn_relu, conv_bn) run on them through ops/cuda/batch_norm.h and the
// hooks of ops/graph/cuda_batch_norm_relu.h.
#include <cstdlib>
#include <string>

#include "ops/api.h"
#include "ops/cuda/batch_norm.h"
#include "ops/cuda/batch_norm_common.cuh"
#include "ops/graph/cuda_batch_norm_relu.h"
#include "ops/shape_utils.h"

namespace pacer::ops::cuda {

using namespace bn;

namespace {

// The kernels of batch_norm.cu read one element per thread per row, with a division per
// element in the Welford update: measured at ~5x the bandwidth floor on an H200 (ResNet-50,
// batch 256, f16).
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

// One thread per channel: mean, invstd and scale / shift from the splits' shifted sums (in
// f64). With x null, the sums are plain (one split, shift 0): from the convolution that wrote
// x (conv_bn). Their variance is E[x^2] - mean^2 of unshifted f32 sums, as fused conv +
// statistics kernels give them: a channel whose |mean| is many standard deviations loses
// precision there that the shifted sums keep.
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
    const float mu = float((x ? double(shift_of(x, C, M, c)) : 0.0) + md);
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
    stats_finalize_vec_kernel<T><<<blocks_for(d.C), kThreads, 0, stream()>>>(
        nullptr, d.C, 1, d.M, eps, ps, ps + d.C, raw_or_null(w), raw_or_null(b), f32_params(x, w, b),
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

bool fused_takes(const TensorMeta& m) {
  if (scalar_forced() || !m.device.is_cuda() || !is_dense_channels_last(m.sizes, m.strides) ||
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
  if (!t.defined() || aligned16(t.data()) || !is_dense_channels_last(t.sizes(), t.strides())) return t;
  return permute(contiguous(permute(t, {0, 2, 3, 1})), {0, 3, 1, 2});
}

void check_fused_operand(const Tensor& t, const char* what) {
  PACER_CHECK(t.device().is_cuda() && is_dense_channels_last(t.sizes(), t.strides()) && aligned16(t.data()),
              "bn_relu on CUDA: expected {} as a dense channels-last CUDA tensor at a 16-byte aligned address, got "
              "{} {} with strides {}",
              what, t.dtype(), t.sizes(), t.strides());
}

void fused_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& residual, double eps, Tensor& out,
                   Tensor& mean, Tensor& invstd) {
  batch_norm_channels_last(x, w, b, residual, true, eps, out, mean, invstd);
}

void fused_backward(const Tensor& dout, const Tensor& z, const Tensor& x, const Tensor& w, const Tensor& mean,
                    const Tensor& invstd, Tensor& dx, Tensor& dw, Tensor& db) {
  batch_norm_channels_last_backward(dout, z, x, w, mean, invstd, dx, dw, db);
}

}  // namespace

void batch_norm_channels_last_backward(const Tensor& dy_in, const Tensor& z_in, const Tensor& x_in, const Tensor& w,
                                       const Tensor& mean, const Tensor& invstd, Tensor& dx, Tensor& dw, Tensor& db) {
  const Tensor dy = aligned_input(dy_in), z = aligned_input(z_in), x = aligned_input(x_in);
  check_fused_operand(dy, "the gradient");
  if (z.defined()) check_fused_operand(z, "the ReLU output");
  check_fused_operand(x, "the input");
  check_fused_operand(dx, "the input gradient");
  const Tensor wc = w.defined() ? contiguous(w) : Tensor();
  const Dims d = dims_of(x);
  dispatch_floating(x.dtype(), "batch norm backward (channels-last)", [&]<class T>() {
    VecTiling vt;
    PACER_CHECK(vec_tiling<T>(d.C, vt),
                "batch norm backward on CUDA: {} channels of {} do not suit the vectorized kernels", d.C, x.dtype());
    backward_vec<T>(dy, z, x, wc, contiguous(mean), contiguous(invstd), d, vt, dx, dw, db);
  });
}

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

}  // namespace pacer::ops::cuda
