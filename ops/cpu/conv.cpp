// CPU convolution: im2col + GEMM per (chunk of images, group). The column buffer is
// [C/g * kh * kw, nb * OH * OW]; the input is read through its strides, so channels-last
// inputs need no copy. Backward: dx = col2im(W^T @ dy), dW = sum_n dy @ cols^T.
// Large feature maps go one image at a time (nb = 1): the GEMM then reads dy and writes y
// or dx in place, and a 1x1 stride-1 convolution (most of ResNet-50) needs no im2col or
// col2im at all, since its column matrix is the image itself.
#include <cstring>

#include "ops/cpu/conv.h"
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

// Images are processed in chunks of `nb`, with the column buffer of a chunk laid out as
// [C/g * kh * kw, nb * OH * OW]: one GEMM per (chunk, group) instead of one per image keeps
// BLAS efficient for small feature maps. Chunks bound the buffer to ~kColumnBytes. From
// kDirectColumns output pixels on, one image alone makes a wide enough GEMM; not for f16 /
// bf16, whose weight gradient would then be rounded to half precision once per image.
constexpr int64_t kColumnBytes = int64_t(8) << 20;
constexpr int64_t kDirectColumns = 784;  // 28 x 28

int64_t chunk_images(const ConvGeometry& G, size_t element_size) {
  if (G.cols() >= kDirectColumns && element_size >= 4) return 1;
  const int64_t per_image = G.rows() * G.cols() * int64_t(element_size);
  return std::max<int64_t>(1, std::min<int64_t>(G.N, kColumnBytes / std::max<int64_t>(per_image, 1)));
}

// The output columns ow whose input column ow * sw + shift lies inside [0, W).
std::pair<int64_t, int64_t> valid_columns(const ConvGeometry& G, int64_t shift) {
  // ow * sw + shift >= 0  <=>  ow >= ceil(-shift / sw);  ow * sw + shift < W  <=>  ow < ceil((W - shift) / sw)
  auto ceil_div = [](int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); };
  const int64_t lo = std::clamp<int64_t>(ceil_div(-shift, G.sw), 0, G.OW);
  const int64_t hi = std::clamp<int64_t>(ceil_div(G.W - shift, G.sw), lo, G.OW);
  return {lo, hi};
}

// cols[(c, i, j), (n - n0, oh, ow)] = x[n, g*Cg + c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] (0 outside).
template <class T>
void im2col(const Tensor& x, int64_t n0, int64_t nb, int64_t g, const ConvGeometry& G, T* cols) {
  const T* px = static_cast<const T*>(x.data());
  const int64_t sN = x.stride(0), sC = x.stride(1), sH = x.stride(2), sW = x.stride(3);
  const int64_t width = nb * G.cols();
  parallel_for(0, G.rows() * nb, std::max<int64_t>(1, 4096 / G.cols()), [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t r = task / nb, n = n0 + task % nb;
      const int64_t c = r / (G.kh * G.kw), i = (r / G.kw) % G.kh, j = r % G.kw;
      const T* plane = px + n * sN + (g * G.Cg() + c) * sC;
      T* out = cols + r * width + (n - n0) * G.cols();
      // Output columns [lo, hi) read inside the image; the rest is padding.
      const int64_t shift = j * G.dw - G.pw;
      const auto [lo, hi] = valid_columns(G, shift);
      for (int64_t oh = 0; oh < G.OH; ++oh) {
        const int64_t h = oh * G.sh - G.ph + i * G.dh;
        T* row = out + oh * G.OW;
        if (h < 0 || h >= G.H) {
          std::fill(row, row + G.OW, T(0.0f));
          continue;
        }
        // No branch in the copy loop, and a plain memcpy for unit strides.
        const T* src = plane + h * sH;
        std::fill(row, row + lo, T(0.0f));
        if (G.sw == 1 && sW == 1) {
          if (hi > lo) std::memcpy(row + lo, src + lo + shift, size_t(hi - lo) * sizeof(T));
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) row[ow] = src[(ow * G.sw + shift) * sW];
        }
        std::fill(row + std::max(lo, hi), row + G.OW, T(0.0f));
      }
    }
  });
}

