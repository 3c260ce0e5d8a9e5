// The autograd layer (DESIGN §4): accumulation, graph retention, grad mode, detach, hooks,
// the version-counter check, the iterative engine and gradcheck. Gradients are compared
// with values worked out by hand, so a wrong rule or a missed accumulation fails.
#include <cmath>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <pacer/pacer.h>

#include "tests/test_util.h"

namespace pacer::test {

namespace {

Tensor leaf(std::vector<double> v) { return from_vector<double>(v, {}, {.dtype = f64, .requires_grad = true}); }
Tensor leaf_f32(std::vector<float> v) { return from_vector<float>(v, {}, {.dtype = f32, .requires_grad = true}); }

std::vector<double> grad_of(const Tensor& t) {
  REQUIRE(t.grad().defined());
  return t.grad().to_vector<double>();
}

}  // namespace

TEST_CASE("gradients accumulate across backward calls") {
  Tensor x = leaf({1, 2, 3});
  CHECK(x.is_leaf());
  CHECK_FALSE(x.grad().defined());
  sum(x * 3.0).backward();
  CHECK(grad_of(x) == std::vector<double>{3, 3, 3});
  sum(x * 3.0).backward();  // a fresh graph; .grad() adds up
  CHECK(grad_of(x) == std::vector<double>{6, 6, 6});
  x.set_grad(Tensor());
  sum(x * x).backward();
  CHECK(grad_of(x) == std::vector<double>{2, 4, 6});
}

TEST_CASE("a tensor used twice gets both contributions") {
  Tensor x = leaf({1, 2, 3});
  int hook_calls = 0;
  x.register_hook([&](const Tensor&) {
    ++hook_calls;
    return Tensor();  // observe only
  });
  sum(x * x).backward();
  CHECK(grad_of(x) == std::vector<double>{2, 4, 6});
  CHECK(hook_calls == 1);  // the leaf hook sees the summed gradient once

  // A diamond: y feeds z twice, through different paths. dz/dx = (2y + 1) * 2.
  Tensor a = leaf({1, -2});
  Tensor y = a * 2.0;
  sum(y * y + y).backward();
  CHECK(grad_of(a) == std::vector<double>{10, -14});
}

TEST_CASE("retain_graph: a second backward needs it") {
  Tensor x = leaf({0, 1});
  Tensor y = sum(exp(x));  // exp saves its output
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();  // allowed: the first call kept the saved tensors
  CHECK(grad_of(x)[0] == doctest::Approx(2.0));
  CHECK(grad_of(x)[1] == doctest::Approx(2 * std::exp(1.0)));
  const std::string msg = error_of([&] { y.backward(); });  // the second call freed them
  CAPTURE(msg);
  CHECK(msg.find("backward through the graph a second time") != std::string::npos);

  Tensor z = sum(exp(x));
  z.backward();
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("backward through the graph a second time"), Error);
}

TEST_CASE("NoGradGuard and GradModeGuard record nothing and restore the mode") {
  Tensor x = leaf({1, 2});
  CHECK(autograd::grad_enabled());
  Tensor y;
  {
    NoGradGuard g;
    CHECK_FALSE(autograd::grad_enabled());
    y = x * 2.0;
    {
      GradModeGuard on(true);
      CHECK(autograd::grad_enabled());
      CHECK((x * 2.0).grad_fn() != nullptr);
    }
    CHECK_FALSE(autograd::grad_enabled());
  }
  CHECK(autograd::grad_enabled());
  CHECK(y.grad_fn() == nullptr);
  CHECK_FALSE(y.requires_grad());
  CHECK(y.to_vector<double>() == std::vector<double>{2, 4});
  CHECK_THROWS_WITH_AS(sum(y).backward(), doctest::Contains("does not require grad"), Error);
  Tensor w = x * 2.0;
  CHECK(w.grad_fn() != nullptr);
  CHECK(w.grad_fn()->name() == "mulBackward");
  CHECK(w.requires_grad());
  CHECK_FALSE(w.is_leaf());
}

