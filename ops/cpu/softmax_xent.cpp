// The kernels of ops/cpu/softmax_xent.h.
#include "ops/cpu/softmax_xent.h"

#include <cmath>
#include <vector>

#include "ops/cpu/loops.h"

namespace pacer::ops::cpu {

namespace {

// A row's max shift and log-sum-exp, and x - max into buf, exactly as softmax_kernel<true>.
template <class T, class C>
void row_stats(const T* row, int64_t R, C* buf, C& mx, C& ls) {
  mx = -INFINITY;
  for (int64_t r = 0; r < R; ++r) mx = std::max(mx, C(row[r]));
  if (std::isinf(mx) && mx < 0) mx = 0;
  C s = 0;
  for (int64_t r = 0; r < R; ++r) {
    buf[r] = C(row[r]) - mx;
    s += std::exp(buf[r]);
  }
  ls = std::log(s);
}

int64_t index_at(const Tensor& index, int64_t i) {
  return index.dtype() == DType::I64 ? static_cast<const int64_t*>(index.data())[i]
                                     : int64_t(static_cast<const int32_t*>(index.data())[i]);
}

void check_args(const Tensor& x, const Tensor& index, const char* who) {
  PACER_CHECK(x.dim() == 2 && x.is_contiguous() && (x.dtype() == DType::F32 || x.dtype() == DType::F64),
              "{}: expected contiguous float32 / float64 logits [N, C], got {} {}", who, x.dtype(), x.sizes());
  PACER_CHECK(index.numel() == x.size(0) && index.is_contiguous() &&
                  (index.dtype() == DType::I64 || index.dtype() == DType::I32),
              "{}: expected int64 / int32 class indices [{}, 1], got {} {}", who, x.size(0), index.dtype(),
              index.sizes());
}

}  // namespace

void log_softmax_pick(const Tensor& x, const Tensor& index, Tensor& picked, Tensor* rowsum) {
  check_args(x, index, "log_softmax_pick");
  const int64_t N = x.size(0), R = x.size(1);
  dispatch_floating(x.dtype(), "log_softmax_pick", [&]<class T>() {
    using C = compute_t<T>;
    const T* px = static_cast<const T*>(x.data());
    T* pp = static_cast<T*>(picked.data());
    T* ps = rowsum ? static_cast<T*>(rowsum->data()) : nullptr;
    parallel_for(0, N, std::max<int64_t>(1, 8192 / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
      std::vector<C> buf(static_cast<size_t>(R));
      std::vector<T> logp(static_cast<size_t>(R));
      for (int64_t i = b; i < e; ++i) {
        C mx, ls;
        row_stats<T, C>(px + i * R, R, buf.data(), mx, ls);
        for (int64_t r = 0; r < R; ++r) logp[size_t(r)] = store_cast<T>(buf[size_t(r)] - ls);
        const int64_t k = index_at(index, i);
        PACER_CHECK(k >= 0 && k < R, "index {} is out of range for dimension 1 of size {}", k, R);
        pp[i] = logp[size_t(k)];
        if (ps) ps[i] = store_cast<T>(sum_in_row_order<C>(logp.data(), R));
      }
    });
  });
}

void log_softmax_xent_backward(const Tensor& x, const Tensor& index, const Tensor& src, const Tensor& spread,
                               Tensor& dx) {
  check_args(x, index, "log_softmax_xent_backward");
  const int64_t N = x.size(0), R = x.size(1);
  PACER_CHECK(src.numel() == N && src.dtype() == x.dtype() && (!spread.defined() || spread.numel() == N) &&
                  dx.sizes() == x.sizes() && dx.is_contiguous(),
              "log_softmax_xent_backward: expected src / spread [{}, 1] of {} and dx [{}, {}]", N, x.dtype(), N, R);
  const Tensor s = materialize(src), u = spread.defined() ? materialize(spread) : Tensor();
  dispatch_floating(x.dtype(), "log_softmax_xent_backward", [&]<class T>() {
    using C = compute_t<T>;
    const T* px = static_cast<const T*>(x.data());
    const T* psrc = static_cast<const T*>(s.data());
    const T* pu = u.defined() ? static_cast<const T*>(u.data()) : nullptr;
    T* pd = static_cast<T*>(dx.data());
    parallel_for(0, N, std::max<int64_t>(1, 8192 / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
      std::vector<C> buf(static_cast<size_t>(R));
      for (int64_t i = b; i < e; ++i) {
        C mx, ls;
        row_stats<T, C>(px + i * R, R, buf.data(), mx, ls);
        const int64_t k = index_at(index, i);
        PACER_CHECK(k >= 0 && k < R, "index {} is out of range for dimension 1 of size {}", k, R);
        // P, as scatter_add into zeros and the add of the spread term compute it.
        T* prow = pd + i * R;
        const T picked = store_cast<T>(C(0) + C(psrc[i]));
        for (int64_t r = 0; r < R; ++r) {
          const T sc = r == k ? picked : T(0);
          prow[r] = pu ? store_cast<T>(C(pu[i]) + C(sc)) : sc;
        }
        const C total = C(store_cast<T>(sum_in_row_order<C>(prow, R)));
        for (int64_t r = 0; r < R; ++r) {
          const T logp = store_cast<T>(buf[size_t(r)] - ls);
          const T ex = store_cast<T>(std::exp(C(logp)));
          const T m = store_cast<T>(C(ex) * total);
          prow[r] = store_cast<T>(C(prow[r]) - C(m));
        }
      }
    });
  });
}

}  // namespace pacer::ops::cpu
