// CPU convolution: im2col + GEMM per (image, group). The column buffer is
// [C/g * kh * kw, OH * OW]; the input is read through its strides, so channels-last
// inputs need no copy. Backward: dx = col2im(W^T @ dy), dW = sum_n dy @ cols^T.
#include <cstring>

#include "ops/cpu/gemm.h"
#include "ops/cpu/loops.h"
#include "ops/registry.h"

namespace pacer::ops::cpu {

namespace {

struct ConvGeometry {
  int64_t N, C, H, W, K, kh, kw, OH, OW, sh, sw, ph, pw, dh, dw, groups;
  int64_t Cg() const { return C / groups; }
  int64_t Kg() const { return K / groups; }
  int64_t rows() const { return Cg() * kh * kw; }
  int64_t cols() const { return OH * OW; }
};

ConvGeometry geometry(const Attrs& a, const Shape& x, const Shape& w, const Shape& y) {
  const Shape &st = a.shape("stride"), &pad = a.shape("padding"), &dil = a.shape("dilation");
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], st[0], st[1], pad[0], pad[1], dil[0], dil[1], a.i("groups")};
}

// cols[(c, i, j), (oh, ow)] = x[n, g*Cg + c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] (0 outside).
template <class T>
void im2col(const Tensor& x, int64_t n, int64_t g, const ConvGeometry& G, T* cols) {
  const T* px = static_cast<const T*>(x.data());
  const int64_t sN = x.stride(0), sC = x.stride(1), sH = x.stride(2), sW = x.stride(3);
  parallel_for(0, G.rows(), 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t c = r / (G.kh * G.kw), i = (r / G.kw) % G.kh, j = r % G.kw;
      const T* plane = px + n * sN + (g * G.Cg() + c) * sC;
      T* out = cols + r * G.cols();
      for (int64_t oh = 0; oh < G.OH; ++oh) {
        const int64_t h = oh * G.sh - G.ph + i * G.dh;
        T* row = out + oh * G.OW;
        if (h < 0 || h >= G.H) {
          std::fill(row, row + G.OW, T(0.0f));
          continue;
        }
        for (int64_t ow = 0; ow < G.OW; ++ow) {
          const int64_t w = ow * G.sw - G.pw + j * G.dw;
          row[ow] = (w < 0 || w >= G.W) ? T(0.0f) : plane[h * sH + w * sW];
        }
      }
    }
  });
}

// dx[n, g*Cg + c, h, w] += cols[(c, i, j), (oh, ow)] for every tap that read (h, w).
template <class T>
void col2im_add(const T* cols, int64_t n, int64_t g, const ConvGeometry& G, Tensor& dx) {
  T* px = static_cast<T*>(dx.data());  // contiguous NCHW
  parallel_for(0, G.Cg(), 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      T* plane = px + ((n * G.C) + g * G.Cg() + c) * G.H * G.W;
      for (int64_t i = 0; i < G.kh; ++i)
        for (int64_t j = 0; j < G.kw; ++j) {
          const T* row = cols + ((c * G.kh + i) * G.kw + j) * G.cols();
          for (int64_t oh = 0; oh < G.OH; ++oh) {
            const int64_t h = oh * G.sh - G.ph + i * G.dh;
            if (h < 0 || h >= G.H) continue;
            for (int64_t ow = 0; ow < G.OW; ++ow) {
              const int64_t w = ow * G.sw - G.pw + j * G.dw;
              if (w >= 0 && w < G.W)
                plane[h * G.W + w] = store_cast<T>(compute_t<T>(plane[h * G.W + w]) + compute_t<T>(row[oh * G.OW + ow]));
            }
          }
        }
    }
  });
}

// A [rows, cols] matrix view of contiguous memory at element offset `offset` of `t`.
Tensor matrix(const Tensor& t, int64_t offset, int64_t rows, int64_t cols) {
  return make_view(t, {rows, cols}, {cols, 1}, t.storage_offset() + offset);
}

