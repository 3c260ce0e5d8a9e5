// Winograd F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
// CVPR 2016). In one dimension, four outputs of a 3-tap correlation of six inputs d with a
// filter g are A^T [(G g) .* (B^T d)]: 6 multiplications instead of 12. In two, a 4x4 output
// tile is A^T [(G g G^T) .* (B^T d B)] A: 36 instead of 144. Summed over input channels, the
// elementwise product becomes one GEMM per point p of the 6x6 transform domain,
// M[p] (tiles x Cout) = V[p] (tiles x Cin) @ U[p] (Cin x Cout), with a quarter of the direct
// method's multiply-adds. The transforms are sums and small multiples; tiles are laid out
// channel-minor, so each transform is a loop over channels that the compiler vectorizes.
//
// The input gradient is the forward convolution of dy with the filters rotated 180 degrees
// and transposed (padding 2 - p). The weight gradient is the forward's adjoint: dU[p] sums
// (A dY A^T)[p]^T @ V[p] over tiles, and dw = G^T dU G.
//
// Output tile (th, tw) covers output rows 4th..4th+3 and columns 4tw..4tw+3 and reads input
// rows 4th - ph .. 4th - ph + 5 (zero outside the image). Partial tiles at the bottom and
// right edges compute outputs that are dropped (forward) or read zero gradients (weight
// gradient). Work goes in blocks of whole tile rows of one image, each thread with scratch
// of its own, sized to stay in its L2.
#include "ops/cpu/conv_winograd.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "core/error.h"
#include "core/scratch.h"
#include "core/thread_pool.h"
#include "ops/cpu/chunk_sums.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/loops.h"

namespace pacer::ops::cpu::winograd {

namespace {

constexpr int64_t kPoints = 36;  // transform-domain points of a tile (6 x 6)

// Auto mode leaves out convolutions with fewer channels than this on either side: their
// transforms, which scale with Cin + Cout, cost more than the GEMM work they save, which
// scales with Cin * Cout.
constexpr int64_t kMinChannels = 32;

// ... and filters whose transform U (36 x Cin x Cout values) is larger than this: every block
// of tiles reads all of U (and OpenBLAS packs each U[p] again per block). Measured fwd + bwd,
// batch 8, 2 threads, ms (im2col / Winograd, PACER_CONV_WINOGRAD=2): 64 channels at 56 x 56
// 41.3 / 13.0, 128 at 28 x 28 36.9 / 13.1, 256 at 14 x 14 36.0 / 20.5, 512 at 7 x 7 39.4 /
// 42.6. So ResNet-50's 256-channel layers (U 9.4 MiB) go here; their scratch (U, or dU, plus
// each thread's block: ~15 MiB) is planned in the graph's arena (core/scratch.h), where it
// fits in the gaps the activations leave.
constexpr int64_t kMaxFilterBytes = int64_t(10) << 20;

// V and M of a block (36 points x tiles x (Cin + Cout) values) stay within this (512 KiB to
// 2 MiB measured the same) ...
constexpr int64_t kBlockBytes = int64_t(1) << 20;
// ... unless that leaves a block fewer tiles than this (16 to 64 measured alike within the
// noise; larger blocks lift the step's peak memory).
constexpr int64_t kMinTiles = 32;
// Filters whose U is larger than this take a thread's whole share of tiles in one block:
// OpenBLAS packs each U[p] again for every block, and with U out of L2 that packing was a
// fifth of a 256-channel forward at 14 x 14 (perf). Measured, batch 8, 2 threads, median of
// 30: forward 6.3 -> 5.6 ms, forward + backward 18.2 -> 17.0 ms. With 64 or 128 channels
// (U up to 2.3 MiB) larger blocks measured no faster.
constexpr int64_t kSharedFilterBytes = int64_t(4) << 20;
// ... up to this much V and M per block (batch 8 at 14 x 14: a share is 4.7 MiB; a large
// batch would otherwise make each thread's scratch its whole share of the batch).
constexpr int64_t kMaxSharedBlockBytes = int64_t(8) << 20;

#if defined(__clang__)
#define PACER_WINOGRAD_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#define PACER_WINOGRAD_IVDEP _Pragma("GCC ivdep")
#endif

// One-dimensional transforms, applied elementwise to rows of n values: in[i] and out[j]
// point at rows of channels; no out row overlaps an in row.

// B^T (6 -> 6): the input transform.
template <class T>
void input_rows(const T* const* in, T* const* out, int64_t n) {
  const T *d0 = in[0], *d1 = in[1], *d2 = in[2], *d3 = in[3], *d4 = in[4], *d5 = in[5];
  T *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3], *o4 = out[4], *o5 = out[5];
  PACER_WINOGRAD_IVDEP
  for (int64_t c = 0; c < n; ++c) {
    const T a = d0[c], b = d1[c], e = d2[c], f = d3[c], g = d4[c], h = d5[c];
    o0[c] = T(4) * a - T(5) * e + g;
    o1[c] = (f + g) - T(4) * (b + e);
    o2[c] = (g - f) + T(4) * (b - e);
    o3[c] = (g - e) + T(2) * (f - b);
    o4[c] = (g - e) - T(2) * (f - b);
    o5[c] = T(4) * b - T(5) * f + h;
  }
}

// A^T (6 -> 4): the output transform.
template <class T>
void output_rows(const T* const* in, T* const* out, int64_t n) {
  const T *m0 = in[0], *m1 = in[1], *m2 = in[2], *m3 = in[3], *m4 = in[4], *m5 = in[5];
  T *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3];
  PACER_WINOGRAD_IVDEP
  for (int64_t c = 0; c < n; ++c) {
    const T s12 = m1[c] + m2[c], d12 = m1[c] - m2[c], s34 = m3[c] + m4[c], d34 = m3[c] - m4[c];
    o0[c] = m0[c] + s12 + s34;
    o1[c] = d12 + T(2) * d34;
    o2[c] = s12 + T(4) * s34;
    o3[c] = d12 + T(8) * d34 + m5[c];
  }
}