TEST_CASE("detach shares storage and has no history") {
  Tensor x = leaf({1, 2, 3});
  Tensor y = x * 2.0;
  for (const Tensor& src : {x, y}) {
    Tensor d = detach(src);
    CHECK(d.data() == src.data());
    CHECK(d.storage().get() == src.storage().get());
    CHECK_FALSE(d.requires_grad());
    CHECK(d.grad_fn() == nullptr);
    CHECK(d.is_leaf());
  }
  Tensor d = detach(x);
  const uint32_t v = x.version();
  add_(d, ones({3}, {.dtype = f64}));  // d needs no grad, so this is allowed and records nothing
  CHECK(x.to_vector<double>() == std::vector<double>{2, 3, 4});  // seen through x
  CHECK(x.version() == v + 1);  // views share the version counter
  CHECK_FALSE(d.requires_grad());
}

TEST_CASE("requires_grad rules and backward argument errors") {
  Tensor i = from_vector<int64_t>({1, 2});
  CHECK_THROWS_WITH_AS(i.set_requires_grad(true), doctest::Contains("floating"), Error);
  CHECK_FALSE(i.requires_grad());
  Tensor x = leaf({1, 2});
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.set_requires_grad(false), doctest::Contains("leaf"), Error);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("one-element"), Error);
  CHECK_THROWS_WITH_AS(y.backward(ones({3}, {.dtype = f64})), doctest::Contains("shape"), Error);
  y.backward(from_vector<double>({1, 10}));  // an explicit gradient for a non-scalar
  CHECK(grad_of(x) == std::vector<double>{2, 20});
  CHECK_THROWS_WITH_AS(ones({1}).backward(), doctest::Contains("does not require grad"), Error);
  // In-place on a leaf that requires grad is refused while recording.
  CHECK_THROWS_WITH_AS(add_(x, ones({2}, {.dtype = f64})), doctest::Contains("leaf tensor that requires grad"),
                       Error);
}

// Regression test (was a bug): ops::call (ops/dispatch.cpp) runs the kernel and bumps the version before record()
// makes its in-place checks, so a refused add_ on a leaf that requires grad (or on a view)
// throws but has already changed the data: x becomes [2, 3]. PyTorch checks first.
TEST_CASE("a refused in-place op leaves its input unchanged") {
  Tensor x = leaf({1, 2});
  const uint32_t v = x.version();
  CHECK_THROWS_AS(add_(x, ones({2}, {.dtype = f64})), Error);
  CHECK(x.to_vector<double>() == std::vector<double>{1, 2});
  CHECK(x.version() == v);
}

TEST_CASE("hooks: leaf hook, non-leaf hook, retain_grad") {
  Tensor x = leaf({1, 2});
  x.register_hook([](const Tensor& g) { return g * 2.0; });  // doubles what reaches .grad()
  sum(x * 3.0).backward();
  CHECK(grad_of(x) == std::vector<double>{6, 6});

  Tensor a = leaf({1, 2});
  Tensor y = a * 2.0;
  std::vector<double> seen;
  y.register_hook([&](const Tensor& g) {
    seen = g.to_vector<double>();
    return g * 10.0;  // replaces the gradient flowing on to a
  });
  sum(y * 3.0).backward();
  CHECK(seen == std::vector<double>{3, 3});
  CHECK(grad_of(a) == std::vector<double>{60, 60});
  CHECK_FALSE(y.grad().defined());  // a non-leaf keeps no grad unless asked

  Tensor b = leaf({1, 2, 3});
  Tensor z = b * 2.0;
  z.retain_grad();
  sum(z * z).backward();
  CHECK(grad_of(z) == std::vector<double>{4, 8, 12});  // 2z
  CHECK(grad_of(b) == std::vector<double>{8, 16, 24});
  CHECK_THROWS_AS(from_vector<double>({1}).retain_grad(), Error);
  CHECK_THROWS_AS(from_vector<double>({1}).register_hook([](const Tensor& g) { return g; }), Error);
}

TEST_CASE("version counter: in-place edits of saved tensors are caught at backward") {
  {
    Tensor x = leaf({0, 1, 2});
    Tensor y = exp(x);  // saves its output y
    Tensor alias = detach(y);
    const uint32_t v = y.version();
    {
      NoGradGuard g;
      add_(alias, ones({3}, {.dtype = f64}));
    }
    CHECK(y.version() == v + 1);
    CHECK_THROWS_WITH_AS(sum(y).backward(), doctest::Contains("modified by an in-place operation"), Error);
  }
  {
    Tensor x = leaf({1, 2});
    Tensor y = x * x;  // saves x
    {
      NoGradGuard g;
      mul_(x, full({2}, 2.0, {.dtype = f64}));
    }
    CHECK_THROWS_WITH_AS(sum(y).backward(), doctest::Contains("modified by an in-place operation"), Error);
  }
  {
    // An untouched graph still works, and so does an edit of a tensor nobody saved.
    Tensor x = leaf({1, 2});
    Tensor unrelated = zeros({2}, {.dtype = f64});
    Tensor y = exp(x);
    add_(unrelated, ones({2}, {.dtype = f64}));
    sum(y).backward();
    CHECK(grad_of(x)[1] == doctest::Approx(std::exp(2.0)));
  }
}

