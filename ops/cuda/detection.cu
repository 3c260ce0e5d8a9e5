// CUDA kernels of the detection ops, with the semantics of ops/cpu/detection.cpp.
//
// nms / batched_nms: the device computes, for every box i, a bitmask over all boxes j of
// "i suppresses j" (IoU(i, j) > threshold, same class for batched_nms), in 64-box column
// blocks (the idea of torchvision's CUDA NMS). The host copies the mask and the scores
// back, sorts the candidates exactly as the CPU kernel does (stable, descending, the same
// comparator) and runs the sequential greedy pass over the mask; the kept indices go to a
// device int64 output this kernel allocates (kDynamicShape). The IoU is evaluated with box
// i in the suppressor role and the CPU's max/min/NaN rules, with products that are not
// fused into FMAs, so the kept set matches the CPU bit for bit.
//
// roi_align: one thread per output element (roi, channel, bin), the mean of the bin's
// bilinear samples in the CPU's order. roi_align_backward: one thread per gradient element,
// atomically adding each sample's share to the input gradient (float buffer for half types,
// cast at the end). Rois whose batch index is out of range (the CPU throws) contribute
// nothing here (forward writes zeros): checking would need a host read of the rois.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "ops/api.h"
#include "ops/cuda/launch.cuh"
#include "ops/common/roi_align_math.h"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

// Products that the compiler may not contract into an FMA with a following add (the CPU
// rounds them separately).
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float ceil_c(float a) { return ::ceilf(a); }
__device__ __forceinline__ double ceil_c(double a) { return ::ceil(a); }

// std::max / std::min as the CPU calls them: max(a, b) = a < b ? b : a, min(a, b) = b < a ? b : a
// (the same result when an operand is NaN).
template <class C>
__device__ __forceinline__ C std_max(C a, C b) {
  return a < b ? b : a;
}
template <class C>
__device__ __forceinline__ C std_min(C a, C b) {
  return b < a ? b : a;
}

// A contiguous version of an input (a copy on the device when it is strided).
Tensor dense(const Tensor& t) { return t.is_contiguous() ? t : contiguous(t); }

// ---------------------------------------------------------------------------------------
// nms

constexpr int kNmsBlock = 64;  // boxes per mask word

// mask[i * col_blocks + cb] bit b: box i suppresses box cb * 64 + b. Grid: x = column
// block, y = row block; 64 threads, one row each.
template <class T, class C, class K>
__global__ void nms_mask_kernel(const T* __restrict__ boxes, const K* __restrict__ cls, int64_t n, C thr,
                                int64_t col_blocks, uint64_t* __restrict__ mask) {
  const int64_t row_start = int64_t(blockIdx.y) * kNmsBlock, col_start = int64_t(blockIdx.x) * kNmsBlock;
  const int row_size = n - row_start < kNmsBlock ? int(n - row_start) : kNmsBlock;
  const int col_size = n - col_start < kNmsBlock ? int(n - col_start) : kNmsBlock;
  __shared__ C sbox[kNmsBlock * 4];
  __shared__ C sarea[kNmsBlock];
  __shared__ K scls[kNmsBlock];
  const int tid = int(threadIdx.x);
  if (tid < col_size) {
    const int64_t j = col_start + tid;
    const C x1 = C(compute_t<T>(boxes[j * 4])), y1 = C(compute_t<T>(boxes[j * 4 + 1]));
    const C x2 = C(compute_t<T>(boxes[j * 4 + 2])), y2 = C(compute_t<T>(boxes[j * 4 + 3]));
    sbox[tid * 4] = x1;
    sbox[tid * 4 + 1] = y1;
    sbox[tid * 4 + 2] = x2;
    sbox[tid * 4 + 3] = y2;
    sarea[tid] = mul_rn(x2 - x1, y2 - y1);
    if (cls) scls[tid] = cls[j];
  }
  __syncthreads();
  if (tid >= row_size) return;
  const int64_t i = row_start + tid;
  const C ix1 = C(compute_t<T>(boxes[i * 4])), iy1 = C(compute_t<T>(boxes[i * 4 + 1]));
  const C ix2 = C(compute_t<T>(boxes[i * 4 + 2])), iy2 = C(compute_t<T>(boxes[i * 4 + 3]));
  const C ia = mul_rn(ix2 - ix1, iy2 - iy1);
  const K ic = cls ? cls[i] : K(0);
  uint64_t bits = 0;
  for (int j = 0; j < col_size; ++j) {
    if (cls && scls[j] != ic) continue;
    const C xx1 = std_max(ix1, sbox[j * 4]), yy1 = std_max(iy1, sbox[j * 4 + 1]);
    const C xx2 = std_min(ix2, sbox[j * 4 + 2]), yy2 = std_min(iy2, sbox[j * 4 + 3]);
    const C w = std_max(C(0), xx2 - xx1), h = std_max(C(0), yy2 - yy1);
    const C inter = mul_rn(w, h);
    const C ovr = inter / (ia + sarea[j] - inter);
    if (ovr > thr) bits |= uint64_t(1) << j;
  }
  mask[i * col_blocks + int64_t(blockIdx.x)] = bits;
}