// G (3 -> 6): the filter transform.
template <class T>
void filter_rows(const T* const* in, T* const* out, int64_t n) {
  const T *g0 = in[0], *g1 = in[1], *g2 = in[2];
  T *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3], *o4 = out[4], *o5 = out[5];
  const T sixth = T(1) / T(6), twelfth = T(1) / T(12), twentyfourth = T(1) / T(24);
  PACER_WINOGRAD_IVDEP
  for (int64_t c = 0; c < n; ++c) {
    const T a = g0[c], b = g1[c], e = g2[c];
    o0[c] = a / T(4);
    o1[c] = -(a + b + e) * sixth;
    o2[c] = -(a - b + e) * sixth;
    o3[c] = a * twentyfourth + b * twelfth + e * sixth;
    o4[c] = a * twentyfourth - b * twelfth + e * sixth;
    o5[c] = e;
  }
}

// A (4 -> 6): the adjoint of the output transform (output gradients into the transform domain).
template <class T>
void output_adjoint_rows(const T* const* in, T* const* out, int64_t n) {
  const T *y0 = in[0], *y1 = in[1], *y2 = in[2], *y3 = in[3];
  T *o0 = out[0], *o1 = out[1], *o2 = out[2], *o3 = out[3], *o4 = out[4], *o5 = out[5];
  PACER_WINOGRAD_IVDEP
  for (int64_t c = 0; c < n; ++c) {
    const T a = y0[c], b = y1[c], e = y2[c], f = y3[c];
    o0[c] = a;
    o1[c] = (a + e) + (b + f);
    o2[c] = (a + e) - (b + f);
    o3[c] = (a + T(4) * e) + (T(2) * b + T(8) * f);
    o4[c] = (a + T(4) * e) - (T(2) * b + T(8) * f);
    o5[c] = f;
  }
}

