// Device helpers of the GEMM kernels (ops/cuda/gemm.cpp): the exact integer GEMM (the CPU's
// loop, one thread per output element) and the row-broadcast of a bias.
#include <type_traits>

#include "ops/cuda/gemm.h"
#include "ops/cuda/launch.cuh"

namespace pacer::ops::cuda {

namespace {

template <class T>
struct Acc {
  using type = std::conditional_t<std::is_floating_point_v<compute_t<T>>, double, int64_t>;
};

template <class T>
__global__ void gemm_naive_kernel(int64_t total, int64_t m, int64_t n, int64_t k, const T* __restrict__ a,
                                  int64_t sa_b, int64_t sa_m, int64_t sa_k, const T* __restrict__ b, int64_t sb_b,
                                  int64_t sb_k, int64_t sb_n, T* __restrict__ c, int64_t sc_b, int64_t sc_m,
                                  int64_t sc_n, const T* __restrict__ bias, int64_t s_bias) {
  using A = typename Acc<T>::type;
  using C = compute_t<T>;
  const int64_t step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += step) {
    const int64_t j = idx % n;
    const int64_t i = (idx / n) % m;
    const int64_t bt = idx / (n * m);
    const T* pa = a + bt * sa_b + i * sa_m;
    const T* pb = b + bt * sb_b + j * sb_n;
    A acc = bias ? A(C(bias[j * s_bias])) : A(0);
    for (int64_t p = 0; p < k; ++p) acc += A(C(pa[p * sa_k])) * A(C(pb[p * sb_k]));
    T* out = c + bt * sc_b + i * sc_m + j * sc_n;
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) *out = T(float(acc));
    else *out = static_cast<T>(acc);
  }
}

template <class T>
__global__ void fill_rows_kernel(T* __restrict__ c, int64_t m, int64_t n, int64_t ldc, const T* __restrict__ bias,
                                 int64_t s_bias) {
  const int64_t total = m * n;
  const int64_t step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += step) {
    const int64_t i = idx / n, j = idx % n;
    c[i * ldc + j] = bias[j * s_bias];
  }
}

template <class T>
__global__ void channel_bias_kernel(T* __restrict__ y, int64_t total, int64_t C, int64_t S,
                                    const T* __restrict__ bias, int64_t s_bias, bool accumulate,
                                    bool channels_last) {
  using Cp = compute_t<T>;
  const int64_t step = int64_t(blockDim.x) * gridDim.x;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += step) {
    const int64_t ch = channels_last ? idx % C : (idx / S) % C;
    const Cp v = accumulate ? Cp(y[idx]) + Cp(bias[ch * s_bias]) : Cp(bias[ch * s_bias]);
    y[idx] = T(v);
  }
}

}  // namespace

void channel_bias(DType dtype, void* y, int64_t N, int64_t C, int64_t S, const void* bias, int64_t s_bias,
                  bool accumulate, bool channels_last) {
  const int64_t total = N * C * S;
  if (total <= 0) return;
  dispatch_dtype(dtype, [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) {
      PACER_FAIL("channel_bias: bool tensors are not supported");
    } else {
      channel_bias_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(
          static_cast<T*>(y), total, C, S, static_cast<const T*>(bias), s_bias, accumulate, channels_last);
      PACER_CUDA_KERNEL_CHECK();
    }
  });
}

void gemm_naive(DType dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a, int64_t sa_b, int64_t sa_m,
                int64_t sa_k, const void* b, int64_t sb_b, int64_t sb_k, int64_t sb_n, void* c, int64_t sc_b,
                int64_t sc_m, int64_t sc_n, const void* bias, int64_t s_bias) {
  const int64_t total = batch * m * n;
  if (total <= 0) return;
  dispatch_dtype(dtype, [&]<class T>() {
    gemm_naive_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(
        total, m, n, k, static_cast<const T*>(a), sa_b, sa_m, sa_k, static_cast<const T*>(b), sb_b, sb_k, sb_n,
        static_cast<T*>(c), sc_b, sc_m, sc_n, static_cast<const T*>(bias), s_bias);
    PACER_CUDA_KERNEL_CHECK();
  });
}

void fill_rows(DType dtype, void* c, int64_t m, int64_t n, int64_t ldc, const void* bias, int64_t s_bias) {
  if (m <= 0 || n <= 0) return;
  dispatch_dtype(dtype, [&]<class T>() {
    fill_rows_kernel<T><<<blocks_for(m * n), kThreads, 0, stream()>>>(static_cast<T*>(c), m, n, ldc,
                                                                        static_cast<const T*>(bias), s_bias);
    PACER_CUDA_KERNEL_CHECK();
  });
}

}  // namespace pacer::ops::cuda
