// Op-table rows of the loss-scaling primitives (ops/api_amp.h). The run functions build
// their f32 flags on the device of the sample inputs, so the CUDA parity suite runs them
// on the GPU too.
#include <cmath>
#include <limits>

#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

Tensor flag(const Tensor& like, double v) { return full({1}, v, {.dtype = DType::F32, .device = like.device()}); }

OpCase unscale_row(bool with_inf) {
  OpCase c;
  c.name = with_inf ? "amp_unscale_inf" : "amp_unscale_";
  c.covers = {"amp_unscale_"};
  c.inputs = [with_inf] {
    Tensor g2 = uniform({5}, -4, 4, 122);
    if (with_inf) {
      std::vector<double> v = g2.to_vector<double>();
      v[1] = std::numeric_limits<double>::infinity();
      v[3] = std::nan("");
      g2 = from_vector(v, {5});
    }
    return std::vector<Tensor>{uniform({3, 4}, -4, 4, 121), g2};
  };
  c.run = [](const std::vector<Tensor>& in) {
    Tensor g1 = clone(in[0]), g2 = clone(in[1]);
    Tensor found = flag(g1, 0.0);
    amp_unscale_({g1, g2}, found, flag(g1, 0.25));
    return cat({cast(found, g1.dtype()), reshape(g1, {-1}), reshape(g2, {-1})}, 0);
  };
  c.reference = [](const std::vector<ref::Arr>& in) {
    ref::Arr out{{1 + 12 + 5}, {0.0}};
    for (const ref::Arr& a : in)
      for (double v : a.v) {
        if (!std::isfinite(v)) out.v[0] = 1.0;
        out.v.push_back(v * 0.25);
      }
    return out;
  };
  c.grad = false;
  c.errors = {{[] {
                 Tensor f = zeros({1}, {.dtype = DType::F64});
                 amp_unscale_({ones({2})}, f, ones({1}));
               },
               "expected found_inf as a one-element float32 tensor, got float64 [1]"},
              {[] {
                 Tensor f = zeros({1});
                 amp_unscale_({ones({2}, {.dtype = DType::I64})}, f, ones({1}));
               },
               "gradient 0: expected a floating tensor, got int64"},
              {[] {
                 Tensor f = zeros({1});
                 amp_unscale_({transpose(ones({2, 3}), 0, 1)}, f, ones({1}));
               },
               "gradient 0: expected a dense (contiguous or channels-last) tensor"}};
  return c;
}

// A hand-computed run of the dynamic scale: interval 2, growth 2, backoff 0.5, bounds
// [1, 64], flags 0 0 1 0 0 0 from scale 8, then growth capped at 64 from 48.
OpCase update_row() {
  OpCase c;
  c.name = "amp_update_scale_";
  c.covers = {"amp_update_scale_"};
  c.inputs = [] { return std::vector<Tensor>{uniform({1}, 0, 1, 123)}; };
  c.run = [](const std::vector<Tensor>& in) {
    const Options i64{.dtype = DType::I64, .device = in[0].device()};
    Tensor scale = flag(in[0], 8.0), tracker = zeros({1}, i64), skipped = zeros({1}, i64);
    for (double f : {0.0, 0.0, 1.0, 0.0, 0.0, 0.0})
      amp_update_scale_(scale, tracker, skipped, flag(in[0], f), 2.0, 0.5, 2, 1.0, 64.0);
    Tensor capped = flag(in[0], 48.0), t2 = zeros({1}, i64), s2 = zeros({1}, i64);
    amp_update_scale_(capped, t2, s2, flag(in[0], 0.0), 2.0, 0.5, 1, 1.0, 64.0);
    return cat({cast(scale, DType::F64), cast(tracker, DType::F64), cast(skipped, DType::F64), cast(capped, DType::F64)},
               0);
  };
  c.reference = [](const std::vector<ref::Arr>&) { return ref::Arr{{4}, {16.0, 1.0, 1.0, 64.0}}; };
  c.grad = false;
  c.half = false;
  c.errors = {{[] {
                 Tensor s = ones({1}), t = zeros({1}, {.dtype = DType::I32}), k = zeros({1}, {.dtype = DType::I64});
                 amp_update_scale_(s, t, k, zeros({1}), 2.0, 0.5, 2, 1.0, 64.0);
               },
               "expected growth_tracker as a one-element int64 tensor, got int32 [1]"},
              {[] {
                 Tensor s = ones({1}), t = zeros({1}, {.dtype = DType::I64}), k = zeros({1}, {.dtype = DType::I64});
                 amp_update_scale_(s, t, k, zeros({1}), 0.5, 0.5, 2, 1.0, 64.0);
               },
               "expected growth >= 1 and 0 < backoff <= 1, got growth 0.5"}};
  return c;
}

}  // namespace

std::vector<OpCase> amp_rows() { return {unscale_row(false), unscale_row(true), update_row()}; }

}  // namespace pacer::test