// G^T (6 -> 3): the adjoint of the filter transform (transform-domain gradients to taps).
template <class T>
void filter_adjoint_rows(const T* const* in, T* const* out, int64_t n) {
  const T *u0 = in[0], *u1 = in[1], *u2 = in[2], *u3 = in[3], *u4 = in[4], *u5 = in[5];
  T *o0 = out[0], *o1 = out[1], *o2 = out[2];
  const T sixth = T(1) / T(6), twelfth = T(1) / T(12), twentyfourth = T(1) / T(24);
  PACER_WINOGRAD_IVDEP
  for (int64_t c = 0; c < n; ++c) {
    const T s12 = u1[c] + u2[c], s34 = u3[c] + u4[c];
    o0[c] = u0[c] / T(4) - s12 * sixth + s34 * twentyfourth;
    o1[c] = (u2[c] - u1[c]) * sixth + (u3[c] - u4[c]) * twelfth;
    o2[c] = (s34 - s12) * sixth + u5[c];
  }
}

// A separable 2-D transform of an I x J grid of rows into an O x P grid: `down` (I -> O)
// along the first axis for each column, into tmp (O x J rows of n), then `across` (J -> P)
// along the second. src(i, j) and dst(o, p) give the rows.
template <int I, int J, int O, int P, class T, class Src, class Dst>
void transform_2d(Src src, Dst dst, T* tmp, int64_t n, void (*down)(const T* const*, T* const*, int64_t),
                  void (*across)(const T* const*, T* const*, int64_t)) {
  for (int j = 0; j < J; ++j) {
    const T* in[I];
    T* out[O];
    for (int i = 0; i < I; ++i) in[i] = src(i, j);
    for (int o = 0; o < O; ++o) out[o] = tmp + (o * J + j) * n;
    down(in, out, n);
  }
  for (int o = 0; o < O; ++o) {
    const T* in[J];
    T* out[P];
    for (int j = 0; j < J; ++j) in[j] = tmp + (o * J + j) * n;
    for (int p = 0; p < P; ++p) out[p] = dst(o, p);
    across(in, out, n);
  }
}

// One direction of a Winograd convolution: in [N, Cin, H, W] -> out [N, Cout, OH, OW].
struct Layout {
  int64_t N, Cin, H, W, Cout, OH, OW, ph, pw;
  int64_t tile_rows() const { return (OH + 3) / 4; }
  int64_t tile_cols() const { return (OW + 3) / 4; }
  int64_t slab_cols() const { return 4 * tile_cols() + 2; }
};

Layout forward_layout(const Problem& p) { return {p.N, p.C, p.H, p.W, p.K, p.OH, p.OW, p.ph, p.pw}; }

// Tile rows per block, counted across images (a block may end in one image and go on in the
// next) among `total` rows: V and M of a block within kBlockBytes, but at least kMinTiles
// tiles, since every block's GEMMs read all of U; and no more than a thread's share (all of
// it for filters above kSharedFilterBytes, up to kMaxSharedBlockBytes).
int64_t tile_rows_per_block(const Layout& L, size_t element_size, int64_t total) {
  const int64_t per_row = kPoints * L.tile_cols() * (L.Cin + L.Cout) * int64_t(element_size);
  const int64_t by_bytes = kBlockBytes / std::max<int64_t>(per_row, 1);
  const int64_t by_tiles = (kMinTiles + L.tile_cols() - 1) / L.tile_cols();
  const int64_t share = (total + num_threads() - 1) / std::max(1, num_threads());
  if (kPoints * L.Cin * L.Cout * int64_t(element_size) > kSharedFilterBytes)
    return std::clamp<int64_t>(std::max(by_tiles, kMaxSharedBlockBytes / std::max<int64_t>(per_row, 1)), 1,
                               std::max<int64_t>(share, 1));
  return std::clamp<int64_t>(std::max(by_bytes, by_tiles), 1, std::max<int64_t>(share, 1));
}

// Calls f(n, th0, th1, first) for the runs of tile rows [th0, th1) of one image n that make up
// the block of global tile rows [g0, g1) (global row g = n * tile_rows + th); `first` is the
// block's index of the run's first tile.
template <class F>
void for_each_run(const Layout& L, int64_t g0, int64_t g1, F f) {
  const int64_t TH = L.tile_rows();
  for (int64_t g = g0; g < g1;) {
    const int64_t n = g / TH, th0 = g % TH, th1 = std::min(TH, th0 + (g1 - g));
    f(n, th0, th1, (g - g0) * L.tile_cols());
    g += th1 - th0;
  }
}