TEST_CASE("version counter: an in-place op bumps every input it writes, not only the first") {
  // amp_unscale_ writes found_inf and every gradient; amp_update_scale_ the scale, the growth
  // tracker and the skip count (not found_inf).
  Tensor found_inf = zeros({1}), inv_scale = full({1}, 0.5);
  Tensor g1 = ones({3}), g2 = ones({2, 2});
  const uint32_t vf = found_inf.version(), vi = inv_scale.version(), v1 = g1.version(), v2 = g2.version();
  amp_unscale_({g1, g2}, found_inf, inv_scale);
  CHECK(found_inf.version() == vf + 1);
  CHECK(inv_scale.version() == vi);
  CHECK(g1.version() == v1 + 1);
  CHECK(g2.version() == v2 + 1);
  CHECK(g1.to_vector<float>()[0] == 0.5f);
  Tensor scale = full({1}, 1024.0), growth = zeros({1}, {.dtype = DType::I64}), skipped = zeros({1}, {.dtype = DType::I64});
  const uint32_t vs = scale.version(), vg = growth.version(), vk = skipped.version(), vfi = found_inf.version();
  amp_update_scale_(scale, growth, skipped, found_inf, 2.0, 0.5, 2000, 1.0, 65536.0);
  CHECK(scale.version() == vs + 1);
  CHECK(growth.version() == vg + 1);
  CHECK(skipped.version() == vk + 1);
  CHECK(found_inf.version() == vfi);
  CHECK(growth.to_vector<int64_t>()[0] == 1);
}

TEST_CASE("the engine is iterative: a 100000-op chain backprops without stack overflow") {
  // m is exact in float32 and float64, so the expected gradient does not depend on how the
  // number is wrapped; the engine multiplies by m once per node, as this loop does.
  const double m = 1.0 + std::ldexp(1.0, -20);
  Tensor x0 = leaf({1.0});
  Tensor x = x0;
  for (int i = 0; i < 50000; ++i) x = x * m;
  for (int i = 0; i < 50000; ++i) x = x + 1.0;
  double want = 1.0;
  for (int i = 0; i < 50000; ++i) want *= m;
  x.backward();
  CHECK(grad_of(x0)[0] == doctest::Approx(want).epsilon(1e-12));
  CHECK(grad_of(x0)[0] > 1.04);  // (1 + 2^-20)^50000 = 1.0489...
  x = Tensor();  // dropping the 100000-node graph must not recurse that deep either
  CHECK(x0.grad().defined());
}

TEST_CASE("cast backward returns the gradient in the input's dtype") {
  Tensor x = leaf({1, 2, 3});
  Tensor y = cast(x, f32);
  CHECK(y.dtype() == f32);
  sum(y).backward();
  CHECK(x.grad().dtype() == f64);
  CHECK(grad_of(x) == std::vector<double>{1, 1, 1});

  Tensor h = leaf_f32({0.5f, 1.5f});
  sum(h.to(f16) * 4.0).backward();
  CHECK(h.grad().dtype() == f32);
  CHECK(grad_of(h) == std::vector<double>{4, 4});
}

TEST_CASE("create_graph gives a differentiable gradient (second derivative)") {
  Tensor x = leaf({3});
  sum(x * x * x).backward(Tensor(), /*retain_graph=*/true, /*create_graph=*/true);
  Tensor g = x.grad();  // 3x^2 = 27, with history
  CHECK(g.item<double>() == doctest::Approx(27));
  REQUIRE(g.requires_grad());
  x.set_grad(Tensor());
  g.backward();
  CHECK(grad_of(x)[0] == doctest::Approx(18));  // 6x
}

