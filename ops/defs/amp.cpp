// Loss-scaling primitives (DESIGN §6): the fused non-finite check + unscale over a list of
// gradients, and the dynamic scale update. Both are in-place on their first input, not
// differentiable, and keep all state on the device.
#include "ops/api_amp.h"
#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

void check_flag(const Tensor& t, const char* what, DType dtype) {
  PACER_CHECK(t.defined() && t.numel() == 1 && t.dtype() == dtype, "expected {} as a one-element {} tensor, got {}",
              what, dtype_name(dtype), t.defined() ? fmt::format("{} {}", dtype_name(t.dtype()), t.sizes()) : "none");
}

}  // namespace

// Inputs: found_inf, inv_scale, then the gradients.
PACER_OP(amp_unscale_) {
  OpDef d;
  d.name = "amp_unscale_";
  d.tags = kInplace;
  d.writes_from = 2;  // found_inf, and the gradients (unscaled in place)
  d.not_differentiable = true;
  d.infer = [](OpCall& c) {
    check_flag(c.in(0), "found_inf", DType::F32);
    check_flag(c.in(1), "inv_scale", DType::F32);
    for (size_t i = 2; i < c.inputs.size(); ++i) {
      const Tensor& g = c.in(i);
      PACER_CHECK(g.defined() && is_floating(g.dtype()), "gradient {}: expected a floating tensor, got {}", i - 2,
                  g.defined() ? dtype_name(g.dtype()) : "none");
      PACER_CHECK(g.device() == c.device, "gradient {} is on {}, found_inf on {}: expected one device", i - 2,
                  g.device(), c.device);
      PACER_CHECK(g.is_contiguous() || is_channels_last(g),
                  "gradient {}: expected a dense (contiguous or channels-last) tensor, got strides {}", i - 2,
                  g.strides());
    }
    PACER_CHECK(c.in(1).device() == c.device, "inv_scale is on {}, found_inf on {}", c.in(1).device(), c.device);
    c.output_meta = {{c.in(0).sizes(), DType::F32, c.device}};
  };
  return d;
}

// Inputs: scale, growth_tracker, skipped, found_inf.
PACER_OP(amp_update_scale_) {
  OpDef d;
  d.name = "amp_update_scale_";
  d.tags = kInplace;
  d.writes = 0b111;  // scale, growth_tracker, skipped
  d.not_differentiable = true;
  d.infer = [](OpCall& c) {
    PACER_CHECK(c.inputs.size() == 4, "expected (scale, growth_tracker, skipped, found_inf), got {} inputs",
                c.inputs.size());
    check_flag(c.in(0), "scale", DType::F32);
    check_flag(c.in(1), "growth_tracker", DType::I64);
    check_flag(c.in(2), "skipped", DType::I64);
    check_flag(c.in(3), "found_inf", DType::F32);
    for (size_t i = 1; i < 4; ++i)
      PACER_CHECK(c.in(i).device() == c.device, "input {} is on {}, scale on {}: expected one device", i,
                  c.in(i).device(), c.device);
    PACER_CHECK(c.attrs.f("growth") >= 1 && c.attrs.f("backoff") > 0 && c.attrs.f("backoff") <= 1,
                "expected growth >= 1 and 0 < backoff <= 1, got growth {} and backoff {}", c.attrs.f("growth"),
                c.attrs.f("backoff"));
    PACER_CHECK(c.attrs.i("interval") >= 1, "expected a growth interval >= 1, got {}", c.attrs.i("interval"));
    c.output_meta = {{c.in(0).sizes(), DType::F32, c.device}};
  };
  return d;
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

void amp_unscale_(const std::vector<Tensor>& grads, Tensor& found_inf, const Tensor& inv_scale) {
  std::vector<Tensor> in = {found_inf, inv_scale};
  in.insert(in.end(), grads.begin(), grads.end());
  call(op_amp_unscale_(), std::move(in));
}

void amp_update_scale_(Tensor& scale, Tensor& growth_tracker, Tensor& skipped, const Tensor& found_inf, double growth,
                       double backoff, int64_t interval, double min_scale, double max_scale) {
  call(op_amp_update_scale_(), {scale, growth_tracker, skipped, found_inf},
       {{"growth", growth}, {"backoff", backoff}, {"interval", interval}, {"min_scale", min_scale},
        {"max_scale", max_scale}});
}

}  // namespace pacer
