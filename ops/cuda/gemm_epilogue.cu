// The CUDA kernels of the gemm_epilogue fusion (ops/graph/cuda_gemm_epilogue.h) and the ReLU
// that finishes a GEMM whose ReLU epilogue has no cuBLASLt algorithm (ops/cuda/gemm.h).
// ReLU's backward + the bias gradient is one sweep over a dense [rows, cols] matrix: a block
// of 32 x 8 threads owns 32 neighbouring columns (coalesced rows of 32) of one split of the
// rows, masks them in place and sums them down its rows in the compute type. With one split
// the block writes the bias gradient; with more (tall matrices: a channels-last activation's
// N * H * W rows), each writes its column sums to a partial buffer and a second kernel adds
// the splits in order. The split count depends on the shape alone, so the result does not
// depend on timing or on the device.
#include <algorithm>
#include <type_traits>

#include "ops/api.h"
#include "ops/cuda/gemm.h"
#include "ops/cuda/launch.cuh"
#include "ops/cuda/loops.cuh"
#include "ops/graph/cuda_gemm_epilogue.h"
#include "ops/shape_utils.h"

namespace pacer::ops::cuda {

namespace {

template <class T>
__global__ void relu_rows_kernel(T* __restrict__ c, int64_t m, int64_t n, int64_t ldc) {
  using C = compute_t<T>;
  const int64_t total = m * n, step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += step) {
    T* p = c + (idx / n) * ldc + idx % n;
    if (C(*p) < C(0)) *p = store_value<T>(C(0));  // as relu: NaN passes
  }
}

// Rows per split (at least) and the most splits: tall matrices get enough blocks to fill
// the device (ResNet-size activations: 512 splits x C / 32 column blocks).
constexpr int64_t kRowsPerSplit = 128;
constexpr int64_t kMaxSplits = 512;

int64_t row_splits(int64_t rows) {
  return std::clamp<int64_t>((rows + kRowsPerSplit - 1) / kRowsPerSplit, 1, kMaxSplits);
}

// dz[r, j] = y[r, j] <= 0 ? 0 : dy[r, j] (as relu_backward: NaN passes; dz may be dy) over the
// rows of split blockIdx.y; their sum per column goes to db[j] (one split) or to
// part[split * cols + j].
template <class T>
__global__ void relu_backward_column_sums(const T* dy, const T* __restrict__ y, T* dz, T* __restrict__ db,
                                          compute_t<T>* __restrict__ part_out, int64_t rows, int64_t cols) {
  using C = compute_t<T>;
  __shared__ C part[8][33];
  const int tx = int(threadIdx.x), ty = int(threadIdx.y);
  const int64_t j = int64_t(blockIdx.x) * 32 + tx;
  const int64_t chunk = (rows + gridDim.y - 1) / gridDim.y;
  const int64_t r0 = int64_t(blockIdx.y) * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
  C sum = 0;
  if (j < cols) {
    for (int64_t r = r0 + ty; r < r1; r += 8) {
      const int64_t at = r * cols + j;
      const T g = C(y[at]) <= C(0) ? store_value<T>(C(0)) : dy[at];
      dz[at] = g;
      sum += C(g);
    }
  }
  part[ty][tx] = sum;
  __syncthreads();
  if (ty == 0 && j < cols) {
    C total = part[0][tx];
    for (int k = 1; k < 8; ++k) total += part[k][tx];
    if (gridDim.y == 1) db[j] = store_value<T>(total);
    else part_out[int64_t(blockIdx.y) * cols + j] = total;
  }
}

// db[j] = sum over the splits s, in order, of part[s * cols + j].
template <class T>
__global__ void add_split_sums(const compute_t<T>* __restrict__ part, T* __restrict__ db, int64_t splits,
                               int64_t cols) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  compute_t<T> total = part[j];
  for (int64_t s = 1; s < splits; ++s) total += part[s * cols + j];
  db[j] = store_value<T>(total);
}

void check_floating(const Tensor& t, const char* who) {
  PACER_CHECK(is_floating(t.dtype()) && t.device().is_cuda(), "{}: expected a floating CUDA tensor, got {} on {}", who,
              t.dtype(), t.device());
}

