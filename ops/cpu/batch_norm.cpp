// CPU training batch norm: one task per channel; x is read as [N, C, S] (S = spatial size),
// sums in f64, so two passes forward (statistics, normalize) and two backward.
#include <cmath>
#include <vector>

#include "ops/cpu/batch_norm.h"

#include "ops/cpu/loops.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

// Sums of f(a[k], b[k]) pairs over a row: 16 compute-type lanes over blocks of 256 elements
// (so the loop vectorizes), each block's total added into f64 (so long rows keep precision).
template <class T, class F>
void accumulate_pairs(const T* a, const T* b, int64_t n, double& s1, double& s2, F f) {
  using C = compute_t<T>;
  constexpr int64_t kBlock = 256, kLanes = 16;
  int64_t k = 0;
  for (; k + kBlock <= n; k += kBlock) {
    C x[kLanes] = {}, y[kLanes] = {};
    for (int64_t j = 0; j < kBlock; j += kLanes)
      for (int64_t l = 0; l < kLanes; ++l) {
        const auto [u, v] = f(C(a[k + j + l]), b ? C(b[k + j + l]) : C(0));
        x[l] += u;
        y[l] += v;
      }
    for (int64_t l = 0; l < kLanes; ++l) {
      s1 += double(x[l]);
      s2 += double(y[l]);
    }
  }
  // The rest (all of a 14x14 or 7x7 row) in lanes too: one f64 add per element would be
  // a serial dependency chain, several times slower than the whole vectorized block loop.
  C x[kLanes] = {}, y[kLanes] = {};
  for (; k + kLanes <= n; k += kLanes)
    for (int64_t l = 0; l < kLanes; ++l) {
      const auto [u, v] = f(C(a[k + l]), b ? C(b[k + l]) : C(0));
      x[l] += u;
      y[l] += v;
    }
  for (; k < n; ++k) {
    const auto [u, v] = f(C(a[k]), b ? C(b[k]) : C(0));
    x[0] += u;
    y[0] += v;
  }
  for (int64_t l = 0; l < kLanes; ++l) {
    s1 += double(x[l]);
    s2 += double(y[l]);
  }
}

// The normalize loop can end in `+ residual` and a ReLU (the fused bn_relu kernel of the
// graph passes); the sum rounds to T first, as the unfused ops store y before adding.
// Per channel, sum(x) and sum(x^2) over images [n0, n0 + nb) added into s[c] and ss[c], in
// the order the forward's statistics pass adds them (so sums gathered image by image equal it).
template <class T>
void add_image_sums(const T* px, int64_t n0, int64_t nb, int64_t C, int64_t Sz, int64_t c, double& s, double& ss) {
  for (int64_t n = n0; n < n0 + nb; ++n)
    accumulate_pairs(px + (n * C + c) * Sz, static_cast<const T*>(nullptr), Sz, s, ss,
                     [](compute_t<T> v, compute_t<T>) { return std::pair{v, v * v}; });
}

// Channel c of y = x * scale + shift [+ residual, the sum rounded to T first, as the unfused
// ops store y before adding] [then ReLU], over the N images.
template <class T>
void normalize_channel(const T* px, T* py, const T* pr, bool relu, int64_t N, int64_t C, int64_t Sz, int64_t c,
                       compute_t<T> fs, compute_t<T> ft) {
  using Cpt = compute_t<T>;
  for (int64_t n = 0; n < N; ++n) {
    const T* row = px + (n * C + c) * Sz;
    T* out = py + (n * C + c) * Sz;
    if (!pr && !relu) {
      for (int64_t k = 0; k < Sz; ++k) out[k] = store_cast<T>(Cpt(row[k]) * fs + ft);
      continue;
    }
    const T* res = pr ? pr + (n * C + c) * Sz : nullptr;
    for (int64_t k = 0; k < Sz; ++k) {
      Cpt v = Cpt(row[k]) * fs + ft;
      if (res) v = Cpt(store_cast<T>(v)) + Cpt(res[k]);
      if (relu) v = v < Cpt(0) ? Cpt(0) : v;
      out[k] = store_cast<T>(v);
    }
  }
}

