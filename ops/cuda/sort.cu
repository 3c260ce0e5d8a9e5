// CUDA sort and nonzero, as ops/cpu/sort.cpp.
//
// sort: each line along `dim` (made contiguous, as rows of a dense [N, L] copy when dim is
// not innermost) is sorted by an order-preserving unsigned key: NaN maps to the largest key
// (all NaNs equal), -0 and +0 to the same key, and descending order inverts the key. Lines
// are sorted by (key, original position), which is exactly the CPU's stable sort:
//  - lines of up to kSharedSortMax elements: a bitonic sort of (key, position) pairs in
//    shared memory, one block per line (pairs are all distinct, so the order is unique);
//  - longer lines: cub::DeviceSegmentedSort::StableSortPairs over all lines at once.
// The values are gathered from the input by the sorted positions (bit-exact copies).
//
// nonzero: tiles of kTile elements are counted, the counts scanned, the total read back to
// the host (a synchronization: the output's size depends on the data), and each tile then
// writes its coordinates in row-major order.
#include <cuda_runtime.h>

#include <algorithm>
#include <cub/cub.cuh>
#include <type_traits>

#include "ops/cpu/loops.h"
#include "ops/cuda/launch.cuh"
#include "ops/cuda/loops.cuh"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline unsigned grid_cap(int64_t n) { return unsigned(std::clamp<int64_t>(n, 1, int64_t(1) << 20)); }

// ---- sort ------------------------------------------------------------------------------

template <class T>
using sort_key_t = std::conditional_t<sizeof(compute_t<T>) == 8, unsigned long long, unsigned int>;

// Order-preserving unsigned key of v (ascending); NaN is the largest key.
template <class T>
__device__ __forceinline__ sort_key_t<T> to_key(T v) {
  using C = compute_t<T>;
  using K = sort_key_t<T>;
  const C c = C(v);
  if constexpr (std::is_floating_point_v<C>) {
    if (c != c) return ~K(0);
    const C z = c == C(0) ? C(0) : c;  // -0 and +0 compare equal
    K bits;
    if constexpr (sizeof(C) == 8) bits = K(__double_as_longlong(z));
    else bits = K(__float_as_uint(z));
    const K sign = K(1) << (sizeof(K) * 8 - 1);
    return (bits & sign) ? K(~bits) : K(bits | sign);
  } else if constexpr (std::is_same_v<C, bool>) {
    return K(c ? 1 : 0);
  } else if constexpr (std::is_signed_v<C>) {
    const K sign = K(1) << (sizeof(C) * 8 - 1);
    return K(std::make_unsigned_t<C>(c)) ^ sign;  // sizeof(C) == sizeof(K) for int32 / int64
  } else {
    return K(c);
  }
}

template <class T>
__device__ __forceinline__ sort_key_t<T> sort_key(T v, bool descending) {
  const sort_key_t<T> k = to_key(v);
  return descending ? sort_key_t<T>(~k) : k;
}

inline constexpr int kSharedSortMax = 2048;

// One block per line of x ([N, L] dense); n2 = the power of two >= L (<= kSharedSortMax).
// Dynamic shared memory: n2 keys then n2 int positions.
template <class T>
__global__ void __launch_bounds__(1024)
    sort_rows_shared(const T* x, T* vals, int64_t* ids, int64_t N, int64_t L, int n2, bool descending) {
  using K = sort_key_t<T>;
  extern __shared__ __align__(16) unsigned char raw[];
  K* key = reinterpret_cast<K*>(raw);
  int* pos = reinterpret_cast<int*>(raw + size_t(n2) * sizeof(K));
  const int tid = int(threadIdx.x), nt = int(blockDim.x);
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const T* src = x + row * L;
    for (int i = tid; i < n2; i += nt) {
      key[i] = i < L ? sort_key(src[i], descending) : ~K(0);  // padding sorts last (largest position)
      pos[i] = i;
    }
    __syncthreads();
    for (int k = 2; k <= n2; k <<= 1) {
      for (int j = k >> 1; j > 0; j >>= 1) {
        for (int t = tid; t < n2 / 2; t += nt) {
          const int a = (t / j) * 2 * j + (t % j), b = a + j;
          const bool up = (a & k) == 0;
          const K ka = key[a], kb = key[b];
          const int pa = pos[a], pb = pos[b];
          const bool a_greater = ka > kb || (ka == kb && pa > pb);
          if (a_greater == up) {
            key[a] = kb;
            key[b] = ka;
            pos[a] = pb;
            pos[b] = pa;
          }
        }
        __syncthreads();
      }
    }
    for (int64_t r = tid; r < L; r += nt) {
      const int p = pos[r];
      vals[row * L + r] = src[p];
      ids[row * L + r] = p;
    }
    __syncthreads();  // before the next line overwrites key / pos
  }
}

template <class T>
__global__ void make_sort_keys(const T* x, sort_key_t<T>* keys, int64_t* idx, int64_t n, int64_t L, bool descending) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    keys[i] = sort_key(x[i], descending);
    idx[i] = i % L;
  }
}