// dst[j * dst_ld + i] = src[i * src_ld + j] for i < rows, j < cols: between channel-major
// rows (NCHW) and channel-minor slabs.
template <class T>
void transpose(const T* src, int64_t src_ld, T* dst, int64_t dst_ld, int64_t rows, int64_t cols) {
  int64_t i0 = 0;
#if defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) {
    // 8 x 8 blocks in registers: unpack pairs, shuffle quads, swap 128-bit halves.
    for (; i0 + 8 <= rows; i0 += 8) {
      int64_t j0 = 0;
      for (; j0 + 8 <= cols; j0 += 8) {
        __m256 r[8], t[8], u[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (i0 + i) * src_ld + j0);
        for (int i = 0; i < 4; ++i) {
          t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
          t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        for (int h = 0; h < 2; ++h) {  // rows 0-3 of the block, then rows 4-7
          const int b = 4 * h;
          u[b + 0] = _mm256_shuffle_ps(t[b + 0], t[b + 2], _MM_SHUFFLE(1, 0, 1, 0));
          u[b + 1] = _mm256_shuffle_ps(t[b + 0], t[b + 2], _MM_SHUFFLE(3, 2, 3, 2));
          u[b + 2] = _mm256_shuffle_ps(t[b + 1], t[b + 3], _MM_SHUFFLE(1, 0, 1, 0));
          u[b + 3] = _mm256_shuffle_ps(t[b + 1], t[b + 3], _MM_SHUFFLE(3, 2, 3, 2));
        }
        for (int j = 0; j < 4; ++j) {
          _mm256_storeu_ps(dst + (j0 + j) * dst_ld + i0, _mm256_permute2f128_ps(u[j], u[4 + j], 0x20));
          _mm256_storeu_ps(dst + (j0 + 4 + j) * dst_ld + i0, _mm256_permute2f128_ps(u[j], u[4 + j], 0x31));
        }
      }
      for (int64_t i = i0; i < i0 + 8; ++i)
        for (int64_t j = j0; j < cols; ++j) dst[j * dst_ld + i] = src[i * src_ld + j];
    }
  }
#endif
  for (int64_t i = i0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * dst_ld + i] = src[i * src_ld + j];
}

// slab[r][s][c] = t[n, c, h0 + r, col0 + s] for r < rows, s < cols (zero outside t's C x H x
// W): a block of an NCHW (or any-strided) image, channel-minor.
template <class T>
void load_slab(const Tensor& t, int64_t n, int64_t h0, int64_t rows, int64_t col0, int64_t cols, T* slab) {
  const int64_t C = t.size(1), H = t.size(2), W = t.size(3);
  const T* base = t.data_ptr<T>() + n * t.stride(0);
  const int64_t sC = t.stride(1), sH = t.stride(2), sW = t.stride(3);
  const int64_t w_lo = std::max<int64_t>(0, col0), w_hi = std::min<int64_t>(W, col0 + cols);
  for (int64_t r = 0; r < rows; ++r) {
    T* row = slab + r * cols * C;
    const int64_t h = h0 + r;
    if (h < 0 || h >= H || w_hi <= w_lo) {
      std::fill(row, row + cols * C, T(0));
      continue;
    }
    std::fill(row, row + (w_lo - col0) * C, T(0));
    std::fill(row + (w_hi - col0) * C, row + cols * C, T(0));
    const T* src = base + h * sH;
    T* dst = row + (w_lo - col0) * C;
    if (sW == 1) {
      transpose<T>(src + w_lo, sC, dst, C, C, w_hi - w_lo);
    } else if (sC == 1) {  // channels-last: whole pixels
      for (int64_t w = w_lo; w < w_hi; ++w) std::copy_n(src + w * sW, C, dst + (w - w_lo) * C);
    } else {
      for (int64_t w = w_lo; w < w_hi; ++w)
        for (int64_t c = 0; c < C; ++c) dst[(w - w_lo) * C + c] = src[w * sW + c * sC];
    }
  }
}