// Runs f.template operator()<T, S, P>() for the data's type T, the statistics' S (double for
// double data, else float) and the affine parameters' P: T, or float for half data whose
// weight is float32 (mixed precision keeps batch norm's parameters in f32, as cuDNN and
// NVIDIA's MLPerf code do; the op's infer allows only that mix).
template <class F>
void dispatch_bn(const Tensor& x, const Tensor& w, const Tensor& b, const char* what, F f) {
  const bool f32 = w.defined() && w.dtype() == DType::F32 && (x.dtype() == DType::F16 || x.dtype() == DType::BF16);
  const DType p = f32 ? DType::F32 : x.dtype();
  PACER_CHECK((!w.defined() || w.dtype() == p) && (!b.defined() || b.dtype() == p),
              "{}: expected the weight and bias as {} (beside {} data), got {} and {}", what, p, x.dtype(),
              w.defined() ? dtype_name(w.dtype()) : "none", b.defined() ? dtype_name(b.dtype()) : "none");
  dispatch_floating(x.dtype(), what, [&]<class T>() {
    using S = std::conditional_t<std::is_same_v<T, double>, double, float>;
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      if (f32) return f.template operator()<T, S, float>();
    }
    f.template operator()<T, S, T>();
  });
}

// A parameter as the kernels index it (dense), or undefined.
Tensor dense_param(const Tensor& t) { return t.defined() ? materialize(t) : t; }

// Channel c's scale and shift, from the statistics as stored (mean, invstd): a normalize
// pass given only the stored statistics computes exactly what the forward did.
template <class T, class S, class P>
std::pair<compute_t<T>, compute_t<T>> coefficients(const P* pw, const P* pb, S mean, S invstd, int64_t c) {
  const double scale = (pw ? double(compute_t<P>(pw[c])) : 1.0) * double(invstd);
  const double shift = (pb ? double(compute_t<P>(pb[c])) : 0.0) - double(mean) * scale;
  return {compute_t<T>(scale), compute_t<T>(shift)};
}

// With `sums` ([2 * C]: the sums of x and of x^2 per channel, gathered by the conv_bn
// epilogue), the statistics pass is skipped.
template <class T, class S, class P>
void forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, Tensor& y, Tensor& mean, Tensor& invstd,
             const Tensor& residual = Tensor(), bool relu = false, const double* sums = nullptr) {
  const int64_t N = x.size(0), C = x.size(1), Sz = x.numel() / std::max<int64_t>(N * C, 1);
  const double M = double(N * Sz);
  const T* px = static_cast<const T*>(x.data());
  T* py = static_cast<T*>(y.data());
  const P* pw = w.defined() ? static_cast<const P*>(w.data()) : nullptr;
  const P* pb = b.defined() ? static_cast<const P*>(b.data()) : nullptr;
  S* pm = static_cast<S*>(mean.data());
  S* pi = static_cast<S*>(invstd.data());
  const T* pr = residual.defined() ? static_cast<const T*>(residual.data()) : nullptr;
  parallel_for(0, C, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      double s = 0, ss = 0;
      if (sums) {
        s = sums[c];
        ss = sums[C + c];
      } else {
        add_image_sums(px, 0, N, C, Sz, c, s, ss);
      }
      const double mu = s / M, var = std::max(ss / M - mu * mu, 0.0), inv = 1.0 / std::sqrt(var + eps);
      pm[c] = S(mu);
      pi[c] = S(inv);
      const auto [fs, ft] = coefficients<T, S, P>(pw, pb, pm[c], pi[c], c);
      normalize_channel(px, py, pr, relu, N, C, Sz, c, fs, ft);
    }
  });
}