// dx[n, g*Cg + c, h, w] += cols[(c, i, j), (n - n0, oh, ow)] for every tap that read (h, w).
template <class T>
void col2im_add(const T* cols, int64_t n0, int64_t nb, int64_t g, const ConvGeometry& G, Tensor& dx) {
  T* px = static_cast<T*>(dx.data());  // contiguous NCHW
  const int64_t width = nb * G.cols();
  parallel_for(0, nb * G.Cg(), 1, [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t n = n0 + task / G.Cg(), c = task % G.Cg();
      T* plane = px + ((n * G.C) + g * G.Cg() + c) * G.H * G.W;
      for (int64_t i = 0; i < G.kh; ++i)
        for (int64_t j = 0; j < G.kw; ++j) {
          const T* row = cols + ((c * G.kh + i) * G.kw + j) * width + (n - n0) * G.cols();
          const int64_t shift = j * G.dw - G.pw;
          const auto [lo, hi] = valid_columns(G, shift);
          for (int64_t oh = 0; oh < G.OH; ++oh) {
            const int64_t h = oh * G.sh - G.ph + i * G.dh;
            if (h < 0 || h >= G.H) continue;
            T* dst = plane + h * G.W;
            const T* src = row + oh * G.OW;
            for (int64_t ow = lo; ow < hi; ++ow) {
              T& d = dst[ow * G.sw + shift];
              d = store_cast<T>(compute_t<T>(d) + compute_t<T>(src[ow]));
            }
          }
        }
    }
  });
}

// A [rows, cols] view with row stride `ld` at element offset `offset` of `t`.
Tensor matrix(const Tensor& t, int64_t offset, int64_t rows, int64_t cols, int64_t ld) {
  return make_view(t, {rows, cols}, {ld, 1}, t.storage_offset() + offset);
}

// Channels [g * per_group, (g + 1) * per_group) of image n of a contiguous NCHW tensor as a
// [per_group, H * W] matrix.
Tensor image_matrix(const Tensor& t, int64_t n, int64_t g, int64_t per_group) {
  const int64_t hw = t.size(2) * t.size(3);
  return matrix(t, n * t.stride(0) + g * per_group * hw, per_group, hw, hw);
}

// True when the column matrix of an image is the image itself ([C/g, H * W]): a 1x1,
// stride-1, unpadded convolution of a contiguous NCHW input whose output has the input's
// size (a transposed convolution's output_padding can make it larger).
bool columns_are_input(const ConvGeometry& G, const Tensor& x) {
  return G.kh == 1 && G.kw == 1 && G.sh == 1 && G.sw == 1 && G.ph == 0 && G.pw == 0 && G.OH == G.H &&
         G.OW == G.W && x.stride(3) == 1 && x.stride(2) == G.W && x.stride(1) == G.H * G.W;
}

// The [C/g * kh * kw, OH * OW] column matrix of image n, group g: the image itself when
// `direct` (columns_are_input), else im2col'd into `buffer` (allocated on first use).
template <class T>
Tensor image_columns(const Tensor& x, int64_t n, int64_t g, const ConvGeometry& G, bool direct, Tensor& buffer) {
  if (direct) return image_matrix(x, n, g, G.Cg());
  if (!buffer.defined()) buffer = empty({G.rows(), G.cols()}, {.dtype = x.dtype()});
  im2col<T>(x, n, 1, g, G, static_cast<T*>(buffer.data()));
  return buffer;
}

// [nb, K, OHW] block of a contiguous NCHW tensor viewed as [K, nb * OHW] ([k, (n, p)]):
// copies between that layout and a dense [K, nb * OHW] buffer.
template <class T>
void gather_channels_first(const Tensor& y, int64_t n0, int64_t nb, const ConvGeometry& G, T* dst) {
  const T* py = static_cast<const T*>(y.data());
  parallel_for(0, G.K * nb, 16, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t k = t / nb, n = n0 + t % nb;
      std::copy_n(py + (n * G.K + k) * G.cols(), G.cols(), dst + k * nb * G.cols() + (n - n0) * G.cols());
    }
  });
}

