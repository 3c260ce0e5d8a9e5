// Op-table rows of convolution, pooling, batch norm and dropout, with naive f64 references.
#include <algorithm>
#include <cmath>

#include <doctest/doctest.h>

#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

struct ConvSpec {
  int64_t sh, sw, ph, pw, dh, dw, groups;
};

// y[n, k, oh, ow] = b[k] + sum_{c, i, j} x[n, g*Cg + c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] * w[k, c, i, j]
ref::Arr conv_ref(const ref::Arr& x, const ref::Arr& w, const ref::Arr* b, const ConvSpec& s) {
  const int64_t N = x.sizes[0], C = x.sizes[1], H = x.sizes[2], W = x.sizes[3];
  const int64_t K = w.sizes[0], Cg = w.sizes[1], kh = w.sizes[2], kw = w.sizes[3], Kg = K / s.groups;
  const int64_t OH = (H + 2 * s.ph - s.dh * (kh - 1) - 1) / s.sh + 1, OW = (W + 2 * s.pw - s.dw * (kw - 1) - 1) / s.sw + 1;
  ref::Arr y{{N, K, OH, OW}, std::vector<double>(size_t(N * K * OH * OW), 0.0)};
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = b ? b->v[size_t(k)] : 0.0;
          const int64_t g = k / Kg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t h = oh * s.sh - s.ph + i * s.dh, ww = ow * s.sw - s.pw + j * s.dw;
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                acc += x.v[size_t(((n * C + g * Cg + c) * H + h) * W + ww)] * w.v[size_t(((k * Cg + c) * kh + i) * kw + j)];
              }
          y.v[size_t(((n * K + k) * OH + oh) * OW + ow)] = acc;
        }
  return y;
}

// Pooling reference: `reduce` over each window's values (padding excluded; avg divides by kh*kw).
ref::Arr pool_ref(const ref::Arr& x, int64_t kh, int64_t kw, int64_t s, int64_t p, bool is_max) {
  const int64_t N = x.sizes[0], C = x.sizes[1], H = x.sizes[2], W = x.sizes[3];
  const int64_t OH = (H + 2 * p - kh) / s + 1, OW = (W + 2 * p - kw) / s + 1;
  ref::Arr y{{N, C, OH, OW}, {}};
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double acc = is_max ? -INFINITY : 0.0;
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j) {
            const int64_t h = oh * s - p + i, w = ow * s - p + j;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const double v = x.v[size_t((nc * H + h) * W + w)];
            acc = is_max ? std::max(acc, v) : acc + v;
          }
        y.v.push_back(is_max ? acc : acc / double(kh * kw));
      }
  return y;
}

OpCase conv_row(const std::string& name, Shape xs, Shape ws, bool bias, ConvSpec s, bool channels_last = false) {
  OpCase c;
  c.name = name;
  c.covers = {"conv2d", "conv2d_backward_input", "conv2d_backward_weight"};
  c.inputs = [=] {
    std::vector<Tensor> in = {uniform(xs, -1, 1, 81), uniform(ws, -1, 1, 82)};
    if (channels_last) in[0] = permute(contiguous(permute(in[0], {0, 2, 3, 1})), {0, 3, 1, 2});  // NHWC strides
    if (bias) in.push_back(uniform({ws[0]}, -1, 1, 83));
    return in;
  };
  c.run = [=](const std::vector<Tensor>& in) {
    return conv2d(in[0], in[1], bias ? in[2] : Tensor(), {s.sh, s.sw}, {s.ph, s.pw}, {s.dh, s.dw}, s.groups);
  };
  c.reference = [=](const std::vector<ref::Arr>& in) { return conv_ref(in[0], in[1], bias ? &in[2] : nullptr, s); };
  c.tol_f16 = 2e-2;
  c.tol_bf16 = 6e-2;
  c.errors = {{[] { conv2d(ones({1, 3, 5, 5}), ones({4, 2, 3, 3})); }, "expects 2 input channels, got 3"},
              {[] { conv2d(ones({1, 4, 5, 5}), ones({4, 2, 3, 3}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 3); },
               "groups=3 must divide in_channels=4"},
              {[] { conv2d(ones({1, 2, 2, 2}), ones({4, 2, 3, 3})); }, "is smaller than the dilated kernel"},
              {[] { conv2d(ones({2, 5, 5}), ones({4, 2, 3, 3})); }, "expected a 4-d input [N, C, H, W]"},
              {[] { conv2d(ones({1, 2, 5, 5}), ones({4, 2, 3, 3}), ones({3})); }, "expected a bias of shape [4]"}};
  return c;
}

}  // namespace

