// CPU convolution: im2col + GEMM per (chunk of images, group). The column buffer is
// [C/g * kh * kw, nb * OH * OW]; the input is read through its strides, so channels-last
// inputs need no copy. Backward: dx = col2im(W^T @ dy), dW = sum_n dy @ cols^T.
// Feature maps from 14 x 14 on go one image at a time (nb = 1), in blocks of output rows
// whose column buffer stays in L2; the GEMM then reads dy and writes y or dx in place, and a
// 1x1 stride-1 convolution (most of ResNet-50) needs no im2col or col2im at all, since its
// column matrix is the image itself. 3x3 stride-1 convolutions with enough channels go to
// Winograd F(4x4, 3x3) instead (ops/cpu/conv_winograd.cpp).
#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include "ops/cpu/chunk_sums.h"
#include "ops/cpu/conv.h"
#include "ops/cpu/conv_winograd.h"
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

// The problem as Winograd sees it, when the convolution is one it can take (3x3, stride 1,
// undilated, ungrouped) and the current mode sends it there.
std::optional<winograd::Problem> winograd_problem(const ConvGeometry& G, DType dtype) {
  if (G.kh != 3 || G.kw != 3 || G.sh != 1 || G.sw != 1 || G.dh != 1 || G.dw != 1 || G.groups != 1) return std::nullopt;
  const winograd::Problem p{G.N, G.C, G.H, G.W, G.K, G.OH, G.OW, G.ph, G.pw};
  if (!winograd::use_winograd(p, dtype)) return std::nullopt;
  return p;
}

// Small images are processed in chunks of `nb`, with the column buffer of a chunk laid out as
// [C/g * kh * kw, nb * OH * OW]: one GEMM per (chunk, group) instead of one per image keeps
// BLAS efficient. Chunks bound the buffer to ~kColumnBytes (4 MiB: ResNet-50's 512-channel
// 7 x 7 layers measured the same as with 8, and their column buffers are scratch at the
// graph's peak). From kPerImageColumns output
// pixels (14 x 14) on, images go one at a time (blocked, below, or a 1x1 stride-1
// convolution's GEMM straight on the image): measured 7-15% faster than chunks at
// ResNet-50's 14 x 14 shapes, and no column or output buffers of a chunk's size; 7 x 7
// images make too narrow a GEMM. Not for f16 / bf16, whose weight gradient would then be
// rounded to half precision once per image.
constexpr int64_t kColumnBytes = int64_t(4) << 20;
constexpr int64_t kPerImageColumns = 196;  // 14 x 14