// Masks dz (holding dy, or reading it from `dy`) by y > 0 in place and writes its column sums.
void mask_and_sum_columns(const Tensor& dy, const Tensor& y, Tensor& dz, Tensor& db, int64_t rows, int64_t cols,
                          const char* who) {
  PACER_CHECK(dz.is_contiguous() && y.is_contiguous() && dy.is_contiguous() && y.numel() == rows * cols &&
                  dy.numel() == rows * cols && dz.numel() == rows * cols && db.numel() == cols &&
                  db.is_contiguous() && y.dtype() == dz.dtype() && dy.dtype() == dz.dtype() &&
                  db.dtype() == dz.dtype(),
              "{}: expected dense {} x {} gradients and ReLU output of one dtype and a bias gradient of {}, got dy {} "
              "{}, y {} {}, dz {} {}, db {} {}",
              who, rows, cols, cols, dy.dtype(), dy.sizes(), y.dtype(), y.sizes(), dz.dtype(), dz.sizes(), db.dtype(),
              db.sizes());
  if (cols == 0) return;
  if (rows == 0) {
    PACER_CUDA_CHECK(cudaMemsetAsync(db.data(), 0, db.nbytes(), stream()));
    return;
  }
  const int64_t splits = row_splits(rows);
  dispatch_floating(dz.dtype(), who, [&]<class T>() {
    using C = compute_t<T>;
    Tensor part;  // the splits' column sums, in the compute type
    if (splits > 1)
      part = empty({splits * cols},
                   {.dtype = std::is_same_v<C, double> ? DType::F64 : DType::F32, .device = dz.device()});
    C* pp = splits > 1 ? static_cast<C*>(part.data()) : nullptr;
    relu_backward_column_sums<T><<<dim3(blocks_for(cols, 32), unsigned(splits)), dim3(32, 8), 0, stream()>>>(
        data_ptr<T>(dy), data_ptr<T>(y), data_ptr<T>(dz), data_ptr<T>(db), pp, rows, cols);
    PACER_CUDA_KERNEL_CHECK();
    if (splits > 1) {
      add_split_sums<T><<<blocks_for(cols), kThreads, 0, stream()>>>(pp, data_ptr<T>(db), splits, cols);
      PACER_CUDA_KERNEL_CHECK();
    }
  });
}

void linear_relu(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  check_floating(x, "linear_relu");
  PACER_CHECK(x.dim() == 2 && w.dim() == 2 && x.size(1) == w.size(1) && y.numel() == x.size(0) * w.size(0) &&
                  y.is_contiguous(),
              "linear_relu: expected x [m, k], w [n, k] and a dense output of m * n elements, got x {}, w {}, y {}",
              x.sizes(), w.sizes(), y.sizes());
  Tensor y2 = make_view(y, {x.size(0), w.size(0)}, {w.size(0), 1}, y.storage_offset());
  linear_relu_into(x, w, bias, y2);
}

void mm_relu_bgrad(const Tensor& g, const Tensor& w, const Tensor& y, Tensor& dz, Tensor& db) {
  check_floating(g, "mm_relu_bgrad");
  PACER_CHECK(g.dim() == 2 && w.dim() == 2 && g.size(1) == w.size(0),
              "mm_relu_bgrad: expected g [m, k] and w [k, n], got {} and {}", g.sizes(), w.sizes());
  const int64_t m = g.size(0), n = w.size(1);
  PACER_CHECK(dz.numel() == m * n && dz.is_contiguous(), "mm_relu_bgrad: expected a dense dz of {} elements, got {}",
              m * n, dz.sizes());
  Tensor dz2 = make_view(dz, {m, n}, {n, 1}, dz.storage_offset());
  matmul_into(g, w, dz2);
  mask_and_sum_columns(dz, contiguous(y), dz, db, m, n, "mm_relu_bgrad");
}

void relu_bgrad_channels_last(const Tensor& dy, const Tensor& y, Tensor& dz, Tensor& db) {
  check_floating(dy, "relu_bgrad");
  PACER_CHECK(dy.dim() == 4 && dy.sizes() == y.sizes() && dz.sizes() == dy.sizes() && dy.strides() == y.strides() &&
                  dz.strides() == dy.strides(),
              "relu_bgrad: expected dy, y and dz of one shape and layout, got {}, {} and {}", dy.sizes(), y.sizes(),
              dz.sizes());
  const int64_t C = dy.size(1), rows = dy.numel() / std::max<int64_t>(C, 1);
  PACER_CHECK(is_dense_channels_last(dy.sizes(), dy.strides()),
              "relu_bgrad: expected dense channels-last tensors, got strides {}", dy.strides());
  // Dense channels-last: memory is [N * H * W, C]; seen as such, as flat 2-d views.
  auto flat = [&](const Tensor& t) { return make_view(t, {rows, C}, {C, 1}, t.storage_offset()); };
  Tensor dz2 = flat(dz);
  mask_and_sum_columns(flat(dy), flat(y), dz2, db, rows, C, "relu_bgrad");
}

struct RegisterGemmEpilogue {
  RegisterGemmEpilogue() {
    graph::detail::CudaGemmEpilogue& h = graph::detail::cuda_gemm_epilogue();
    h.linear_relu = &linear_relu;
    h.mm_relu_bgrad = &mm_relu_bgrad;
    h.relu_bgrad_channels_last = &relu_bgrad_channels_last;
  }
} register_gemm_epilogue;

}  // namespace

void relu_rows(DType dtype, void* c, int64_t m, int64_t n, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  dispatch_floating(dtype, "relu_rows", [&]<class T>() {
    relu_rows_kernel<T><<<blocks_for(m * n), kThreads, 0, stream()>>>(static_cast<T*>(c), m, n, ldc);
    PACER_CUDA_KERNEL_CHECK();
  });
}

}  // namespace pacer::ops::cuda