template <class C>
void nms_typed(OpCall& c, bool batched, const Tensor& boxes, const Tensor& scores, const Tensor& classes) {
  const int64_t n = boxes.size(0);
  const int64_t col_blocks = (n + kNmsBlock - 1) / kNmsBlock;
  PACER_CHECK(col_blocks <= 65535, "{}: {} boxes are more than this kernel supports ({})", c.op.name, n,
              int64_t(65535) * kNmsBlock);
  const C thr = C(c.attrs.f("iou_threshold"));
  const double st = batched ? c.attrs.f("score_threshold") : -INFINITY;
  const bool use_score_thr = st > -INFINITY;
  const C score_thr = C(st);
  const int64_t top_k = batched ? c.attrs.i("top_k") : -1;

  // The suppression mask on the device.
  Tensor mask = empty({n * col_blocks}, {.dtype = DType::I64, .device = c.device});
  const dim3 grid{static_cast<unsigned>(col_blocks), static_cast<unsigned>(col_blocks)};
  dispatch_floating(boxes.dtype(), c.op.name, [&]<class T>() {
    const auto launch = [&]<class K>(const K* cls) {
      nms_mask_kernel<T, C, K><<<grid, kNmsBlock, 0, stream()>>>(data_ptr<const T>(boxes), cls, n, thr, col_blocks,
                                                                  data_ptr<uint64_t>(mask));
      PACER_CUDA_KERNEL_CHECK();
    };
    if (!batched) launch(static_cast<const int64_t*>(nullptr));
    else if (classes.dtype() == DType::I32) launch(data_ptr<const int32_t>(classes));
    else if (classes.dtype() == DType::I64) launch(data_ptr<const int64_t>(classes));
    else PACER_FAIL("{}: expected int64 or int32 classes, got {}", c.op.name, classes.dtype());
  });

  // Mask and scores to the host (one synchronization: the op's result size is data-dependent).
  std::vector<uint64_t> mask_h(static_cast<size_t>(n * col_blocks));
  std::vector<C> s(static_cast<size_t>(n));
  PACER_CUDA_CHECK(cudaMemcpyAsync(mask_h.data(), mask.data(), mask_h.size() * sizeof(uint64_t),
                                   cudaMemcpyDeviceToHost, stream()));
  dispatch_floating(scores.dtype(), c.op.name, [&]<class T>() {
    std::vector<T> raw(static_cast<size_t>(n));
    PACER_CUDA_CHECK(
        cudaMemcpyAsync(raw.data(), scores.data(), raw.size() * sizeof(T), cudaMemcpyDeviceToHost, stream()));
    PACER_CUDA_CHECK(cudaStreamSynchronize(stream()));
    for (size_t i = 0; i < raw.size(); ++i) s[i] = C(compute_t<T>(raw[i]));
  });

  // The CPU kernel's candidate order and greedy pass.
  std::vector<int64_t> order;
  order.reserve(size_t(n));
  for (int64_t i = 0; i < n; ++i)
    if (!use_score_thr || s[size_t(i)] > score_thr) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return s[size_t(i)] > s[size_t(j)]; });
  // Bits of boxes already visited may get set too; only later boxes are ever tested.
  std::vector<uint64_t> removed(static_cast<size_t>(col_blocks), 0);
  std::vector<int64_t> keep;
  if (top_k != 0) {
    for (const int64_t i : order) {
      if ((removed[size_t(i / kNmsBlock)] >> (i % kNmsBlock)) & 1u) continue;
      keep.push_back(i);
      if (top_k >= 0 && int64_t(keep.size()) >= top_k) break;
      const uint64_t* row = mask_h.data() + size_t(i * col_blocks);
      for (int64_t b = 0; b < col_blocks; ++b) removed[size_t(b)] |= row[b];
    }
  }

  Tensor out = empty({int64_t(keep.size())}, {.dtype = DType::I64, .device = c.device});
  // From pageable memory: the call returns once the bytes are staged, so `keep` may go.
  if (!keep.empty())
    PACER_CUDA_CHECK(cudaMemcpyAsync(out.data(), keep.data(), keep.size() * sizeof(int64_t), cudaMemcpyHostToDevice,
                                     stream()));
  c.outputs = {out};
}