// out[n, k, oh, ow] = slab[oh - oh0][ow][k] (+ bias[k]) for oh in [oh0, oh1), ow < OW; the
// slab's rows are `cols` wide.
template <class T>
void store_slab(const T* slab, int64_t cols, int64_t n, int64_t oh0, int64_t oh1, const T* bias, Tensor& out) {
  const int64_t K = out.size(1), OW = out.size(3);
  T* base = out.data_ptr<T>() + n * out.stride(0);
  const int64_t sK = out.stride(1), sH = out.stride(2), sW = out.stride(3);
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const T* src = slab + (oh - oh0) * cols * K;
    T* dst = base + oh * sH;
    if (sW == 1) {
      transpose<T>(src, K, dst, sK, OW, K);  // [ow][k] -> [k][ow]
      if (bias)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t ow = 0; ow < OW; ++ow) dst[k * sK + ow] += bias[k];
    } else {
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t k = 0; k < K; ++k) dst[ow * sW + k * sK] = src[ow * K + k] + (bias ? bias[k] : T(0));
    }
  }
}

// U[p][k][c] from filters w [K, C, 3, 3] (contiguous): the transform of w[k][c], or, with
// `rotate`, of w[k][c] turned 180 degrees (the input gradient's filters, with k its input
// channel).
template <class T>
Tensor transform_filters(const Tensor& w, bool rotate) {
  const int64_t K = w.size(0), C = w.size(1);
  Tensor U = scratch_empty({kPoints * K * C}, w.dtype());
  const T* pw = w.data_ptr<T>();
  T* pu = U.data_ptr<T>();
  parallel_for(0, K, 8, [&](int64_t b, int64_t e) {
    std::vector<T> taps(size_t(9 * C)), tmp(size_t(18 * C));
    for (int64_t k = b; k < e; ++k) {
      for (int64_t c = 0; c < C; ++c)
        for (int64_t tap = 0; tap < 9; ++tap) taps[size_t(tap * C + c)] = pw[(k * C + c) * 9 + (rotate ? 8 - tap : tap)];
      transform_2d<3, 3, 6, 6, T>([&](int i, int j) { return taps.data() + (i * 3 + j) * C; },
                                  [&](int o, int p) { return pu + ((o * 6 + p) * K + k) * C; }, tmp.data(), C,
                                  filter_rows<T>, filter_rows<T>);
    }
  });
  return U;
}

// Per-thread scratch of a block: the input slab, V, M, the output slab and the transforms'
// temporaries.
template <class T>
struct Scratch {
  Tensor buffer;
  T *slab, *V, *M, *out, *tmp;
  // A block of `tile_rows` rows, whose runs in one image have at most tile_rows() of them.
  Scratch(const Layout& L, int64_t tile_rows, DType dtype) {
    const int64_t tiles = tile_rows * L.tile_cols(), width = std::max(L.Cin, L.Cout);
    const int64_t run = std::min(tile_rows, L.tile_rows());
    const int64_t sizes[] = {(4 * run + 2) * L.slab_cols() * L.Cin, kPoints * tiles * L.Cin, kPoints * tiles * L.Cout,
                             4 * run * 4 * L.tile_cols() * L.Cout, kPoints * width};
    int64_t total = 0;
    for (int64_t s : sizes) total += s;
    buffer = scratch_empty({total}, dtype);
    T* p = buffer.data_ptr<T>();
    T** slots[] = {&slab, &V, &M, &out, &tmp};
    for (int i = 0; i < 5; ++i) {
      *slots[i] = p;
      p += sizes[i];
    }
  }
};

// The input transform of a run of tile rows [th0, th1) of image n: loads its input slab
// (rows from 4 * th0 - ph, columns from -pw) and writes V[p][first + t][c] of its tiles t
// (`tiles` in the block).
template <class T>
void transform_inputs(const Tensor& in, const Layout& L, int64_t n, int64_t th0, int64_t th1, int64_t first,
                      int64_t tiles, Scratch<T>& s) {
  const int64_t TW = L.tile_cols(), cols = L.slab_cols(), C = L.Cin;
  load_slab<T>(in, n, 4 * th0 - L.ph, 4 * (th1 - th0) + 2, -L.pw, cols, s.slab);
  for (int64_t t = 0; t < (th1 - th0) * TW; ++t) {
    const int64_t r0 = 4 * (t / TW), s0 = 4 * (t % TW);
    transform_2d<6, 6, 6, 6, T>([&](int i, int j) { return s.slab + ((r0 + i) * cols + s0 + j) * C; },
                                [&](int o, int p) { return s.V + ((o * 6 + p) * tiles + first + t) * C; }, s.tmp, C,
                                input_rows<T>, input_rows<T>);
  }
}