int64_t chunk_images(const ConvGeometry& G, size_t element_size) {
  if (G.cols() >= kPerImageColumns && element_size >= 4) return 1;
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

// Row r = (c, i, j) of image n's column matrix, output rows [oh0, oh1): out[(oh - oh0) * OW
// + ow] = x[n, g*Cg + c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] (0 outside the image).
template <class T>
void im2col_row(const Tensor& x, int64_t n, int64_t g, int64_t r, const ConvGeometry& G, int64_t oh0, int64_t oh1,
                T* out) {
  const T* px = static_cast<const T*>(x.data());
  const int64_t sH = x.stride(2), sW = x.stride(3);
  const int64_t c = r / (G.kh * G.kw), i = (r / G.kw) % G.kh, j = r % G.kw;
  const T* plane = px + n * x.stride(0) + (g * G.Cg() + c) * x.stride(1);
  // Output columns [lo, hi) read inside the image; the rest is padding.
  const int64_t shift = j * G.dw - G.pw;
  const auto [lo, hi] = valid_columns(G, shift);
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const int64_t h = oh * G.sh - G.ph + i * G.dh;
    T* row = out + (oh - oh0) * G.OW;
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

// cols[(c, i, j), (n - n0, oh, ow)] = x[n, g*Cg + c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] (0 outside).
template <class T>
void im2col(const Tensor& x, int64_t n0, int64_t nb, int64_t g, const ConvGeometry& G, T* cols) {
  const int64_t width = nb * G.cols();
  parallel_for(0, G.rows() * nb, std::max<int64_t>(1, 4096 / G.cols()), [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t r = task / nb, n = n0 + task % nb;
      im2col_row<T>(x, n, g, r, G, 0, G.OH, cols + r * width + (n - n0) * G.cols());
    }
  });
}

// The column matrix of image n, group g, output rows [oh0, oh1), into `cols` ([rows, (oh1 -
// oh0) * OW]), on the calling thread.
template <class T>
void im2col_rows(const Tensor& x, int64_t n, int64_t g, const ConvGeometry& G, int64_t oh0, int64_t oh1, T* cols) {
  const int64_t width = (oh1 - oh0) * G.OW;
  for (int64_t r = 0; r < G.rows(); ++r) im2col_row<T>(x, n, g, r, G, oh0, oh1, cols + r * width);
}

// dx[n, g*Cg + c, h, w] += cols[(c, i, j), (oh - oh0) * OW + ow] over output rows [oh0, oh1)
// for every tap that read (h, w); `width` is the row stride of cols.
template <class T>
void col2im_channel(const T* cols, int64_t width, int64_t n, int64_t g, int64_t c, const ConvGeometry& G, int64_t oh0,
                    int64_t oh1, Tensor& dx) {
  T* plane = static_cast<T*>(dx.data()) + ((n * G.C) + g * G.Cg() + c) * G.H * G.W;  // contiguous NCHW
  for (int64_t i = 0; i < G.kh; ++i)
    for (int64_t j = 0; j < G.kw; ++j) {
      const T* row = cols + ((c * G.kh + i) * G.kw + j) * width;
      const int64_t shift = j * G.dw - G.pw;
      const auto [lo, hi] = valid_columns(G, shift);
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        const int64_t h = oh * G.sh - G.ph + i * G.dh;
        if (h < 0 || h >= G.H) continue;
        T* dst = plane + h * G.W;
        const T* src = row + (oh - oh0) * G.OW;
        if (G.sw == 1) {  // unit stride: a loop the compiler vectorizes (cols and dx never overlap)
          T* __restrict d = dst + lo + shift;
          const T* __restrict v = src + lo;
          for (int64_t k = 0; k < hi - lo; ++k) d[k] = store_cast<T>(compute_t<T>(d[k]) + compute_t<T>(v[k]));
          continue;
        }
        for (int64_t ow = lo; ow < hi; ++ow) {
          T& d = dst[ow * G.sw + shift];
          d = store_cast<T>(compute_t<T>(d) + compute_t<T>(src[ow]));
        }
      }
    }
}