void nms_common(OpCall& c, bool batched) {
  const Tensor boxes = dense(c.in(0));
  const int64_t n = boxes.size(0);
  if (n == 0) {
    c.outputs = {empty({0}, {.dtype = DType::I64, .device = c.device})};
    return;
  }
  const Tensor scores = dense(c.in(1));
  const Tensor classes = batched ? dense(c.in(2)) : Tensor();
  // f64 boxes are compared in f64, every other floating type in f32 (as the CPU kernel).
  if (boxes.dtype() == DType::F64) nms_typed<double>(c, batched, boxes, scores, classes);
  else nms_typed<float>(c, batched, boxes, scores, classes);
}

void nms_kernel(OpCall& c) { nms_common(c, false); }
void batched_nms_kernel(OpCall& c) { nms_common(c, true); }

// ---------------------------------------------------------------------------------------
// roi_align

// The geometry of roi r = (batch index, x1, y1, x2, y2), as the CPU's roi_geom.
template <class T, class C>
__device__ RoiGeom<C> roi_geom(const T* r, C scale, int64_t ph, int64_t pw, int64_t sampling_ratio, bool aligned) {
  RoiGeom<C> g;
  g.batch = int64_t(C(compute_t<T>(r[0])));
  const C off = aligned ? C(0.5) : C(0);
  g.start_w = mul_rn(C(compute_t<T>(r[1])), scale) - off;
  g.start_h = mul_rn(C(compute_t<T>(r[2])), scale) - off;
  const C end_w = mul_rn(C(compute_t<T>(r[3])), scale) - off;
  const C end_h = mul_rn(C(compute_t<T>(r[4])), scale) - off;
  C rw = end_w - g.start_w, rh = end_h - g.start_h;
  if (!aligned) {
    rw = std_max(rw, C(1));
    rh = std_max(rh, C(1));
  }
  g.bin_h = rh / C(ph);
  g.bin_w = rw / C(pw);
  g.grid_h = sampling_ratio > 0 ? sampling_ratio : int64_t(ceil_c(rh / C(ph)));
  g.grid_w = sampling_ratio > 0 ? sampling_ratio : int64_t(ceil_c(rw / C(pw)));
  const int64_t cnt = g.grid_h * g.grid_w;
  g.count = C(cnt > 1 ? cnt : int64_t(1));
  return g;
}

// Sample (iy, ix) of bin (py, px): the CPU's coordinates.
template <class C>
__device__ __forceinline__ C sample_coord(C start, int64_t p, C bin, int64_t i, int64_t grid) {
  return start + mul_rn(C(p), bin) + (C(i) + C(0.5)) * bin / C(grid);
}

// Forward: one thread per output element t = ((k * Cn + ch) * ph + py) * pw + px.
template <class T, class C>
__global__ void roi_align_forward_kernel(const T* __restrict__ in, const T* __restrict__ rois, T* __restrict__ out,
                                         int64_t total, int64_t N, int64_t Cn, int64_t H, int64_t W, int64_t ph,
                                         int64_t pw, int64_t sampling_ratio, C scale, bool aligned) {
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t px = t % pw, py = (t / pw) % ph, ch = (t / (pw * ph)) % Cn, k = t / (pw * ph * Cn);
    const RoiGeom<C> g = roi_geom<T, C>(rois + k * 5, scale, ph, pw, sampling_ratio, aligned);
    C acc = C(0);
    if (g.batch >= 0 && g.batch < N) {
      const T* plane = in + (g.batch * Cn + ch) * H * W;
      for (int64_t iy = 0; iy < g.grid_h; ++iy) {
        const C y = sample_coord(g.start_h, py, g.bin_h, iy, g.grid_h);
        for (int64_t ix = 0; ix < g.grid_w; ++ix) {
          const C x = sample_coord(g.start_w, px, g.bin_w, ix, g.grid_w);
          int64_t idx[4];
          C w[4];
          if (roi_bilinear(y, x, H, W, idx, w))
            acc += w[0] * C(compute_t<T>(plane[idx[0]])) + w[1] * C(compute_t<T>(plane[idx[1]])) +
                   w[2] * C(compute_t<T>(plane[idx[2]])) + w[3] * C(compute_t<T>(plane[idx[3]]));
        }
      }
    }
    out[t] = static_cast<T>(acc / g.count);
  }
}