std::vector<OpCase> conv_rows() {
  std::vector<OpCase> rows;
  rows.push_back(conv_row("conv2d", {2, 3, 6, 5}, {4, 3, 3, 3}, true, {1, 1, 1, 1, 1, 1, 1}));
  rows.push_back(conv_row("conv2d_stride_groups", {1, 4, 7, 7}, {6, 2, 3, 2}, false, {2, 1, 0, 1, 1, 1, 2}));
  rows.push_back(conv_row("conv2d_dilation_channels_last", {2, 2, 7, 6}, {3, 2, 2, 3}, true, {1, 2, 2, 1, 2, 1, 1}, true));
  // From 14 x 14 output pixels on, the CPU goes image by image with the GEMM in place, and a
  // 1x1 stride-1 convolution reads the image as its column matrix.
  rows.push_back(conv_row("conv2d_1x1_per_image", {2, 4, 28, 28}, {6, 2, 1, 1}, false, {1, 1, 0, 0, 1, 1, 2}));
  rows.push_back(conv_row("conv2d_3x3_per_image_bias", {2, 2, 29, 30}, {3, 2, 3, 3}, true, {1, 1, 1, 1, 1, 1, 1}));
  rows.push_back(conv_row("conv2d_1x1_per_image_channels_last", {1, 3, 28, 29}, {2, 3, 1, 1}, true, {1, 1, 0, 0, 1, 1, 1}, true));
  {
    // A 1x1 transposed convolution with dilation 2 and output_padding 1 grows 28x28 to 29x29:
    // not the "columns are the input" case, though kernel, stride and padding say so.
    OpCase c;
    c.name = "conv_transpose2d_1x1_output_padding_per_image";
    c.covers = {"conv_transpose2d", "conv2d", "conv2d_backward_weight"};
    c.inputs = [] {
      return std::vector<Tensor>{uniform({1, 2, 28, 28}, -1, 1, 87), uniform({2, 3, 1, 1}, -1, 1, 88),
                                 uniform({3}, -1, 1, 89)};
    };
    c.run = [](const std::vector<Tensor>& in) {
      return conv_transpose2d(in[0], in[1], in[2], {1, 1}, {0, 0}, {1, 1}, {2, 2}, 1);
    };
    c.reference = [](const std::vector<ref::Arr>& in) {
      const ref::Arr &x = in[0], &w = in[1], &b = in[2];
      ref::Arr y{{1, 3, 29, 29}, std::vector<double>(3 * 29 * 29, 0.0)};
      for (int64_t co = 0; co < 3; ++co)
        for (int64_t h = 0; h < 29; ++h)
          for (int64_t ww = 0; ww < 29; ++ww) {
            double acc = b.v[size_t(co)];
            if (h < 28 && ww < 28)
              for (int64_t ci = 0; ci < 2; ++ci) acc += x.v[size_t((ci * 28 + h) * 28 + ww)] * w.v[size_t(ci * 3 + co)];
            y.v[size_t((co * 29 + h) * 29 + ww)] = acc;
          }
      return y;
    };
    c.tol_f16 = 2e-2;
    c.tol_bf16 = 6e-2;
    c.errors = {{[] { conv_transpose2d(ones({1, 2, 4, 4}), ones({2, 3, 1, 1}), Tensor(), {1, 1}, {0, 0}, {2, 2}, {2, 2}); },
                 "must be smaller than stride"}};
    rows.push_back(c);
  }
  for (bool with_groups : {false, true}) {
    // x [2, 4, 3, 4]; weight [4, Cout/g, 3, 2]; stride (2, 1), padding (1, 0), output_padding (1, opw), dilation
    // (1, 2). opw = 1 (no groups) is output padding >= stride, allowed below the dilation: the
    // input gradient must drop the surplus column.
    OpCase c;
    const int64_t opw = with_groups ? 0 : 1;
    c.name = with_groups ? "conv_transpose2d_groups" : "conv_transpose2d";
    c.covers = {"conv_transpose2d", "conv2d", "conv2d_backward_weight"};
    const int64_t groups = with_groups ? 2 : 1, cout_g = with_groups ? 2 : 3;
    c.inputs = [=] {
      return std::vector<Tensor>{uniform({2, 4, 3, 4}, -1, 1, 84), uniform({4, cout_g, 3, 2}, -1, 1, 85),
                                 uniform({cout_g * groups}, -1, 1, 86)};
    };
    c.run = [=](const std::vector<Tensor>& in) {
      return conv_transpose2d(in[0], in[1], in[2], {2, 1}, {1, 0}, {1, opw}, {1, 2}, groups);
    };
    c.reference = [=](const std::vector<ref::Arr>& in) {
      const ref::Arr &x = in[0], &w = in[1], &b = in[2];
      const int64_t N = 2, Cin = 4, H = 3, W = 4, kh = 3, kw = 2, Cout = cout_g * groups, Cin_g = Cin / groups;
      const int64_t OH = (H - 1) * 2 - 2 + (kh - 1) + 1 + 1, OW = (W - 1) * 1 - 0 + 2 * (kw - 1) + opw + 1;
      ref::Arr y{{N, Cout, OH, OW}, std::vector<double>(size_t(N * Cout * OH * OW), 0.0)};
      for (int64_t n = 0; n < N; ++n)
        for (int64_t co = 0; co < Cout; ++co)
          for (int64_t p = 0; p < OH * OW; ++p) y.v[size_t((n * Cout + co) * OH * OW + p)] = b.v[size_t(co)];
      for (int64_t n = 0; n < N; ++n)
        for (int64_t ci = 0; ci < Cin; ++ci)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t ww = 0; ww < W; ++ww)
              for (int64_t oc = 0; oc < cout_g; ++oc)
                for (int64_t i = 0; i < kh; ++i)
                  for (int64_t j = 0; j < kw; ++j) {
                    const int64_t oh = h * 2 - 1 + i, ow = ww * 1 - 0 + j * 2;
                    if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                    const int64_t co = (ci / Cin_g) * cout_g + oc;
                    y.v[size_t(((n * Cout + co) * OH + oh) * OW + ow)] +=
                        x.v[size_t(((n * Cin + ci) * H + h) * W + ww)] * w.v[size_t(((ci * cout_g + oc) * kh + i) * kw + j)];
                  }
      return y;
    };
    c.tol_f16 = 2e-2;
    c.tol_bf16 = 6e-2;
    c.errors = {{[] { conv_transpose2d(ones({1, 3, 4, 4}), ones({4, 2, 3, 3})); }, "expects 4 input channels, got 3"},
                {[] { conv_transpose2d(ones({1, 4, 4, 4}), ones({4, 2, 3, 3}), Tensor(), {2, 2}, {0, 0}, {2, 0}); },
                 "output_padding [2, 0] must be smaller than stride"},
                {[] { conv_transpose2d(ones({1, 4, 4, 4}), ones({4, 2, 3, 3}), ones({3})); }, "expected a bias of shape [2]"}};
    rows.push_back(c);
  }
  for (bool is_max : {true, false}) {
    OpCase c;
    c.name = is_max ? "max_pool2d" : "avg_pool2d";
    c.covers = is_max ? std::vector<std::string>{"max_pool2d", "scatter_add"}
                      : std::vector<std::string>{"avg_pool2d", "avg_pool2d_backward"};
    c.inputs = [] { return std::vector<Tensor>{uniform({2, 3, 7, 6}, -2, 2, 91)}; };
    c.run = [is_max](const std::vector<Tensor>& in) {
      return is_max ? max_pool2d(in[0], {3, 2}, {2, 2}, {1, 1}) : avg_pool2d(in[0], {3, 2}, {2, 2}, {1, 1});
    };
    c.reference = [is_max](const std::vector<ref::Arr>& in) { return pool_ref(in[0], 3, 2, 2, 1, is_max); };
    c.errors = {{[] { max_pool2d(ones({1, 1, 4, 4}), {2, 2}, {0, 2}); }, "expected positive kernel, stride"},
                {[] { avg_pool2d(ones({1, 1, 4, 4}), {2, 2}, {2, 2}, {2, 0}); }, "at most half the kernel"},
                {[] { max_pool2d(ones({4, 4}), {2, 2}); }, "expected a 4-d input"}};
    rows.push_back(c);
  }
  {
    OpCase c;
    c.name = "adaptive_avg_pool2d";
    c.covers = {"avg_pool2d", "cat"};
    c.inputs = [] { return std::vector<Tensor>{uniform({2, 2, 5, 7}, -2, 2, 92)}; };
    c.run = [](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], {3, 2}); };
    c.reference = [](const std::vector<ref::Arr>& in) {
      const ref::Arr& x = in[0];
      ref::Arr y{{2, 2, 3, 2}, {}};
      for (int64_t nc = 0; nc < 4; ++nc)
        for (int64_t i = 0; i < 3; ++i)
          for (int64_t j = 0; j < 2; ++j) {
            const int64_t h0 = i * 5 / 3, h1 = ((i + 1) * 5 + 2) / 3, w0 = j * 7 / 2, w1 = ((j + 1) * 7 + 1) / 2;
            double s = 0;
            for (int64_t h = h0; h < h1; ++h)
              for (int64_t w = w0; w < w1; ++w) s += x.v[size_t((nc * 5 + h) * 7 + w)];
            y.v.push_back(s / double((h1 - h0) * (w1 - w0)));
          }
      return y;
    };
    c.errors = {{[] { adaptive_avg_pool2d(ones({1, 1, 4, 4}), {0, 2}); }, "expected a positive [oh, ow] output size"}};
    rows.push_back(c);
  }
  for (bool training : {true, false}) {
    OpCase c;
    c.name = training ? "batch_norm_train" : "batch_norm_eval";
    c.covers = training ? std::vector<std::string>{"batch_norm_train", "batch_norm_train_backward"}
                        : std::vector<std::string>{"sum", "rsqrt"};
    c.inputs = [] {
      return std::vector<Tensor>{uniform({4, 3, 2, 3}, -2, 2, 93), uniform({3}, 0.5, 1.5, 94), uniform({3}, -1, 1, 95)};
    };
    c.run = [training](const std::vector<Tensor>& in) {
      Tensor rm = from_vector<double>({0.1, -0.2, 0.3}, {3}, {.dtype = in[0].dtype()}).to(in[0].device());
      Tensor rv = from_vector<double>({1.5, 0.5, 2.0}, {3}, {.dtype = in[0].dtype()}).to(in[0].device());
      return batch_norm(in[0], in[1], in[2], rm, rv, training, 0.1, 1e-5);
    };
    c.reference = [training](const std::vector<ref::Arr>& in) {
      const ref::Arr &x = in[0], &w = in[1], &b = in[2];
      const double rm[] = {0.1, -0.2, 0.3}, rv[] = {1.5, 0.5, 2.0};
      ref::Arr y = x;
      for (int64_t ch = 0; ch < 3; ++ch) {
        double m = 0, v = 0;
        std::vector<size_t> at;
        for (int64_t n = 0; n < 4; ++n)
          for (int64_t k = 0; k < 6; ++k) at.push_back(size_t((n * 3 + ch) * 6 + k));
        for (size_t i : at) m += x.v[i];
        m /= double(at.size());
        for (size_t i : at) v += (x.v[i] - m) * (x.v[i] - m);
        v /= double(at.size());
        if (!training) m = rm[ch], v = rv[ch];
        for (size_t i : at) y.v[i] = (x.v[i] - m) / std::sqrt(v + 1e-5) * w.v[size_t(ch)] + b.v[size_t(ch)];
      }
      return y;
    };
    c.tol_f16 = 3e-2;
    c.tol_bf16 = 1e-1;
    c.errors = {{[] { batch_norm(ones({2, 3}), ones({4}), Tensor(), Tensor(), Tensor(), true); }, "expected weight of shape [3]"},
                {[] { batch_norm(ones({1, 3}), Tensor(), Tensor(), Tensor(), Tensor(), true); },
                 "more than one value per channel"},
                {[] { batch_norm(ones({2, 3}), Tensor(), Tensor(), Tensor(), Tensor(), false); },
                 "evaluation needs running_mean and running_var"}};
    rows.push_back(c);
  }
  {
    OpCase c;
    c.name = "dropout";
    c.covers = {"rand", "ge"};
    c.errors = {{[] { dropout(ones({2}), 1.5, true); }, "expected a probability in [0, 1], got 1.5"}};
    c.custom = [] {
      Tensor x = ones({20000}, {.dtype = DType::F64});
      Generator g1(5), g2(5);
      Tensor a = dropout(x, 0.3, true, &g1), b = dropout(x, 0.3, true, &g2);
      CHECK(a.to_vector<double>() == b.to_vector<double>());  // same seed: same mask
      std::vector<double> v = a.to_vector<double>();
      const double kept = double(std::count_if(v.begin(), v.end(), [](double e) { return e != 0; })) / double(v.size());
      CHECK(std::fabs(kept - 0.7) < 0.02);
      for (double e : v) CHECK((e == 0 || std::fabs(e - 1 / 0.7) < 1e-12));
      CHECK(dropout(x, 0.3, false).is_same(x));  // evaluation: identity
    };
    rows.push_back(c);
  }
  return rows;
}

}  // namespace pacer::test
