// CPU reductions. The input is viewed as [M kept, R reduced]: when the reduced dims are
// innermost each output is a dot-like row sum (8 accumulators, vectorized); when they are
// outermost the rows are added into an accumulator row; other layouts are first made dense.
#include <cmath>
#include <limits>

#include "ops/cpu/loops.h"
#include "ops/common/reduce_layout.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

template <class T> using acc_t = std::conditional_t<std::is_floating_point_v<compute_t<T>>, compute_t<T>, int64_t>;

using Layout = ReduceLayout;

Layout arrange(const Tensor& x, const Shape& dims) {
  return arrange_reduction(x, dims, [](const Tensor& t) { return materialize(t); });
}

template <class T, class Out>
void sum_rows(const T* x, Out* out, int64_t M, int64_t R) {
  using A = acc_t<T>;
  parallel_for(0, M, std::max<int64_t>(1, 32768 / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m) {
      out[m] = store_cast<Out>(sum_in_row_order<A>(x + m * R, R));
    }
  });
}

template <class T, class Out>
void sum_cols(const T* x, Out* out, int64_t R, int64_t M) {
  using A = acc_t<T>;
  parallel_for(0, M, 256, [&](int64_t b, int64_t e) {
    std::vector<A> acc(size_t(e - b), A(0));
    for (int64_t r = 0; r < R; ++r) {
      const T* row = x + r * M;
      for (int64_t m = b; m < e; ++m) acc[size_t(m - b)] += A(compute_t<T>(row[m]));
    }
    for (int64_t m = b; m < e; ++m) out[m] = store_cast<Out>(acc[size_t(m - b)]);
  });
}

void sum_kernel(OpCall& c) {
  const Tensor& x = c.in(0);
  Tensor& out = c.out(0);
  Layout l = arrange(x, c.attrs.shape("dims"));
  dispatch_dtype(x.dtype(), [&]<class T>() {
    dispatch_dtype(out.dtype(), [&]<class O>() {
      const T* p = static_cast<const T*>(l.dense.data());
      O* o = static_cast<O*>(out.data());
      if (l.M == 1 && l.R > 65536) {
        // One output: split the row so both threads work, then add the partial sums.
        const int nt = num_threads();
        std::vector<double> part(size_t(nt), 0.0);
        parallel_for(0, nt, 1, [&](int64_t b, int64_t e) {
          for (int64_t t = b; t < e; ++t) {
            const int64_t lo = l.R * t / nt, hi = l.R * (t + 1) / nt;
            acc_t<T> s;
            sum_rows<T, acc_t<T>>(p + lo, &s, 1, hi - lo);
            part[size_t(t)] = double(s);
          }
        });
        double total = 0;
        for (double v : part) total += v;
        o[0] = store_cast<O>(total);
      } else if (l.reduced_outer) {
        sum_cols<T, O>(p, o, l.R, l.M);
      } else {
        sum_rows<T, O>(p, o, l.M, l.R);
      }
    });
  });
}

// Max/min with NaN propagation; `want_index` also records the first position of the extremum.
template <bool IsMax>
void extremum(const Tensor& x, const Shape& dims, Tensor& values, Tensor* indices) {
  Layout l = arrange(x, dims);
  Tensor dense = l.reduced_outer ? materialize(permuted(x, [&] {
    Shape order;
    for (int64_t d = int64_t(dims.size()); d < x.dim(); ++d) order.push_back(d);
    for (int64_t d : dims) order.push_back(d);
    return order;
  }())) : l.dense;
  PACER_CHECK(l.R > 0, "cannot reduce over a dimension of size 0 (no identity for max/min)");
  dispatch_dtype(x.dtype(), [&]<class T>() {
    using C = compute_t<T>;
    const T* p = static_cast<const T*>(dense.data());
    T* v = static_cast<T*>(values.data());
    int64_t* ix = indices ? static_cast<int64_t*>(indices->data()) : nullptr;
    parallel_for(0, l.M, std::max<int64_t>(1, 16384 / l.R), [&](int64_t b, int64_t e) {
      for (int64_t m = b; m < e; ++m) {
        const T* row = p + m * l.R;
        C best = C(row[0]);
        int64_t at = 0;
        for (int64_t r = 1; r < l.R; ++r) {
          C val = C(row[r]);
          if constexpr (std::is_floating_point_v<C>) {
            if (best != best) break;  // NaN wins
            if (val != val) {
              best = val;
              at = r;
              break;
            }
          }
          if (IsMax ? val > best : val < best) {
            best = val;
            at = r;
          }
        }
        v[m] = store_cast<T>(best);
        if (ix) ix[m] = at;
      }
    });
  });
}

void amax_kernel(OpCall& c) { extremum<true>(c.in(0), c.attrs.shape("dims"), c.out(0), nullptr); }
void amin_kernel(OpCall& c) { extremum<false>(c.in(0), c.attrs.shape("dims"), c.out(0), nullptr); }
void max_dim_kernel(OpCall& c) { extremum<true>(c.in(0), {c.attrs.i("dim")}, c.out(0), &c.out(1)); }
void min_dim_kernel(OpCall& c) { extremum<false>(c.in(0), {c.attrs.i("dim")}, c.out(0), &c.out(1)); }

}  // namespace

PACER_KERNEL(sum, CPU, sum_kernel);
PACER_KERNEL(amax, CPU, amax_kernel);
PACER_KERNEL(amin, CPU, amin_kernel);
PACER_KERNEL(max_dim, CPU, max_dim_kernel);
PACER_KERNEL(min_dim, CPU, min_dim_kernel);

}  // namespace pacer::ops::cpu