// col2im of a chunk: cols is [C/g * kh * kw, nb * OH * OW].
template <class T>
void col2im_add(const T* cols, int64_t n0, int64_t nb, int64_t g, const ConvGeometry& G, Tensor& dx) {
  const int64_t width = nb * G.cols();
  parallel_for(0, nb * G.Cg(), 1, [&](int64_t b, int64_t e) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t n = n0 + task / G.Cg(), c = task % G.Cg();
      col2im_channel<T>(cols + (n - n0) * G.cols(), width, n, g, c, G, 0, G.OH, dx);
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
  if (!buffer.defined()) buffer = scratch_empty({G.rows(), G.cols()}, x.dtype());
  im2col<T>(x, n, 1, g, G, static_cast<T*>(buffer.data()));
  return buffer;
}

// Per-image column matrices are made and multiplied a block of output rows at a time, the
// block's buffer ([rows, block * OW], at most kBlockBytes) staying in the core's L2 between
// im2col writing it and the GEMM reading it; each thread takes whole (image, group, block)
// tasks with a buffer of its own and runs its GEMMs alone. The narrower GEMMs also run
// faster in OpenBLAS than one over a whole 56x56 image (measured: ~95 against ~75 GFLOP/s
// per core for 64 x 576 weights).
constexpr int64_t kBlockBytes = int64_t(512) << 10;

// Whole output rows, at least kMinBlockColumns columns (narrower GEMMs lose more than the
// cache saves: 28x28 maps measured no faster with 84-column blocks).
constexpr int64_t kMinBlockColumns = 256;

int64_t rows_per_block(const ConvGeometry& G, size_t element_size) {
  const int64_t by_bytes = kBlockBytes / std::max<int64_t>(G.rows() * G.OW * int64_t(element_size), 1);
  return std::clamp<int64_t>(std::max(by_bytes, (kMinBlockColumns + G.OW - 1) / G.OW), 1, G.OH);
}

// Output rows [oh0, oh1) of channels [g * per_group, (g + 1) * per_group) of image n of a
// contiguous NCHW tensor, as a [per_group, (oh1 - oh0) * W] matrix.
Tensor image_block(const Tensor& t, int64_t n, int64_t g, int64_t per_group, int64_t oh0, int64_t oh1) {
  const int64_t hw = t.size(2) * t.size(3);
  return matrix(t, n * t.stride(0) + g * per_group * hw + oh0 * t.size(3), per_group, (oh1 - oh0) * t.size(3), hw);
}

// Blocked per-image work pays when every thread gets whole images or groups.
bool blocked(const ConvGeometry& G) { return G.N * G.groups >= num_threads(); }

// y = W @ cols, image by image, block by block. With `after_images`, images go in rounds of
// one per thread, the hook called after each round (images in order).
template <class T>
void forward_blocked(const Tensor& x, const Tensor& w, const ConvGeometry& G, double beta, Tensor& y,
                     const std::function<void(int64_t, int64_t)>& after_images) {
  const int64_t bh = rows_per_block(G, sizeof(T)), blocks = (G.OH + bh - 1) / bh, per_image = G.groups * blocks;
  const int64_t round = after_images ? std::max<int64_t>(1, num_threads()) : G.N;
  // A round's tasks go in at most num_threads() runs of near-equal length. A parallel_for
  // chunk of runs [r0, r1) uses column buffer r0, which it keeps for the later rounds:
  // scratch allocated once per thread, not per round (nor per run when one thread takes all).
  std::vector<Tensor> buffers(static_cast<size_t>(num_threads()));
  for (int64_t n0 = 0; n0 < G.N; n0 += round) {
    const int64_t nb = std::min(round, G.N - n0), tasks = nb * per_image;
    const int64_t runs = std::min<int64_t>(num_threads(), tasks);
    parallel_for(0, runs, 1, [&](int64_t r0, int64_t r1) {
      Tensor& buf = buffers[size_t(r0)];
      if (!buf.defined()) buf = scratch_empty({G.rows() * bh * G.OW}, x.dtype());
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t t = tasks * r / runs; t < tasks * (r + 1) / runs; ++t) {
          const int64_t n = n0 + t / per_image, g = t % per_image / blocks, oh0 = t % blocks * bh;
          const int64_t oh1 = std::min(G.OH, oh0 + bh), width = (oh1 - oh0) * G.OW;
          im2col_rows<T>(x, n, g, G, oh0, oh1, static_cast<T*>(buf.data()));
          Tensor yb = image_block(y, n, g, G.Kg(), oh0, oh1);
          gemm(matrix(w, g * G.Kg() * G.rows(), G.Kg(), G.rows(), G.rows()), matrix(buf, 0, G.rows(), width, width),
               yb, 1.0, beta);
        }
      }
    });
    if (after_images) after_images(n0, nb);
  }
}

// dx += col2im(W^T @ dy) (dx zeroed first), one (image, group) per task: col2im of
// neighbouring row blocks adds into the same input rows, so a task takes all of an image's.
template <class T>
void input_grad_blocked(const Tensor& gy, const Tensor& w, const ConvGeometry& G, Tensor& dx) {
  const int64_t bh = rows_per_block(G, sizeof(T));
  parallel_for(0, G.N * G.groups, 1, [&](int64_t b, int64_t e) {
    Tensor buf = scratch_empty({G.rows() * bh * G.OW}, dx.dtype());
    for (int64_t t = b; t < e; ++t) {
      const int64_t n = t / G.groups, g = t % G.groups;
      const Tensor wt = make_view(w, {G.rows(), G.Kg()}, {1, G.rows()}, w.storage_offset() + g * G.Kg() * G.rows());
      for (int64_t oh0 = 0; oh0 < G.OH; oh0 += bh) {
        const int64_t oh1 = std::min(G.OH, oh0 + bh), width = (oh1 - oh0) * G.OW;
        Tensor cb = matrix(buf, 0, G.rows(), width, width);
        gemm(wt, image_block(gy, n, g, G.Kg(), oh0, oh1), cb, 1.0, 0.0);
        for (int64_t c = 0; c < G.Cg(); ++c) col2im_channel<T>(static_cast<T*>(buf.data()), width, n, g, c, G, oh0, oh1, dx);
      }
    }
  });
}

