// The GEMM epilogues of ops/cpu/gemm_epilogue.h.
#include "ops/cpu/gemm_epilogue.h"

#include <vector>

#include "ops/common/pointwise_kernels.h"
#include "ops/common/pointwise_math.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/loops.h"

namespace pacer::ops::cpu {

void relu_in_place(Tensor& t) {
  PACER_CHECK(t.is_contiguous(), "relu_in_place: expected a contiguous tensor, got strides {}", t.strides());
  dispatch_floating(t.dtype(), "relu_in_place", [&]<class T>() {
    T* p = static_cast<T*>(t.data());
    parallel_for(0, t.numel(), kPointwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = store_cast<T>(math::Relu{}(compute_t<T>(p[i])));
    });
  });
}

void linear_relu_forward(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor& y) {
  PACER_CHECK(y.dim() == 2 && y.is_contiguous(), "linear_relu: expected a contiguous [m, n] output, got shape {}",
              y.sizes());
  linear_forward(x, w, bias, y);
  relu_in_place(y);
}

void mm_relu_backward_bias_grad(const Tensor& g, const Tensor& w, const Tensor& y, Tensor& dz, Tensor& db) {
  PACER_CHECK(dz.dim() == 2 && dz.is_contiguous() && y.sizes() == dz.sizes() && y.is_contiguous() &&
                  y.dtype() == dz.dtype() && db.dim() == 1 && db.size(0) == dz.size(1),
              "mm_relu_bgrad: expected contiguous dz and y of one shape [m, n] and db [n], got {}, {} and {}",
              dz.sizes(), y.sizes(), db.sizes());
  gemm(g, w, dz, 1.0, 0.0);  // the mm op's kernel
  const int64_t rows = dz.size(0), cols = dz.size(1);
  dispatch_floating(dz.dtype(), "mm_relu_bgrad", [&]<class T>() {
    using C = compute_t<T>;
    using A = std::conditional_t<std::is_floating_point_v<C>, C, int64_t>;  // sum's accumulator
    T* d = static_cast<T*>(dz.data());
    const T* m = static_cast<const T*>(y.data());
    dispatch_floating(db.dtype(), "mm_relu_bgrad", [&]<class O>() {
      O* o = static_cast<O*>(db.data());
      // Column blocks as sum's kernel splits them; in each, the rows in order.
      parallel_for(0, cols, 256, [&](int64_t b, int64_t e) {
        std::vector<A> acc(size_t(e - b), A(0));
        for (int64_t r = 0; r < rows; ++r) {
          T* row = d + r * cols;
          const T* mask = m + r * cols;
          for (int64_t j = b; j < e; ++j) {
            const T v = store_cast<T>(pointwise_detail::ReluBackward{}(C(row[j]), C(mask[j])));
            row[j] = v;
            acc[size_t(j - b)] += A(C(v));
          }
        }
        for (int64_t j = b; j < e; ++j) o[j] = store_cast<O>(acc[size_t(j - b)]);
      });
    });
  });
}

void relu_backward_channel_sums(const Tensor& dy, const Tensor& y, Tensor& dz, Tensor& db) {
  PACER_CHECK(dy.dim() == 4 && dy.is_contiguous() && y.sizes() == dy.sizes() && y.is_contiguous() &&
                  dz.sizes() == dy.sizes() && dz.is_contiguous() && y.dtype() == dy.dtype() &&
                  dz.dtype() == dy.dtype() && db.dim() == 1 && db.size(0) == dy.size(1),
              "relu_bgrad: expected contiguous dy, y, dz of one shape [N, C, H, W] and db [C], got {}, {}, {}, {}",
              dy.sizes(), y.sizes(), dz.sizes(), db.sizes());
  const int64_t N = dy.size(0), C = dy.size(1), S = dy.size(2) * dy.size(3), R = N * S;
  dispatch_floating(dz.dtype(), "relu_bgrad", [&]<class T>() {
    using Cp = compute_t<T>;
    using A = std::conditional_t<std::is_floating_point_v<Cp>, Cp, int64_t>;  // sum's accumulator
    const T* g = static_cast<const T*>(dy.data());
    const T* m = static_cast<const T*>(y.data());
    T* d = static_cast<T*>(dz.data());
    dispatch_floating(db.dtype(), "relu_bgrad", [&]<class O>() {
      O* o = static_cast<O*>(db.data());
      parallel_for(0, C, 1, [&](int64_t b, int64_t e) {
        std::vector<T> row(static_cast<size_t>(R));  // the channel's dz, (image, pixel) order
        for (int64_t c = b; c < e; ++c) {
          for (int64_t n = 0, r = 0; n < N; ++n) {
            const int64_t base = (n * C + c) * S;
            for (int64_t s = 0; s < S; ++s, ++r) {
              const T v = store_cast<T>(pointwise_detail::ReluBackward{}(Cp(g[base + s]), Cp(m[base + s])));
              d[base + s] = v;
              row[size_t(r)] = v;
            }
          }
          o[c] = store_cast<O>(sum_in_row_order<A>(row.data(), R));  // as sum(dz, {0, 2, 3})
        }
      });
    });
  });
}

}  // namespace pacer::ops::cpu