template <class T>
void scatter_channels_first(const T* src, int64_t n0, int64_t nb, const ConvGeometry& G, Tensor& y) {
  T* py = static_cast<T*>(y.data());
  parallel_for(0, G.K * nb, 16, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t k = t / nb, n = n0 + t % nb;
      T* out = py + (n * G.K + k) * G.cols();
      const T* in = src + k * nb * G.cols() + (n - n0) * G.cols();
      for (int64_t p = 0; p < G.cols(); ++p) out[p] = store_cast<T>(compute_t<T>(out[p]) + compute_t<T>(in[p]));
    }
  });
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Attrs& attrs, Tensor& y,
                    const std::function<void(int64_t, int64_t)>& after_images) {
  const Tensor w = materialize(weight);
  const ConvGeometry G = geometry(attrs, x.sizes(), w.sizes(), y.sizes());
  const bool has_bias = bias.defined();
  const int64_t chunk = chunk_images(G, x.element_size());
  if (has_bias) {
    Tensor b = make_view(bias, {1, G.K, 1, 1}, {0, bias.stride(0), 0, 0}, bias.storage_offset());
    dispatch_dtype(y.dtype(), [&]<class T>() { cpu_kernel<T, T>(y, {&b}, [](compute_t<T> v) { return v; }); });
  } else if (chunk > 1) {
    std::memset(y.data(), 0, y.nbytes());
  }
  dispatch_floating(x.dtype(), "conv2d", [&]<class T>() {
    auto weights = [&](int64_t g) { return matrix(w, g * G.Kg() * G.rows(), G.Kg(), G.rows(), G.rows()); };
    if (chunk == 1) {
      const bool direct = columns_are_input(G, x);
      Tensor buffer;
      for (int64_t n = 0; n < G.N; ++n) {
        for (int64_t g = 0; g < G.groups; ++g) {
          Tensor yg = image_matrix(y, n, g, G.Kg());
          gemm(weights(g), image_columns<T>(x, n, g, G, direct, buffer), yg, 1.0, has_bias ? 1.0 : 0.0);
        }
        if (after_images) after_images(n, 1);
      }
      return;
    }
    Tensor cols = empty({G.rows(), chunk * G.cols()}, {.dtype = x.dtype()});
    Tensor out = empty({G.K, chunk * G.cols()}, {.dtype = x.dtype()});
    for (int64_t n0 = 0; n0 < G.N; n0 += chunk) {
      const int64_t nb = std::min(chunk, G.N - n0), width = nb * G.cols();
      for (int64_t g = 0; g < G.groups; ++g) {
        im2col<T>(x, n0, nb, g, G, static_cast<T*>(cols.data()));
        Tensor og = matrix(out, g * G.Kg() * width, G.Kg(), width, width);
        gemm(weights(g), matrix(cols, 0, G.rows(), width, width), og, 1.0, 0.0);
      }
      scatter_channels_first<T>(static_cast<const T*>(out.data()), n0, nb, G, y);
      if (after_images) after_images(n0, nb);
    }
  });
}