// Global tile rows [g0, g1): out = conv(in, U) (+ bias, dense). U is [p][Cout][Cin] when
// `u_transposed`, else [p][Cin][Cout].
template <class T>
void conv_block(const Tensor& in, const T* U, bool u_transposed, const Layout& L, int64_t g0, int64_t g1,
                const T* bias, Scratch<T>& s, Tensor& out) {
  const int64_t TW = L.tile_cols(), tiles = (g1 - g0) * TW, Cin = L.Cin, Cout = L.Cout;
  for_each_run(L, g0, g1, [&](int64_t n, int64_t th0, int64_t th1, int64_t first) {
    transform_inputs<T>(in, L, n, th0, th1, first, tiles, s);
  });
  for (int64_t p = 0; p < kPoints; ++p)
    gemm_on_thread<T>(false, u_transposed, tiles, Cout, Cin, s.V + p * tiles * Cin, Cin, U + p * Cin * Cout,
                      u_transposed ? Cin : Cout, T(0), s.M + p * tiles * Cout, Cout);
  const int64_t out_cols = 4 * TW;
  for_each_run(L, g0, g1, [&](int64_t n, int64_t th0, int64_t th1, int64_t first) {
    for (int64_t t = 0; t < (th1 - th0) * TW; ++t) {
      const int64_t a0 = 4 * (t / TW), b0 = 4 * (t % TW);
      transform_2d<6, 6, 4, 4, T>([&](int i, int j) { return s.M + ((i * 6 + j) * tiles + first + t) * Cout; },
                                  [&](int o, int p) { return s.out + ((a0 + o) * out_cols + b0 + p) * Cout; }, s.tmp,
                                  Cout, output_rows<T>, output_rows<T>);
    }
    store_slab<T>(s.out, out_cols, n, 4 * th0, std::min(L.OH, 4 * th1), bias, out);
  });
}

// out = conv(in, U) over all images, blocks of tile rows split between threads, then
// after_images(0, N) when given. One round for the whole batch: rounds of a few images split
// into a few blocks, unevenly between threads (3 blocks of a 128-channel 28 x 28 pair of
// images on 2 threads), and the outputs stay in L3 for the hook anyway.
template <class T>
void convolve(const Tensor& in, const Tensor& U, bool u_transposed, const Layout& L, const Tensor& bias, Tensor& out,
              const std::function<void(int64_t, int64_t)>& after_images) {
  const int64_t TH = L.tile_rows();
  const Tensor dense_bias = bias.defined() ? materialize(bias) : Tensor();
  const T* pb = bias.defined() ? dense_bias.data_ptr<T>() : nullptr;
  const int64_t g_end = L.N * TH, rows = tile_rows_per_block(L, sizeof(T), g_end);
  parallel_for(0, (g_end + rows - 1) / rows, 1, [&](int64_t b, int64_t e) {
    Scratch<T> s(L, rows, in.dtype());
    for (int64_t block = b; block < e; ++block) {
      const int64_t g0 = block * rows;
      conv_block<T>(in, U.data_ptr<T>(), u_transposed, L, g0, std::min(g_end, g0 + rows), pb, s, out);
    }
  });
  if (after_images) after_images(0, L.N);
}

// The weight gradient's block of global tile rows [g0, g1) into s: V (x's tiles, as the
// forward's) and M (dy's 4x4 tiles, zero past the output's edges, through A: M[p][t][k]).
template <class T>
void weight_grad_block(const Tensor& dy, const Tensor& x, const Layout& L, int64_t g0, int64_t g1, Scratch<T>& s) {
  const int64_t TW = L.tile_cols(), out_cols = 4 * TW, K = L.Cout, tiles = (g1 - g0) * TW;
  for_each_run(L, g0, g1, [&](int64_t n, int64_t th0, int64_t th1, int64_t first) {
    transform_inputs<T>(x, L, n, th0, th1, first, tiles, s);
    load_slab<T>(dy, n, 4 * th0, 4 * (th1 - th0), 0, out_cols, s.out);
    for (int64_t t = 0; t < (th1 - th0) * TW; ++t) {
      const int64_t a0 = 4 * (t / TW), b0 = 4 * (t % TW);
      transform_2d<4, 4, 6, 6, T>([&](int i, int j) { return s.out + ((a0 + i) * out_cols + b0 + j) * K; },
                                  [&](int o, int q) { return s.M + ((o * 6 + q) * tiles + first + t) * K; }, s.tmp,
                                  K, output_adjoint_rows<T>, output_adjoint_rows<T>);
    }
  });
}