__global__ void line_offsets(int64_t* off, int64_t N, int64_t L) {
  for (int64_t s = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; s <= N; s += int64_t(gridDim.x) * blockDim.x)
    off[s] = s * L;
}

template <class T>
__global__ void gather_sorted(const T* x, const int64_t* ids, T* vals, int64_t n, int64_t L) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    vals[i] = x[(i / L) * L + ids[i]];
}

// Sorts the N lines of dense x [N, L] into vals / ids (dense [N, L]).
template <class T>
void sort_lines(const T* x, T* vals, int64_t* ids, int64_t N, int64_t L, bool descending, Device device) {
  using K = sort_key_t<T>;
  const cudaStream_t s = stream();
  if (L <= kSharedSortMax) {
    int n2 = 1;
    while (n2 < L) n2 <<= 1;
    const int threads = std::clamp(n2 / 2, 32, 1024);
    const size_t smem = size_t(n2) * (sizeof(K) + sizeof(int));
    sort_rows_shared<T><<<grid_cap(N), threads, smem, s>>>(x, vals, ids, N, L, n2, descending);
    PACER_CUDA_KERNEL_CHECK();
    return;
  }
  const int64_t n = N * L;
  Tensor keys_buf = empty({2 * n * int64_t(sizeof(K))}, {.dtype = DType::U8, .device = device});
  Tensor idx_buf = empty({n}, {.dtype = DType::I64, .device = device});
  Tensor off_buf = empty({N + 1}, {.dtype = DType::I64, .device = device});
  K* keys_in = static_cast<K*>(keys_buf.data());
  K* keys_out = keys_in + n;
  int64_t* idx_in = data_ptr<int64_t>(idx_buf);
  int64_t* off = data_ptr<int64_t>(off_buf);
  make_sort_keys<T><<<blocks_for(n), kThreads, 0, s>>>(x, keys_in, idx_in, n, L, descending);
  PACER_CUDA_KERNEL_CHECK();
  line_offsets<<<blocks_for(N + 1), kThreads, 0, s>>>(off, N, L);
  PACER_CUDA_KERNEL_CHECK();
  size_t temp_bytes = 0;
  PACER_CUDA_CHECK(cub::DeviceSegmentedSort::StableSortPairs(nullptr, temp_bytes, keys_in, keys_out, idx_in, ids, n,
                                                             N, off, off + 1, s));
  Tensor temp = empty({std::max<int64_t>(int64_t(temp_bytes), 1)}, {.dtype = DType::U8, .device = device});
  PACER_CUDA_CHECK(cub::DeviceSegmentedSort::StableSortPairs(temp.data(), temp_bytes, keys_in, keys_out, idx_in, ids,
                                                             n, N, off, off + 1, s));
  gather_sorted<T><<<blocks_for(n), kThreads, 0, s>>>(x, ids, vals, n, L);
  PACER_CUDA_KERNEL_CHECK();
}

void sort_kernel(OpCall& c) {
  const Tensor& x = c.in(0);
  if (x.numel() == 0) return;
  const int64_t nd = x.dim();
  const int64_t dim = nd == 0 ? 0 : c.attrs.i("dim");
  const bool descending = c.attrs.b("descending");
  const int64_t L = nd == 0 ? 1 : x.size(dim), N = x.numel() / L;
  const bool last = nd == 0 || dim == nd - 1;
  Tensor &vals = c.out(0), &ids = c.out(1);
  dispatch_dtype(x.dtype(), [&]<class T>() {
    if (last) {
      Tensor in = materialize(x);
      sort_lines<T>(data_ptr<T>(in), data_ptr<T>(vals), data_ptr<int64_t>(ids), N, L, descending, c.device);
      return;
    }
    Shape order;
    for (int64_t d = 0; d < nd; ++d)
      if (d != dim) order.push_back(d);
    order.push_back(dim);
    Tensor in = materialize(cpu::permuted(x, order));
    Tensor v = empty(in.sizes(), {.dtype = x.dtype(), .device = c.device});
    Tensor i = empty(in.sizes(), {.dtype = DType::I64, .device = c.device});
    sort_lines<T>(data_ptr<T>(in), data_ptr<T>(v), data_ptr<int64_t>(i), N, L, descending, c.device);
    // Back to the input's layout through the inverse permutation.
    Shape inv(static_cast<size_t>(nd));
    for (size_t k = 0; k < order.size(); ++k) inv[size_t(order[k])] = int64_t(k);
    Tensor vb = cpu::permuted(v, inv), ib = cpu::permuted(i, inv);
    cuda_kernel<T, T>(vals, {&vb}, Identity{});
    cuda_kernel<int64_t, int64_t>(ids, {&ib}, Identity{});
  });
}

// ---- nonzero ---------------------------------------------------------------------------

inline constexpr int kNzThreads = 256, kNzPer = 16, kTile = kNzThreads * kNzPer;
inline constexpr int kNzMaxDims = 32;

struct NzShape {
  int nd;
  int64_t sizes[kNzMaxDims];
};