// The normalize pass alone, from stored statistics (recompute_bn_relu's recomputation).
template <class T, class S, class P>
void apply(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& mean, const Tensor& invstd,
           const Tensor& residual, bool relu, Tensor& y) {
  const int64_t N = x.size(0), C = x.size(1), Sz = x.numel() / std::max<int64_t>(N * C, 1);
  const T* px = static_cast<const T*>(x.data());
  T* py = static_cast<T*>(y.data());
  const P* pw = w.defined() ? static_cast<const P*>(w.data()) : nullptr;
  const P* pb = b.defined() ? static_cast<const P*>(b.data()) : nullptr;
  const S* pm = static_cast<const S*>(mean.data());
  const S* pi = static_cast<const S*>(invstd.data());
  const T* pr = residual.defined() ? static_cast<const T*>(residual.data()) : nullptr;
  parallel_for(0, C, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const auto [fs, ft] = coefficients<T, S, P>(pw, pb, pm[c], pi[c], c);
      normalize_channel(px, py, pr, relu, N, C, Sz, c, fs, ft);
    }
  });
}

// With `relu_out` (the fused bn_relu backward), the gradient used is dy where relu_out > 0
// and 0 elsewhere, ReLU's backward applied on the fly instead of in a pass of its own.
template <class T, class S, class P>
void backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& invstd, Tensor& dx,
              Tensor& dw, Tensor& db, const Tensor& relu_out = Tensor()) {
  const int64_t N = x.size(0), C = x.size(1), Sz = x.numel() / std::max<int64_t>(N * C, 1);
  const double M = double(N * Sz);
  const T* pdy = static_cast<const T*>(dy.data());
  const T* px = static_cast<const T*>(x.data());
  const P* pw = w.defined() ? static_cast<const P*>(w.data()) : nullptr;
  const S* pm = static_cast<const S*>(mean.data());
  const S* pi = static_cast<const S*>(invstd.data());
  T* pdx = static_cast<T*>(dx.data());
  P* pdw = static_cast<P*>(dw.data());
  P* pdb = static_cast<P*>(db.data());
  const T* pz = relu_out.defined() ? static_cast<const T*>(relu_out.data()) : nullptr;
  using Cpt = compute_t<T>;
  // ReLU's backward: 0 where its output is <= 0, the gradient elsewhere (NaN passes it).
  auto masked = [](Cpt g, Cpt z) { return z <= Cpt(0) ? Cpt(0) : g; };
  parallel_for(0, C, 1, [&](int64_t lo, int64_t hi) {
    std::vector<T> row_dy(pz ? size_t(Sz) : 0);
    for (int64_t c = lo; c < hi; ++c) {
      const double mu = double(pm[c]), inv = double(pi[c]);
      double sdy = 0, sdyx = 0;  // sum(dy), sum(dy * (x - mu))
      const Cpt m = Cpt(mu);
      for (int64_t n = 0; n < N; ++n) {
        const T* g = pdy + (n * C + c) * Sz;
        if (pz) {
          const T* z = pz + (n * C + c) * Sz;
          for (int64_t k = 0; k < Sz; ++k) row_dy[size_t(k)] = T(masked(Cpt(g[k]), Cpt(z[k])));
          g = row_dy.data();
        }
        accumulate_pairs(g, px + (n * C + c) * Sz, Sz, sdy, sdyx,
                         [m](Cpt gv, Cpt v) { return std::pair{gv, gv * (v - m)}; });
      }
      pdw[c] = store_cast<P>(sdyx * inv);
      pdb[c] = store_cast<P>(sdy);
      // dx = w * inv * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = (x - mu) * inv
      const double k1 = (pw ? double(compute_t<P>(pw[c])) : 1.0) * inv;
      const double mdy = sdy / M, k2 = sdyx * inv * inv / M;
      const Cpt a = Cpt(k1), bb = Cpt(mdy), cc = Cpt(k2);
      for (int64_t n = 0; n < N; ++n) {
        const T* g = pdy + (n * C + c) * Sz;
        const T* row = px + (n * C + c) * Sz;
        T* out = pdx + (n * C + c) * Sz;
        if (pz) {
          const T* z = pz + (n * C + c) * Sz;
          for (int64_t k = 0; k < Sz; ++k)
            out[k] = store_cast<T>(a * (masked(Cpt(g[k]), Cpt(z[k])) - bb - (Cpt(row[k]) - m) * cc));
        } else {
          for (int64_t k = 0; k < Sz; ++k) out[k] = store_cast<T>(a * (Cpt(g[k]) - bb - (Cpt(row[k]) - m) * cc));
        }
      }
    }
  });
}