// dU[q] += M[q]^T V[q] over the 36 points q in [q0, q1) of a block of `tiles` tiles.
template <class T>
void add_block_products(const Scratch<T>& s, int64_t tiles, int64_t K, int64_t C, int64_t q0, int64_t q1, T* dU) {
  for (int64_t q = q0; q < q1; ++q)
    gemm_on_thread<T>(true, false, K, C, tiles, s.M + q * tiles * K, K, s.V + q * tiles * C, C, T(1), dU + q * K * C,
                      C);
}

// Up to this size dU is summed per thread (each thread's blocks with no waiting, the sums
// added in order after); above it, in rounds into one dU (below). Measured (batch 8, 2
// threads): 64 channels at 56 x 56 ran 1.5x slower in rounds (a round's two barriers and
// each thread reading the other's block, against GEMMs of 64 x 64); a 256-channel layer's
// per-thread copy would be 9.4 MiB of scratch.
constexpr int64_t kPerThreadSumBytes = int64_t(4) << 20;

template <class F>
void dispatch_f32_f64(DType dtype, F&& f) {
  if (dtype == DType::F32) return f.template operator()<float>();
  PACER_CHECK(dtype == DType::F64, "winograd conv2d: expected float32 or float64, got {}", dtype_name(dtype));
  f.template operator()<double>();
}

Mode mode_from_env() {
  const char* v = std::getenv("PACER_CONV_WINOGRAD");
  if (v == nullptr || *v == '\0') return Mode::Auto;
  const std::string s(v);
  if (s == "0") return Mode::Off;
  if (s == "1") return Mode::Auto;
  if (s == "2") return Mode::Always;
  PACER_FAIL("PACER_CONV_WINOGRAD: expected 0 (off), 1 (auto) or 2 (always), got '{}'", s);
}

std::atomic<Mode>& current_mode() {
  static std::atomic<Mode> m{mode_from_env()};
  return m;
}

}  // namespace

Mode mode() { return current_mode().load(); }
void set_mode(Mode m) { current_mode().store(m); }

Calls& calls() {
  static Calls c;
  return c;
}

bool use_winograd(const Problem& p, DType dtype) {
  const Mode m = mode();
  if (m == Mode::Off || (dtype != DType::F32 && dtype != DType::F64)) return false;
  // The input gradient pads dy by 2 - p, so larger paddings are left to im2col.
  if (p.ph > 2 || p.pw > 2 || p.N == 0 || p.OH <= 0 || p.OW <= 0 || p.C == 0 || p.K == 0) return false;
  if (p.OH != p.H + 2 * p.ph - 2 || p.OW != p.W + 2 * p.pw - 2) return false;  // stride 1, no extra output
  const int64_t filter_bytes = kPoints * p.C * p.K * int64_t(element_size(dtype));
  return m == Mode::Always || (p.C >= kMinChannels && p.K >= kMinChannels && filter_bytes <= kMaxFilterBytes);
}

void forward(const Tensor& x, const Tensor& w, const Tensor& bias, const Problem& p, Tensor& y,
             const std::function<void(int64_t, int64_t)>& after_images) {
  calls().forward.fetch_add(1);
  dispatch_f32_f64(x.dtype(), [&]<class T>() {
    const Tensor U = transform_filters<T>(materialize(w), false);  // [p][K][C]: output-major
    convolve<T>(x, U, true, forward_layout(p), bias, y, after_images);
  });
}

