// CUDA kernels of the loss-scaling primitives. amp_unscale_ is a multi-tensor kernel: one
// launch per dtype and up to kMaxTensors gradients, blockIdx.y picking the tensor, so a
// model's hundreds of gradients cost a handful of launches; the flag is written only by
// threads that saw an inf or NaN (a benign race: they all write 1).
#include <cmath>
#include <map>

#include "ops/cuda/launch.cuh"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

constexpr int kMaxTensors = 48;

template <class T>
struct TensorList {
  T* ptr[kMaxTensors];
  int64_t numel[kMaxTensors];
};

template <class T, class C>
__global__ void unscale_kernel(TensorList<T> list, float* found_inf, const float* inv_scale) {
  T* p = list.ptr[blockIdx.y];
  const int64_t n = list.numel[blockIdx.y];
  const C s = C(*inv_scale);
  bool bad = false;
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < n; j += int64_t(gridDim.x) * blockDim.x) {
    const C v = C(p[j]);
    bad = bad || !isfinite(v);
    p[j] = T(v * s);
  }
  if (bad) *found_inf = 1.0f;
}

void unscale(OpCall& c) {
  float* found = data_ptr<float>(c.out(0));
  const float* inv = data_ptr<float>(c.in(1));
  std::map<DType, std::vector<const Tensor*>> by_dtype;
  for (size_t i = 2; i < c.inputs.size(); ++i)
    if (c.in(i).numel() > 0) by_dtype[c.in(i).dtype()].push_back(&c.in(i));
  for (auto& [dt, tensors] : by_dtype) {
    dispatch_floating(dt, "amp_unscale_", [&]<class T>() {
      using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
      for (size_t first = 0; first < tensors.size(); first += kMaxTensors) {
        TensorList<T> list{};
        int64_t largest = 0;
        const size_t count = std::min<size_t>(kMaxTensors, tensors.size() - first);
        for (size_t k = 0; k < count; ++k) {
          list.ptr[k] = data_ptr<T>(*tensors[first + k]);
          list.numel[k] = tensors[first + k]->numel();
          largest = std::max(largest, list.numel[k]);
        }
        const dim3 grid(std::min<unsigned>(blocks_for(largest), 1024u), unsigned(count));
        unscale_kernel<T, C><<<grid, kThreads, 0, stream()>>>(list, found, inv);
        PACER_CUDA_KERNEL_CHECK();
      }
    });
  }
}

__global__ void update_scale_kernel(float* scale, int64_t* tracker, int64_t* skipped, const float* found_inf,
                                    double growth, double backoff, int64_t interval, double min_scale,
                                    double max_scale) {
  double s = *scale;
  if (*found_inf != 0.0f) {
    s *= backoff;
    *tracker = 0;
    *skipped += 1;
  } else if (++*tracker >= interval) {
    if (isfinite(float(s * growth))) s *= growth;
    *tracker = 0;
  }
  s = fmin(fmax(s, min_scale), max_scale);
  *scale = float(s);
}

void update_scale(OpCall& c) {
  update_scale_kernel<<<1, 1, 0, stream()>>>(data_ptr<float>(c.in(0)), data_ptr<int64_t>(c.in(1)),
                                             data_ptr<int64_t>(c.in(2)), data_ptr<float>(c.in(3)), c.attrs.f("growth"),
                                             c.attrs.f("backoff"), c.attrs.i("interval"), c.attrs.f("min_scale"),
                                             c.attrs.f("max_scale"));
  PACER_CUDA_KERNEL_CHECK();
}

}  // namespace

PACER_KERNEL(amp_unscale_, CUDA, unscale);
PACER_KERNEL(amp_update_scale_, CUDA, update_scale);

}  // namespace pacer::ops::cuda