// Backward: one thread per gradient element; each sample's share is added atomically into
// acc (the input gradient, or a float buffer of it for half types).
template <class T, class C, class A>
__global__ void roi_align_backward_kernel(const T* __restrict__ gy, const T* __restrict__ rois, A* __restrict__ acc,
                                          int64_t total, int64_t N, int64_t Cn, int64_t H, int64_t W, int64_t ph,
                                          int64_t pw, int64_t sampling_ratio, C scale, bool aligned) {
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t px = t % pw, py = (t / pw) % ph, ch = (t / (pw * ph)) % Cn, k = t / (pw * ph * Cn);
    const RoiGeom<C> g = roi_geom<T, C>(rois + k * 5, scale, ph, pw, sampling_ratio, aligned);
    if (g.batch < 0 || g.batch >= N) continue;
    A* plane = acc + (g.batch * Cn + ch) * H * W;
    const C v = C(compute_t<T>(gy[t]));
    for (int64_t iy = 0; iy < g.grid_h; ++iy) {
      const C y = sample_coord(g.start_h, py, g.bin_h, iy, g.grid_h);
      for (int64_t ix = 0; ix < g.grid_w; ++ix) {
        const C x = sample_coord(g.start_w, px, g.bin_w, ix, g.grid_w);
        int64_t idx[4];
        C w[4];
        if (roi_bilinear(y, x, H, W, idx, w))
          for (int j = 0; j < 4; ++j) atomicAdd(plane + idx[j], A(v * w[j] / g.count));
      }
    }
  }
}

template <class T>
__global__ void cast_from_float_kernel(const float* __restrict__ src, T* __restrict__ dst, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = static_cast<T>(src[i]);
}

void roi_align_kernel(OpCall& c) {
  const Tensor x = dense(c.in(0)), r = dense(c.in(1));
  const RoiArgs a = roi_args(c);
  const int64_t N = x.size(0), Cn = x.size(1), H = x.size(2), W = x.size(3);
  const Tensor& out = c.out(0);
  const int64_t total = out.numel();
  if (total == 0) return;
  dispatch_floating(x.dtype(), "roi_align", [&]<class T>() {
    using C = compute_t<T>;
    roi_align_forward_kernel<T, C><<<blocks_for(total), kThreads, 0, stream()>>>(
        data_ptr<const T>(x), data_ptr<const T>(r), data_ptr<T>(out), total, N, Cn, H, W, a.ph, a.pw,
        a.sampling_ratio, C(a.scale), a.aligned);
    PACER_CUDA_KERNEL_CHECK();
  });
}

void roi_align_backward_kernel_host(OpCall& c) {
  const Tensor gy = dense(c.in(0)), r = dense(c.in(1));
  const RoiArgs a = roi_args(c);
  const Shape& is = c.attrs.shape("input_size");
  const int64_t N = is[0], Cn = is[1], H = is[2], W = is[3];
  const Tensor& out = c.out(0);
  const int64_t n_out = out.numel();
  if (n_out == 0) return;
  const int64_t total = gy.numel();
  dispatch_floating(gy.dtype(), "roi_align_backward", [&]<class T>() {
    using C = compute_t<T>;
    constexpr bool kHalf = !std::is_same_v<T, C>;
    Tensor buf = kHalf ? empty(out.sizes(), {.dtype = DType::F32, .device = c.device}) : out;
    using A = std::conditional_t<kHalf, float, T>;
    PACER_CUDA_CHECK(cudaMemsetAsync(buf.data(), 0, size_t(n_out) * sizeof(A), stream()));
    if (total > 0) {
      roi_align_backward_kernel<T, C, A><<<blocks_for(total), kThreads, 0, stream()>>>(
          data_ptr<const T>(gy), data_ptr<const T>(r), data_ptr<A>(buf), total, N, Cn, H, W, a.ph, a.pw,
          a.sampling_ratio, C(a.scale), a.aligned);
      PACER_CUDA_KERNEL_CHECK();
    }
    if constexpr (kHalf) {
      cast_from_float_kernel<T><<<blocks_for(n_out), kThreads, 0, stream()>>>(data_ptr<const float>(buf),
                                                                              data_ptr<T>(out), n_out);
      PACER_CUDA_KERNEL_CHECK();
    }
  });
}

}  // namespace

PACER_KERNEL(nms, CUDA, nms_kernel);
PACER_KERNEL(batched_nms, CUDA, batched_nms_kernel);
PACER_KERNEL(roi_align, CUDA, roi_align_kernel);
PACER_KERNEL(roi_align_backward, CUDA, roi_align_backward_kernel_host);

}  // namespace pacer::ops::cuda