void input_grad(const Tensor& dy, const Tensor& w, const Problem& p, Tensor& dx) {
  calls().input_grad.fetch_add(1);
  dispatch_f32_f64(dx.dtype(), [&]<class T>() {
    const Tensor U = transform_filters<T>(materialize(w), true);  // [p][K][C]: dy's channels first
    const Layout L{p.N, p.K, p.OH, p.OW, p.C, p.H, p.W, 2 - p.ph, 2 - p.pw};
    convolve<T>(dy, U, false, L, Tensor(), dx, {});
  });
}

void weight_grad(const Tensor& dy, const Tensor& x, const Problem& p, Tensor& dw) {
  calls().weight_grad.fetch_add(1);
  dispatch_f32_f64(dw.dtype(), [&]<class T>() {
    const Layout L = forward_layout(p);
    const int64_t K = p.K, C = p.C, TW = L.tile_cols();
    const int64_t g_end = p.N * L.tile_rows(), rows = tile_rows_per_block(L, sizeof(T), g_end);
    const int64_t blocks = (g_end + rows - 1) / rows;
    auto tiles_of = [&](int64_t block) { return (std::min(g_end, (block + 1) * rows) - block * rows) * TW; };
    Tensor dU = scratch_empty({kPoints * K * C}, dw.dtype());
    std::memset(dU.data(), 0, dU.nbytes());
    if (int64_t(dU.nbytes()) <= kPerThreadSumBytes) {
      sum_chunks_in_order<T>(blocks, dU, [&](int64_t b, int64_t e, Tensor& acc) {
        Scratch<T> s(L, rows, dw.dtype());
        for (int64_t block = b; block < e; ++block) {
          weight_grad_block<T>(dy, x, L, block * rows, std::min(g_end, (block + 1) * rows), s);
          add_block_products<T>(s, tiles_of(block), K, C, 0, kPoints, acc.data_ptr<T>());
        }
      });
    } else {
      // Rounds of one block per thread: each thread transforms a block into scratch of its
      // own, then each adds all of the round's blocks, in order, into its share of dU's 36
      // points (GEMMs of the full K x C: a split of K made 64-channel ones 3x slower).
      const int64_t slots = std::min<int64_t>(blocks, num_threads());
      std::vector<Scratch<T>> scratch;
      scratch.reserve(size_t(slots));
      for (int64_t i = 0; i < slots; ++i) scratch.emplace_back(L, rows, dw.dtype());
      for (int64_t r0 = 0; r0 < blocks; r0 += slots) {
        const int64_t nb = std::min(slots, blocks - r0);
        parallel_for(0, nb, 1, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i)
            weight_grad_block<T>(dy, x, L, (r0 + i) * rows, std::min(g_end, (r0 + i + 1) * rows), scratch[size_t(i)]);
        });
        parallel_for(0, kPoints, 1, [&](int64_t q0, int64_t q1) {
          for (int64_t i = 0; i < nb; ++i)
            add_block_products<T>(scratch[size_t(i)], tiles_of(r0 + i), K, C, q0, q1, dU.data_ptr<T>());
        });
      }
    }
    const T* total = dU.data_ptr<T>();
    // dw[k][c] = G^T dU[k][c] G, through taps[tap][c] rows.
    T* pw = dw.data_ptr<T>();
    const int64_t sK = dw.stride(0), sC = dw.stride(1), sI = dw.stride(2), sJ = dw.stride(3);
    parallel_for(0, K, 8, [&](int64_t b, int64_t e) {
      std::vector<T> taps(size_t(9 * C)), tmp(size_t(18 * C));
      for (int64_t k = b; k < e; ++k) {
        transform_2d<6, 6, 3, 3, T>([&](int o, int q) { return total + ((o * 6 + q) * K + k) * C; },
                                    [&](int i, int j) { return taps.data() + (i * 3 + j) * C; }, tmp.data(), C,
                                    filter_adjoint_rows<T>, filter_adjoint_rows<T>);
        for (int64_t c = 0; c < C; ++c)
          for (int64_t i = 0; i < 3; ++i)
            for (int64_t j = 0; j < 3; ++j) pw[k * sK + c * sC + i * sI + j * sJ] = taps[size_t((i * 3 + j) * C + c)];
      }
    });
  });
}

}  // namespace pacer::ops::cpu::winograd