// dw = sum_n dy_n @ cols_n^T: each thread sums its images into a buffer of its own (the one
// with image 0 into dw, zero at first); the others are added in image order (the same result
// for the same thread count).
template <class T>
void weight_grad_blocked(const Tensor& gy, const Tensor& x, const ConvGeometry& G, Tensor& dw) {
  const int64_t bh = rows_per_block(G, sizeof(T));
  sum_chunks_in_order<T>(G.N, dw, [&](int64_t b, int64_t e, Tensor& acc) {
    Tensor buf = scratch_empty({G.rows() * bh * G.OW}, x.dtype());
    for (int64_t n = b; n < e; ++n)
      for (int64_t g = 0; g < G.groups; ++g) {
        Tensor ag = matrix(acc, g * G.Kg() * G.rows(), G.Kg(), G.rows(), G.rows());
        for (int64_t oh0 = 0; oh0 < G.OH; oh0 += bh) {
          const int64_t oh1 = std::min(G.OH, oh0 + bh), width = (oh1 - oh0) * G.OW;
          im2col_rows<T>(x, n, g, G, oh0, oh1, static_cast<T*>(buf.data()));
          const Tensor cols_t = make_view(buf, {width, G.rows()}, {1, width}, 0);
          gemm(image_block(gy, n, g, G.Kg(), oh0, oh1), cols_t, ag, 1.0, 1.0);
        }
      }
  });
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
  if (const auto p = winograd_problem(G, x.dtype())) return winograd::forward(x, w, bias, *p, y, after_images);
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
    if (chunk == 1 && columns_are_input(G, x)) {
      for (int64_t n = 0; n < G.N; ++n) {
        for (int64_t g = 0; g < G.groups; ++g) {
          Tensor yg = image_matrix(y, n, g, G.Kg());
          gemm(weights(g), image_matrix(x, n, g, G.Cg()), yg, 1.0, has_bias ? 1.0 : 0.0);
        }
        if (after_images) after_images(n, 1);
      }
      return;
    }
    if (chunk == 1 && blocked(G)) return forward_blocked<T>(x, w, G, has_bias ? 1.0 : 0.0, y, after_images);
    Tensor cols = scratch_empty({G.rows(), chunk * G.cols()}, x.dtype());
    Tensor out = scratch_empty({G.K, chunk * G.cols()}, x.dtype());
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
  if (const auto p = winograd_problem(G, dx.dtype())) return winograd::input_grad(gy, w, *p, dx);
  const int64_t chunk = chunk_images(G, dx.element_size());
  const bool direct = chunk == 1 && columns_are_input(G, dx);  // GEMM straight into dx
  if (!direct) std::memset(dx.data(), 0, dx.nbytes());
  dispatch_floating(dx.dtype(), "conv2d_backward_input", [&]<class T>() {
    auto weights_t = [&](int64_t g) {  // W_g^T: [C/g * kh * kw, K/g]
      return make_view(w, {G.rows(), G.Kg()}, {1, G.rows()}, w.storage_offset() + g * G.Kg() * G.rows());
    };
    if (chunk == 1 && !direct && blocked(G)) return input_grad_blocked<T>(gy, w, G, dx);
    if (chunk == 1) {
      Tensor cols = direct ? Tensor() : scratch_empty({G.rows(), G.cols()}, dx.dtype());
      for (int64_t n = 0; n < G.N; ++n) {
        for (int64_t g = 0; g < G.groups; ++g) {
          Tensor out = direct ? image_matrix(dx, n, g, G.Cg()) : cols;
          gemm(weights_t(g), image_matrix(gy, n, g, G.Kg()), out, 1.0, 0.0);
          if (!direct) col2im_add<T>(static_cast<const T*>(cols.data()), n, 1, g, G, dx);
        }
      }
      return;
    }
    Tensor cols = scratch_empty({G.rows(), chunk * G.cols()}, dx.dtype());
    Tensor gyk = scratch_empty({G.K, chunk * G.cols()}, dx.dtype());
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
  if (const auto p = winograd_problem(G, dw.dtype())) return winograd::weight_grad(gy, x, *p, dw);
  std::memset(dw.data(), 0, dw.nbytes());
  dispatch_floating(dw.dtype(), "conv2d_backward_weight", [&]<class T>() {
    auto grad = [&](int64_t g) { return matrix(dw, g * G.Kg() * G.rows(), G.Kg(), G.rows(), G.rows()); };
    const int64_t chunk = chunk_images(G, x.element_size());
    const bool direct = columns_are_input(G, x);
    if (chunk == 1 && !direct && blocked(G)) return weight_grad_blocked<T>(gy, x, G, dw);
    if (chunk == 1) {
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
    Tensor cols = scratch_empty({G.rows(), chunk * G.cols()}, x.dtype());
    Tensor gyk = scratch_empty({G.K, chunk * G.cols()}, x.dtype());
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