TEST_CASE("relu's gradient is differentiable in the incoming gradient (relu_backward twice)") {
  Tensor x = from_vector<double>({0.5, -1.0, 2.0}, {}, {.dtype = f64, .requires_grad = true});
  Tensor w = from_vector<double>({3.0, 4.0, 5.0}, {}, {.dtype = f64, .requires_grad = true});
  sum(relu(x) * w).backward(Tensor(), /*retain_graph=*/true, /*create_graph=*/true);
  Tensor g = x.grad();  // w where x > 0, with history through w
  CHECK(g.to_vector<double>() == std::vector<double>{3.0, 0.0, 5.0});
  REQUIRE(g.requires_grad());
  w.set_grad(Tensor());
  sum(g * from_vector<double>({7.0, 8.0, 9.0})).backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>{7.0, 0.0, 9.0});
  // As PyTorch: relu(NaN) is NaN and passes the gradient; at 0 the gradient is 0.
  Tensor z = from_vector<double>({std::nan(""), 0.0, -1.0, 2.0}, {}, {.dtype = f64, .requires_grad = true});
  sum(relu(z)).backward();
  CHECK(z.grad().to_vector<double>() == std::vector<double>{1.0, 0.0, 0.0, 1.0});
}

TEST_CASE("gradcheck passes correct gradients and fails a wrong one") {
  using autograd::gradcheck;
  Tensor x = from_vector<double>({0.3, -1.2, 2.0}, {}, {.dtype = f64, .requires_grad = true});
  Tensor w = from_vector<double>({1.5, 0.5, -0.7}, {}, {.dtype = f64, .requires_grad = true});
  auto ok = gradcheck([](const std::vector<Tensor>& in) { return exp(in[0]) * in[1] + in[0] * in[0]; }, {x, w});
  CAPTURE(ok.message);
  CHECK(ok.ok);

  // detach(x) * x: backward sees only one path (gradient x), the function's true derivative
  // is 2x, so gradcheck must report a mismatch with both numbers.
  auto bad = gradcheck([](const std::vector<Tensor>& in) { return detach(in[0]) * in[0]; }, {x});
  CAPTURE(bad.message);
  CHECK_FALSE(bad.ok);
  CHECK(bad.message.find("analytic") != std::string::npos);
  CHECK(bad.message.find("numeric") != std::string::npos);

  // A wrong custom backward, via a hook that corrupts the gradient, is caught as well.
  auto hooked = gradcheck(
      [](const std::vector<Tensor>& in) {
        Tensor y = in[0] * 2.0;
        if (y.requires_grad()) y.register_hook([](const Tensor& g) { return g * 1.01; });  // not under no-grad
        return y;
      },
      {x});
  CHECK_FALSE(hooked.ok);

  Tensor f = from_vector<float>({1}, {}, {.dtype = f32, .requires_grad = true});
  CHECK_THROWS_WITH_AS(gradcheck([](const std::vector<Tensor>& in) { return in[0]; }, {f}),
                       doctest::Contains("float64"), Error);
}

}  // namespace pacer::test

namespace pacer::test {

TEST_CASE("a leaf keeps a gradient in the leaf's own dense layout (channels-last stays channels-last)") {
  auto nhwc = [](const Tensor& t) { return permute(contiguous(permute(t, {0, 2, 3, 1})), {0, 3, 1, 2}); };
  // A channels-last leaf; the hook hands back a channels-last tensor holding 2 * g.
  Tensor x = nhwc(from_vector<double>(std::vector<double>(24, 1.0), {2, 3, 2, 2}, {.dtype = f64}));
  x.set_requires_grad();
  x.register_hook([&](const Tensor& g) { return nhwc(g * 2.0); });
  sum(x * 3.0).backward();
  CHECK(x.grad().strides() == Shape{12, 1, 6, 3});  // kept as handed over: no transposing copy
  CHECK(x.grad().to_vector<double>() == std::vector<double>(24, 6.0));
  sum(x * 1.0).backward();  // accumulation adds onto it
  CHECK(x.grad().to_vector<double>() == std::vector<double>(24, 8.0));
  // A contiguous leaf gets a contiguous gradient whatever layout arrives (the optimizers and
  // amp_unscale_ expect the parameter's layout).
  Tensor y = from_vector<double>(std::vector<double>(24, 1.0), {2, 3, 2, 2}, {.dtype = f64, .requires_grad = true});
  y.register_hook([&](const Tensor& g) { return nhwc(g * 2.0); });
  sum(y * 3.0).backward();
  CHECK(y.grad().is_contiguous());
  CHECK(y.grad().to_vector<double>() == std::vector<double>(24, 6.0));
}

}  // namespace pacer::test