void forward_kernel(OpCall& c) {
  const Tensor x = materialize(c.in(0));
  const Tensor w = c.inputs.size() > 1 && c.in(1).defined() ? materialize(c.in(1)) : Tensor();
  const Tensor b = c.inputs.size() > 2 && c.in(2).defined() ? materialize(c.in(2)) : Tensor();
  const double eps = c.attrs.f("eps");
  dispatch_bn(x, w, b, "batch_norm_train", [&]<class T, class S, class P>() {
    forward<T, S, P>(x, w, b, eps, c.out(0), c.out(1), c.out(2));
  });
}

void backward_kernel(OpCall& c) {
  const Tensor dy = materialize(c.in(0)), x = materialize(c.in(1));
  const Tensor w = c.in(2).defined() ? materialize(c.in(2)) : Tensor();
  dispatch_bn(x, w, Tensor(), "batch_norm_train_backward", [&]<class T, class S, class P>() {
    backward<T, S, P>(dy, x, w, c.in(3), c.in(4), c.out(0), c.out(1), c.out(2));
  });
}

}  // namespace

void batch_norm_add_image_sums(const Tensor& x, int64_t n0, int64_t nb, double* sums) {
  const int64_t N = x.size(0), C = x.size(1), Sz = x.numel() / std::max<int64_t>(N * C, 1);
  PACER_CHECK(n0 >= 0 && nb >= 0 && n0 + nb <= N, "batch_norm_add_image_sums: images [{}, {}) of {}", n0, n0 + nb, N);
  dispatch_floating(x.dtype(), "batch_norm statistics", [&]<class T>() {
    const T* px = static_cast<const T*>(x.data());
    parallel_for(0, C, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) add_image_sums(px, n0, nb, C, Sz, c, sums[c], sums[C + c]);
    });
  });
}

void batch_norm_forward_from_sums(const Tensor& x, const Tensor& w_in, const Tensor& b_in, const Tensor& residual,
                                  bool relu, double eps, const double* sums, Tensor& out, Tensor& mean, Tensor& invstd) {
  const Tensor w = dense_param(w_in), b = dense_param(b_in);
  dispatch_bn(x, w, b, "batch_norm", [&]<class T, class S, class P>() {
    forward<T, S, P>(x, w, b, eps, out, mean, invstd, residual, relu, sums);
  });
}

void batch_norm_apply(const Tensor& x, const Tensor& w_in, const Tensor& b_in, const Tensor& mean,
                      const Tensor& invstd, const Tensor& residual, bool relu, Tensor& out) {
  const Tensor w = dense_param(w_in), b = dense_param(b_in);
  dispatch_bn(x, w, b, "batch_norm apply", [&]<class T, class S, class P>() {
    apply<T, S, P>(x, w, b, materialize(mean), materialize(invstd), residual, relu, out);
  });
}

void batch_norm_relu_backward(const Tensor& dout, const Tensor& out, const Tensor& x, const Tensor& w_in,
                              const Tensor& mean, const Tensor& invstd, Tensor& dx, Tensor& dw, Tensor& db) {
  const Tensor w = dense_param(w_in);
  dispatch_bn(x, w, Tensor(), "bn_relu_backward", [&]<class T, class S, class P>() {
    backward<T, S, P>(dout, x, w, materialize(mean), materialize(invstd), dx, dw, db, out);
  });
}

PACER_KERNEL(batch_norm_train, CPU, forward_kernel);
PACER_KERNEL(batch_norm_train_backward, CPU, backward_kernel);

}  // namespace pacer::ops::cpu
