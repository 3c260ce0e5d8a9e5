// Factories: ops with no tensor inputs. Random ones draw Philox streams keyed by the
// generator's (seed, offset), so CPU and CUDA produce the same numbers.
#include <cmath>

#include "ops/defs/common.h"

namespace pacer::ops {

namespace {

void infer_factory(OpCall& c) {
  const Shape& s = c.attrs.shape("size");
  for (int64_t v : s) PACER_CHECK(v >= 0, "expected non-negative sizes, got {}", s);
  c.output_meta = {{s, c.attrs.dtype("dtype"), Device(c.attrs.str("device"))}};
}

OpDef factory(const char* name, InferFn infer = infer_factory) {
  OpDef d;
  d.name = name;
  d.tags = kFactory;
  d.infer = infer;
  d.not_differentiable = true;
  return d;
}

Attrs factory_attrs(const Shape& sizes, const Options& o) {
  return Attrs{{"size", sizes}, {"dtype", o.dtype}, {"device", o.device.str()}};
}

Tensor finish(Tensor t, const Options& o) {
  if (o.requires_grad) t.set_requires_grad(true);
  return t;
}

Tensor random(const OpDef& op, const Shape& sizes, const Options& o, Generator* gen, Attrs extra) {
  auto [seed, offset] = (gen ? *gen : default_generator()).next();
  Attrs a = factory_attrs(sizes, o);
  a.set("seed", int64_t(seed)).set("offset", int64_t(offset));
  for (auto& [k, v] : extra.items()) a.set(k, v);
  return finish(call1(op, {}, a), o);
}

}  // namespace

PACER_OP(full) { return factory("full"); }
PACER_OP(arange) {
  return factory("arange", [](OpCall& c) {
    const double start = c.attrs.scalar("start").to_double(), end = c.attrs.scalar("end").to_double(),
                 step = c.attrs.scalar("step").to_double();
    PACER_CHECK(step != 0, "step must be non-zero");
    PACER_CHECK((end - start) / step >= 0, "the range [{}, {}) cannot be walked with step {}", start, end, step);
    const int64_t n = int64_t(std::ceil((end - start) / step));
    c.output_meta = {{{n}, c.attrs.dtype("dtype"), Device(c.attrs.str("device"))}};
  });
}
PACER_OP(linspace) {
  return factory("linspace", [](OpCall& c) {
    PACER_CHECK(c.attrs.i("steps") >= 0, "expected steps >= 0, got {}", c.attrs.i("steps"));
    c.output_meta = {{{c.attrs.i("steps")}, c.attrs.dtype("dtype"), Device(c.attrs.str("device"))}};
  });
}
PACER_OP(rand) {
  OpDef d = factory("rand");
  d.tags |= kRandom;
  return d;
}
PACER_OP(randn) {
  OpDef d = factory("randn");
  d.tags |= kRandom;
  return d;
}
PACER_OP(randint) {
  OpDef d = factory("randint", [](OpCall& c) {
    infer_factory(c);
    PACER_CHECK(c.attrs.i("low") < c.attrs.i("high"), "expected low < high, got low={} high={}", c.attrs.i("low"),
                c.attrs.i("high"));
  });
  d.tags |= kRandom;
  return d;
}

}  // namespace pacer::ops

namespace pacer {
using namespace ops;

Tensor full(const Shape& sizes, Scalar value, Options o) {
  Attrs a = factory_attrs(sizes, o);
  a.set("value", value);
  return finish(call1(op_full(), {}, a), o);
}
Tensor zeros(const Shape& sizes, Options o) { return full(sizes, 0, o); }
Tensor ones(const Shape& sizes, Options o) { return full(sizes, 1, o); }
Tensor zeros_like(const Tensor& t) { return zeros(t.sizes(), {.dtype = t.dtype(), .device = t.device()}); }
Tensor ones_like(const Tensor& t) { return ones(t.sizes(), {.dtype = t.dtype(), .device = t.device()}); }
Tensor full_like(const Tensor& t, Scalar v) { return full(t.sizes(), v, {.dtype = t.dtype(), .device = t.device()}); }

Tensor arange(Scalar start, Scalar end, Scalar step, std::optional<DType> dtype, Device device) {
  DType t = dtype ? *dtype
                  : (start.is_integral() && end.is_integral() && step.is_integral() ? DType::I64 : DType::F32);
  return call1(op_arange(), {},
               {{"start", start}, {"end", end}, {"step", step}, {"dtype", t}, {"device", device.str()}});
}
Tensor arange(Scalar end, std::optional<DType> dtype, Device device) { return arange(0, end, 1, dtype, device); }

Tensor linspace(double start, double end, int64_t steps, Options o) {
  Tensor t = call1(op_linspace(), {},
                   {{"start", start}, {"end", end}, {"steps", steps}, {"dtype", o.dtype}, {"device", o.device.str()}});
  return finish(t, o);
}

Tensor rand(const Shape& sizes, Options o, Generator* gen) {
  PACER_CHECK(is_floating(o.dtype), "rand: expected a floating dtype, got {}", o.dtype);
  return random(op_rand(), sizes, o, gen, {});
}
Tensor randn(const Shape& sizes, Options o, Generator* gen) {
  PACER_CHECK(is_floating(o.dtype), "randn: expected a floating dtype, got {}", o.dtype);
  return random(op_randn(), sizes, o, gen, {});
}
Tensor randint(int64_t low, int64_t high, const Shape& sizes, Options o, Generator* gen) {
  return random(op_randint(), sizes, o, gen, {{"low", low}, {"high", high}});
}

}  // namespace pacer