void conv2d_kernel(OpCall& c) {
  const Tensor& x = c.in(0);
  const Tensor w = materialize(c.in(1));
  Tensor& y = c.out(0);
  const ConvGeometry G = geometry(c.attrs, x.sizes(), w.sizes(), y.sizes());
  const bool has_bias = c.inputs.size() > 2 && c.in(2).defined();
  if (has_bias) {
    Tensor b = make_view(c.in(2), {1, G.K, 1, 1}, {0, c.in(2).stride(0), 0, 0}, c.in(2).storage_offset());
    dispatch_dtype(y.dtype(), [&]<class T>() { cpu_kernel<T, T>(y, {&b}, [](compute_t<T> v) { return v; }); });
  }
  dispatch_floating(x.dtype(), "conv2d", [&]<class T>() {
    Tensor cols = empty({G.rows(), G.cols()}, {.dtype = x.dtype()});
    for (int64_t n = 0; n < G.N; ++n)
      for (int64_t g = 0; g < G.groups; ++g) {
        im2col<T>(x, n, g, G, static_cast<T*>(cols.data()));
        Tensor out = matrix(y, (n * G.K + g * G.Kg()) * G.cols(), G.Kg(), G.cols());
        gemm(matrix(w, g * G.Kg() * G.rows(), G.Kg(), G.rows()), cols, out, 1.0, has_bias ? 1.0 : 0.0);
      }
  });
}

void conv2d_backward_input_kernel(OpCall& c) {
  const Tensor gy = materialize(c.in(0));
  const Tensor w = materialize(c.in(1));
  Tensor& dx = c.out(0);
  const ConvGeometry G = geometry(c.attrs, dx.sizes(), w.sizes(), gy.sizes());
  dispatch_floating(dx.dtype(), "conv2d_backward_input", [&]<class T>() {
    std::memset(dx.data(), 0, dx.nbytes());
    Tensor cols = empty({G.rows(), G.cols()}, {.dtype = dx.dtype()});
    for (int64_t n = 0; n < G.N; ++n)
      for (int64_t g = 0; g < G.groups; ++g) {
        Tensor wg = matrix(w, g * G.Kg() * G.rows(), G.Kg(), G.rows());
        Tensor wt = make_view(wg, {G.rows(), G.Kg()}, {1, G.rows()}, wg.storage_offset());
        gemm(wt, matrix(gy, (n * G.K + g * G.Kg()) * G.cols(), G.Kg(), G.cols()), cols, 1.0, 0.0);
        col2im_add<T>(static_cast<const T*>(cols.data()), n, g, G, dx);
      }
  });
}

void conv2d_backward_weight_kernel(OpCall& c) {
  const Tensor gy = materialize(c.in(0));
  const Tensor& x = c.in(1);
  Tensor& dw = c.out(0);
  const ConvGeometry G = geometry(c.attrs, x.sizes(), dw.sizes(), gy.sizes());
  if (G.N == 0) return void(std::memset(dw.data(), 0, dw.nbytes()));
  dispatch_floating(dw.dtype(), "conv2d_backward_weight", [&]<class T>() {
    Tensor cols = empty({G.rows(), G.cols()}, {.dtype = x.dtype()});
    Tensor colsT = make_view(cols, {G.cols(), G.rows()}, {1, G.cols()}, 0);
    for (int64_t n = 0; n < G.N; ++n)
      for (int64_t g = 0; g < G.groups; ++g) {
        im2col<T>(x, n, g, G, static_cast<T*>(cols.data()));
        Tensor dwg = matrix(dw, g * G.Kg() * G.rows(), G.Kg(), G.rows());
        gemm(matrix(gy, (n * G.K + g * G.Kg()) * G.cols(), G.Kg(), G.cols()), colsT, dwg, 1.0, n == 0 ? 0.0 : 1.0);
      }
  });
}

}  // namespace

PACER_KERNEL(conv2d, CPU, conv2d_kernel);
PACER_KERNEL(conv2d_backward_input, CPU, conv2d_backward_input_kernel);
PACER_KERNEL(conv2d_backward_weight, CPU, conv2d_backward_weight_kernel);

}  // namespace pacer::ops::cpu