template <class T>
__device__ __forceinline__ bool is_nonzero(T v) {
  using C = compute_t<T>;
  return C(v) != C(0);  // NaN counts as nonzero; -0 as zero
}

template <class T>
__global__ void nonzero_count(const T* x, int64_t n, int64_t ntiles, int64_t* counts) {
  using Reduce = cub::BlockReduce<int, kNzThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  for (int64_t t = blockIdx.x; t < ntiles; t += gridDim.x) {
    int c = 0;
    for (int j = 0; j < kNzPer; ++j) {
      const int64_t k = t * kTile + int64_t(j) * kNzThreads + threadIdx.x;
      if (k < n && is_nonzero(x[k])) ++c;
    }
    const int total = Reduce(tmp).Sum(c);
    if (threadIdx.x == 0) counts[t] = total;
    __syncthreads();  // tmp is reused
  }
}

// incl: inclusive scan of the tile counts. Thread j of tile t handles the kNzPer consecutive
// elements from t * kTile + j * kNzPer, so an exclusive scan over the threads orders them.
template <class T>
__global__ void nonzero_write(const T* x, int64_t n, int64_t ntiles, const int64_t* incl, NzShape shape,
                              int64_t* out) {
  using Scan = cub::BlockScan<int, kNzThreads>;
  __shared__ typename Scan::TempStorage tmp;
  for (int64_t t = blockIdx.x; t < ntiles; t += gridDim.x) {
    const int64_t base = t * kTile + int64_t(threadIdx.x) * kNzPer;
    unsigned mask = 0;
    for (int j = 0; j < kNzPer; ++j) {
      const int64_t k = base + j;
      if (k < n && is_nonzero(x[k])) mask |= 1u << j;
    }
    int before = 0;
    Scan(tmp).ExclusiveSum(__popc(mask), before);
    int64_t row = (t == 0 ? 0 : incl[t - 1]) + before;
    for (int j = 0; j < kNzPer; ++j) {
      if (!(mask & (1u << j))) continue;
      int64_t k = base + j;
      int64_t* o = out + row * shape.nd;
      for (int d = shape.nd - 1; d >= 0; --d) {
        o[d] = k % shape.sizes[d];
        k /= shape.sizes[d];
      }
      ++row;
    }
    __syncthreads();  // tmp is reused
  }
}

void nonzero_kernel(OpCall& c) {
  const Tensor x = materialize(c.in(0));
  const int64_t nd = x.dim(), n = x.numel();
  PACER_CHECK(nd <= kNzMaxDims, "nonzero: at most {} dims supported on CUDA, got {}", kNzMaxDims, nd);
  if (n == 0) {
    c.outputs = {empty({0, nd}, {.dtype = DType::I64, .device = c.device})};
    return;
  }
  const cudaStream_t s = stream();
  const int64_t ntiles = ceil_div(n, kTile);
  Tensor counts = empty({ntiles}, {.dtype = DType::I64, .device = c.device});
  Tensor incl = empty({ntiles}, {.dtype = DType::I64, .device = c.device});
  int64_t* cnt = data_ptr<int64_t>(counts);
  int64_t* inc = data_ptr<int64_t>(incl);
  dispatch_dtype(x.dtype(), [&]<class T>() {
    nonzero_count<T><<<grid_cap(ntiles), kNzThreads, 0, s>>>(data_ptr<T>(x), n, ntiles, cnt);
    PACER_CUDA_KERNEL_CHECK();
  });
  size_t temp_bytes = 0;
  PACER_CUDA_CHECK(cub::DeviceScan::InclusiveSum(nullptr, temp_bytes, cnt, inc, ntiles, s));
  Tensor temp = empty({std::max<int64_t>(int64_t(temp_bytes), 1)}, {.dtype = DType::U8, .device = c.device});
  PACER_CUDA_CHECK(cub::DeviceScan::InclusiveSum(temp.data(), temp_bytes, cnt, inc, ntiles, s));
  // The output's size is the data's: read the total back (synchronizes the stream).
  int64_t count = 0;
  PACER_CUDA_CHECK(cudaMemcpyAsync(&count, inc + (ntiles - 1), sizeof(int64_t), cudaMemcpyDeviceToHost, s));
  PACER_CUDA_CHECK(cudaStreamSynchronize(s));
  Tensor out = empty({count, nd}, {.dtype = DType::I64, .device = c.device});
  if (count > 0 && nd > 0) {
    NzShape shape{};
    shape.nd = int(nd);
    for (int64_t d = 0; d < nd; ++d) shape.sizes[d] = x.size(d);
    dispatch_dtype(x.dtype(), [&]<class T>() {
      nonzero_write<T><<<grid_cap(ntiles), kNzThreads, 0, s>>>(data_ptr<T>(x), n, ntiles, inc, shape,
                                                                data_ptr<int64_t>(out));
      PACER_CUDA_KERNEL_CHECK();
    });
  }
  c.outputs = {out};
}

}  // namespace

PACER_KERNEL(sort, CUDA, sort_kernel);
PACER_KERNEL(nonzero, CUDA, nonzero_kernel);

}  // namespace pacer::ops::cuda