namespace {

void conv2d_kernel(OpCall& c) {
  const bool has_bias = c.inputs.size() > 2 && c.in(2).defined();
  conv2d_forward(c.in(0), c.in(1), has_bias ? c.in(2) : Tensor(), c.attrs, c.out(0));
}

// dx = col2im(W^T @ dy): the gradient of conv2d w.r.t. its input, and the forward of
// conv_transpose2d (whose input plays dy and whose output plays dx).
void conv_input_grad(const Tensor& dy, const Tensor& weight, Tensor& dx, const Attrs& attrs) {
  const Tensor gy = materialize(dy);
  const Tensor w = materialize(weight);
  const ConvGeometry G = geometry(attrs, dx.sizes(), w.sizes(), gy.sizes());
  const int64_t chunk = chunk_images(G, dx.element_size());
  const bool direct = chunk == 1 && columns_are_input(G, dx);  // GEMM straight into dx
  if (!direct) std::memset(dx.data(), 0, dx.nbytes());
  dispatch_floating(dx.dtype(), "conv2d_backward_input", [&]<class T>() {
    auto weights_t = [&](int64_t g) {  // W_g^T: [C/g * kh * kw, K/g]
      return make_view(w, {G.rows(), G.Kg()}, {1, G.rows()}, w.storage_offset() + g * G.Kg() * G.rows());
    };
    if (chunk == 1) {
      Tensor cols = direct ? Tensor() : empty({G.rows(), G.cols()}, {.dtype = dx.dtype()});
      for (int64_t n = 0; n < G.N; ++n) {
        for (int64_t g = 0; g < G.groups; ++g) {
          Tensor out = direct ? image_matrix(dx, n, g, G.Cg()) : cols;
          gemm(weights_t(g), image_matrix(gy, n, g, G.Kg()), out, 1.0, 0.0);
          if (!direct) col2im_add<T>(static_cast<const T*>(cols.data()), n, 1, g, G, dx);
        }
      }
      return;
    }
    Tensor cols = empty({G.rows(), chunk * G.cols()}, {.dtype = dx.dtype()});
    Tensor gyk = empty({G.K, chunk * G.cols()}, {.dtype = dx.dtype()});
    for (int64_t n0 = 0; n0 < G.N; n0 += chunk) {
      const int64_t nb = std::min(chunk, G.N - n0), width = nb * G.cols();
      gather_channels_first<T>(gy, n0, nb, G, static_cast<T*>(gyk.data()));
      for (int64_t g = 0; g < G.groups; ++g) {
        Tensor cg = matrix(cols, 0, G.rows(), width, width);
        gemm(weights_t(g), matrix(gyk, g * G.Kg() * width, G.Kg(), width, width), cg, 1.0, 0.0);
        col2im_add<T>(static_cast<const T*>(cols.data()), n0, nb, g, G, dx);
      }
    }
  });
}

void conv2d_backward_input_kernel(OpCall& c) { conv_input_grad(c.in(0), c.in(1), c.out(0), c.attrs); }

void conv_transpose2d_kernel(OpCall& c) {
  Tensor& y = c.out(0);
  conv_input_grad(c.in(0), c.in(1), y, c.attrs);
  if (c.inputs.size() > 2 && c.in(2).defined()) {
    Tensor b = make_view(c.in(2), {1, y.size(1), 1, 1}, {0, c.in(2).stride(0), 0, 0}, c.in(2).storage_offset());
    dispatch_dtype(y.dtype(), [&]<class T>() {
      cpu_kernel<T, T, T>(y, {&y, &b}, [](compute_t<T> a, compute_t<T> v) { return a + v; });
    });
  }
}

void conv2d_backward_weight_kernel(OpCall& c) {
  const Tensor gy = materialize(c.in(0));
  const Tensor& x = c.in(1);
  Tensor& dw = c.out(0);
  const ConvGeometry G = geometry(c.attrs, x.sizes(), dw.sizes(), gy.sizes());
  std::memset(dw.data(), 0, dw.nbytes());
  dispatch_floating(dw.dtype(), "conv2d_backward_weight", [&]<class T>() {
    auto grad = [&](int64_t g) { return matrix(dw, g * G.Kg() * G.rows(), G.Kg(), G.rows(), G.rows()); };
    const int64_t chunk = chunk_images(G, x.element_size());
    if (chunk == 1) {
      const bool direct = columns_are_input(G, x);
      Tensor buffer;
      for (int64_t n = 0; n < G.N; ++n) {
        for (int64_t g = 0; g < G.groups; ++g) {
          const Tensor cm = image_columns<T>(x, n, g, G, direct, buffer);  // [rows, OH * OW]
          const Tensor cm_t = make_view(cm, {G.cols(), G.rows()}, {1, cm.stride(0)}, cm.storage_offset());
          Tensor dwg = grad(g);
          gemm(image_matrix(gy, n, g, G.Kg()), cm_t, dwg, 1.0, 1.0);
        }
      }
      return;
    }
    Tensor cols = empty({G.rows(), chunk * G.cols()}, {.dtype = x.dtype()});
    Tensor gyk = empty({G.K, chunk * G.cols()}, {.dtype = x.dtype()});
    for (int64_t n0 = 0; n0 < G.N; n0 += chunk) {
      const int64_t nb = std::min(chunk, G.N - n0), width = nb * G.cols();
      gather_channels_first<T>(gy, n0, nb, G, static_cast<T*>(gyk.data()));
      for (int64_t g = 0; g < G.groups; ++g) {
        im2col<T>(x, n0, nb, g, G, static_cast<T*>(cols.data()));
        Tensor colsT = make_view(cols, {width, G.rows()}, {1, width}, 0);
        Tensor dwg = grad(g);
        gemm(matrix(gyk, g * G.Kg() * width, G.Kg(), width, width), colsT, dwg, 1.0, 1.0);
      }
    }
  });
}

}  // namespace

PACER_KERNEL(conv2d, CPU, conv2d_kernel);
PACER_KERNEL(conv2d_backward_input, CPU, conv2d_backward_input_kernel);
PACER_KERNEL(conv2d_backward_weight, CPU, conv2d_backward_weight_kernel);
PACER_KERNEL(conv_transpose2d, CPU, conv_transpose2d_kernel);

}  // namespace pacer::ops::cpu
