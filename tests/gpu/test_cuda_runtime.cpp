// The CUDA runtime of core: devices, streams and events, the caching allocator's
// accounting and reuse, pinned memory, and copies between host and device.
#include <doctest/doctest.h>

#include <memory>
#include <utility>

#include "core/cuda/caching_allocator.h"
#include "core/cuda/graph.h"
#include "core/cuda/handles.h"
#include "core/cuda/pinned.h"
#include "core/cuda/runtime.h"
#include "core/cuda/stream.h"
#include "ops/api.h"
#include "ops/shape_utils.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {
const Device kGpu{DeviceType::CUDA, 0};

// Same shape and values (compared as doubles, on the host).
bool same(const Tensor& a, const Tensor& b) {
  return a.sizes() == b.sizes() && cast(a.to(kCPU), DType::F64).to_vector<double>() ==
                                       cast(b.to(kCPU), DType::F64).to_vector<double>();
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("cuda runtime: device properties and selection") {
  REQUIRE(cuda::device_count() >= 1);
  const auto p = cuda::device_properties(0);
  MESSAGE("cuda:0 is " << p.name << ", sm_" << p.major << p.minor << ", " << p.multiprocessors << " SMs");
  CHECK(p.major >= 8);  // the build targets sm_80 and sm_90
  CHECK(p.total_memory > 0);
  CHECK(message_of([] { cuda::set_device(cuda::device_count()); }).find("CUDA device(s) are visible") !=
        std::string::npos);
}

TEST_CASE("cuda runtime: streams order work and events time it") {
  cuda::Stream s = cuda::Stream::create(0);
  cuda::StreamGuard guard(s);
  CHECK(cuda::current_stream(0) == s);
  Tensor x = ones({1 << 20}, {.device = kGpu});
  cuda::Event start(true), stop(true);
  start.record();
  Tensor y = x * 2.0f + 1.0f;
  stop.record();
  stop.synchronize();
  CHECK(stop.query());
  CHECK(stop.elapsed_ms(start) >= 0.0f);
  CHECK(sum(y).to(kCPU).item<float>() == doctest::Approx(3.0 * (1 << 20)));
}

TEST_CASE("cuda graphs: a recorded kernel replays, and what the capture kept alive lives as long as the graph") {
  cuda::Stream s = cuda::Stream::create(0);
  cuda::StreamGuard guard(s);
  Tensor x = ones({1 << 16}, {.device = kGpu});
  Tensor y = zeros({1 << 16}, {.device = kGpu});
  auto owner = std::make_shared<int>(7);
  cuda::keep_alive_while_captured(owner);  // no capture under way: nothing kept
  CHECK(owner.use_count() == 1);
  {
    cuda::CudaGraph g;
    g.begin_capture(s);
    CHECK(cuda::is_capturing(s));
    add_(y, x);  // recorded, not run
    cuda::keep_alive_while_captured(owner);
    CHECK(g.end_capture() == "");
    CHECK_FALSE(cuda::is_capturing(s));
    CHECK(owner.use_count() == 2);
    cuda::keep_alive_while_captured(owner);  // the capture is over: not kept again
    CHECK(owner.use_count() == 2);
    REQUIRE(g.ready());
    CHECK(g.nodes() >= 1);
    CHECK(sum(y).to(kCPU).item<float>() == 0.0f);
    g.launch(s);
    g.launch(s);
    CHECK(sum(y).to(kCPU).item<float>() == 2.0f * (1 << 16));
  }
  CHECK(owner.use_count() == 1);
}

TEST_CASE("cuda caching allocator: accounting, reuse and peak") {
  cuda::synchronize();
  const auto before = cuda::memory_stats(0);
  {
    Tensor a = empty({1 << 20}, {.device = kGpu});  // 4 MiB
    const auto during = cuda::memory_stats(0);
    CHECK(during.allocated >= before.allocated + (size_t(4) << 20));
    CHECK(during.reserved >= during.allocated);
    CHECK(during.peak_allocated >= during.allocated);
  }
  const auto after = cuda::memory_stats(0);
  CHECK(after.allocated == before.allocated);
  if (!cuda::caching_disabled()) {
    // Same size again on the same stream: served from the cache, no cudaMalloc.
    Tensor b = empty({1 << 20}, {.device = kGpu});
    CHECK(cuda::memory_stats(0).num_cuda_mallocs == after.num_cuda_mallocs);
  }
  cuda::reset_peak_memory_stats(0);
  CHECK(cuda::memory_stats(0).peak_allocated == cuda::memory_stats(0).allocated);
  cuda::empty_cache();
  CHECK(cuda::memory_stats(0).reserved >= cuda::memory_stats(0).allocated);
}

TEST_CASE("cuda caching allocator: an impossible request names the sizes") {
  const std::string msg = message_of([] { empty({int64_t(1) << 48}, {.device = kGpu}); });
  CHECK(msg.find("CUDA out of memory on cuda:0") != std::string::npos);
  Tensor still_works = ones({4}, {.device = kGpu});
  CHECK(sum(still_works).to(kCPU).item<float>() == 4.0f);
}

TEST_CASE("cuda caching allocator: record_stream keeps a block from early reuse") {
  cuda::Stream side = cuda::Stream::create(0);
  Tensor x = ones({1 << 16}, {.device = kGpu});
  cuda::record_stream(x.data(), side);
  x = Tensor();  // freed while `side` may still use it: reuse waits for side's work
  Tensor y = zeros({1 << 16}, {.device = kGpu});
  CHECK(sum(y).to(kCPU).item<float>() == 0.0f);
}

TEST_CASE("cuda copies: every dtype round-trips, strided sources too") {
  for (DType dt : {DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64, DType::I32, DType::U8, DType::Bool}) {
    INFO(dtype_name(dt));
    Tensor h = reshape(cast(arange(0, 24, 1, DType::F64), dt), {2, 3, 4});
    Tensor back = h.to(kGpu).to(kCPU);
    CHECK(back.dtype() == dt);
    CHECK(same(back, h));
    Tensor t = transpose(h, 0, 2);  // non-contiguous source
    CHECK(same(t.to(kGpu).to(kCPU), contiguous(t)));
  }
}

TEST_CASE("cuda copies: pinned memory, copy_ across devices, gradients flow back") {
  Tensor p = cuda::pin_memory(arange(0, 8, 1, DType::F32));
  CHECK(cuda::is_pinned(p.data()));
  Tensor g = p.to(kGpu);
  Tensor dst = zeros({8}, {.device = kGpu});
  copy_(dst, arange(0, 8, 1, DType::F32));  // CPU source into a CUDA tensor
  CHECK(same(dst.to(kCPU), g.to(kCPU)));
  Tensor host = zeros({8});
  copy_(host, g);  // CUDA source into a CPU tensor
  CHECK(same(host, arange(0, 8, 1, DType::F32)));

  Tensor x = ones({3});
  x.set_requires_grad();
  Tensor y = (x.to(kGpu) * 3.0f).to(kCPU);
  sum(y).backward();
  CHECK(x.grad().device() == kCPU);
  CHECK(same(x.grad(), full({3}, 3.0f)));
}

TEST_CASE("cuda pointwise: CPU scalars join by value, mixing devices is refused") {
  Tensor x = arange(0, 4, 1, DType::F32).to(kGpu);
  CHECK(same((x * 0.5f + 1.0f).to(kCPU), arange(0, 4, 1, DType::F32) * 0.5f + 1.0f));
  const std::string msg = message_of([&] { add(x, arange(0, 4, 1, DType::F32)); });
  CHECK(msg.find("expected all tensors on one device") != std::string::npos);
}

}  // namespace pacer::test

namespace pacer::test {

TEST_CASE("cuda channels-last: conv -> relu -> add stay NHWC and match the CPU, backward too") {
  const Device gpu{DeviceType::CUDA, 0};
  auto nhwc = [](const Tensor& t) { return contiguous(permute(t, {0, 2, 3, 1})); };
  auto as_nchw_view = [](const Tensor& t) { return permute(t, {0, 3, 1, 2}); };
  Tf32Off tf32_off;  // f32 means f32 here: the check is of layouts, not of TF32's rounding
  // 3x3 goes through cuDNN; 1x1 (stride 1, no padding) runs as a GEMM over the pixels.
  for (auto [dt, ks] : {std::pair{DType::F32, 3}, {DType::F16, 3}, {DType::F32, 1}, {DType::F16, 1}, {DType::BF16, 1}}) {
    INFO(dtype_name(dt) << " " << ks << "x" << ks);
    const int64_t pad = ks / 2;
    Tensor x = cast(uniform({2, 8, 6, 5}, -1, 1, 11), dt), w = cast(uniform({4, 8, ks, ks}, -1, 1, 12), dt);
    Tensor b = cast(uniform({4}, -1, 1, 13), dt);
    // The same values as channels-last CUDA tensors (logical NCHW, NHWC memory).
    // The 1x1 filters stay NCHW, as a network's parameters are (the conv copies as needed).
    Tensor xg = as_nchw_view(nhwc(x).to(gpu)), wg = ks == 1 ? w.to(gpu) : as_nchw_view(nhwc(w).to(gpu)),
           bg = b.to(gpu);
    REQUIRE(ops::is_channels_last(xg));
    xg.set_requires_grad();
    wg.set_requires_grad();
    Tensor yg = conv2d(xg, wg, bg, {1, 1}, {pad, pad});
    CHECK(ops::is_channels_last(yg));
    Tensor zg = relu(yg) + yg;
    CHECK(ops::is_channels_last(zg));
    Tensor xc = x, wc = w;
    xc.set_requires_grad();
    wc.set_requires_grad();
    Tensor zc = relu(conv2d(xc, wc, b, {1, 1}, {pad, pad})) + conv2d(xc, wc, b, {1, 1}, {pad, pad});
    const double tol = dt == DType::F16 ? 2e-2 : dt == DType::BF16 ? 1e-1 : 1e-4;
    const auto diff = [](const Tensor& a, const Tensor& c) {
      return max(abs(cast(a.to(kCPU), DType::F64) - cast(c, DType::F64))).item<double>();
    };
    CHECK(diff(zg, zc) <= tol * 10);
    sum(zg).backward();
    sum(zc).backward();
    CHECK(diff(xg.grad(), xc.grad()) <= tol * 10);
    CHECK(diff(wg.grad(), wc.grad()) <= tol * 40);
  }
}

}  // namespace pacer::test

namespace pacer::test {

TEST_CASE("cuda channels-last: batch norm keeps NHWC and matches the CPU, backward too") {
  const Device gpu{DeviceType::CUDA, 0};
  // C = 40: the per-element kernels (one full tile of 32 channels and a partial one; M = 4 *
  // 7 * 9 = 252 rows). C = 64 and 4096: the vectorized ones (16 bytes a thread; 4096 f16
  // channels make two blocks across a row), over several row splits.
  for (const Shape& shape : {Shape{4, 40, 7, 9}, Shape{4, 64, 15, 15}, Shape{2, 4096, 3, 5}}) {
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      INFO(dtype_name(dt) << " " << shape);
      const int64_t C = shape[1];
      Tensor x = cast(uniform(shape, -2, 3, 21), dt);
      Tensor w = cast(uniform({C}, 0.5, 1.5, 22), dt), b = cast(uniform({C}, -1, 1, 23), dt);
      Tensor dy = cast(uniform(shape, -1, 1, 24), dt);
      auto cl = [&](const Tensor& t) { return permute(contiguous(permute(t.to(gpu), {0, 2, 3, 1})), {0, 3, 1, 2}); };
      Tensor xg = cl(x), wg = w.to(gpu), bg = b.to(gpu);
      REQUIRE(ops::is_channels_last(xg));
      xg.set_requires_grad();
      wg.set_requires_grad();
      bg.set_requires_grad();
      Tensor yg = batch_norm(xg, wg, bg, Tensor(), Tensor(), true, 0.1, 1e-5);
      CHECK(ops::is_channels_last(yg));
      Tensor xc = x, wc = w, bc = b;
      xc.set_requires_grad();
      wc.set_requires_grad();
      bc.set_requires_grad();
      Tensor yc = batch_norm(xc, wc, bc, Tensor(), Tensor(), true, 0.1, 1e-5);
      // Both sides compute in f32 from the same rounded inputs: a few roundings of the
      // result's dtype apart (f16 2^-11, bf16 2^-8 relative), relative to the value; the
      // gradient sums over the rows also differ in summation order.
      const double tol = dt == DType::F32 ? 1e-5 : dt == DType::F16 ? 4e-3 : 3e-2;
      const double sum_tol = dt == DType::F32 ? 1e-4 : tol;
      const auto diff = [](const Tensor& a, const Tensor& c) {
        const Tensor ref = cast(c, DType::F64);
        return max(abs(cast(a.to(kCPU), DType::F64) - ref) / (abs(ref) + 1.0)).item<double>();
      };
      CHECK(diff(yg, yc) <= tol);
      sum(yg * cl(dy)).backward();  // a channels-last gradient, as inside a channels-last net
      sum(yc * dy).backward();
      CHECK(diff(xg.grad(), xc.grad()) <= tol);
      CHECK(diff(wg.grad(), wc.grad()) <= sum_tol);  // sums over the rows
      CHECK(diff(bg.grad(), bc.grad()) <= sum_tol);
    }
  }
}

TEST_CASE("cuda channels-last: softmax and log_softmax along every dim match the CPU (the output keeps NHWC)") {
  const Device gpu{DeviceType::CUDA, 0};
  // [2, 6, 5, 8]: dim 1 has 40 neighbouring rows (the strided kernel), dim 3 none (the row
  // kernel), dim 2 eight (the permuted path); all three write an NHWC-strided output.
  const Tensor x = uniform({2, 6, 5, 8}, -3, 3, 31);
  const Tensor xg = permute(contiguous(permute(x.to(gpu), {0, 2, 3, 1})), {0, 3, 1, 2});
  REQUIRE(ops::is_channels_last(xg));
  for (int64_t dim : {1, 2, 3}) {
    INFO("dim " << dim);
    for (bool log : {false, true}) {
      const Tensor yg = log ? log_softmax(xg, dim) : softmax(xg, dim);
      CHECK(ops::is_channels_last(yg));  // the layout kept (the case the dense kernels got wrong)
      const Tensor yc = log ? log_softmax(x, dim) : softmax(x, dim);
      const Tensor d = abs(cast(yg.to(kCPU), DType::F64) - cast(yc, DType::F64));
      CHECK(max(d).item<double>() <= 1e-5);
    }
  }
}

TEST_CASE("cuda batch norm: float32 weight and bias beside half data (mixed precision) match the CPU's, their "
          "gradients float32") {
  const Device gpu{DeviceType::CUDA, 0};
  // C = 64 channels-last: the vectorized kernels; NCHW: the per-element ones.
  for (bool channels_last : {true, false}) {
    for (DType dt : {DType::F16, DType::BF16}) {
      INFO(dtype_name(dt) << (channels_last ? " channels-last" : " NCHW"));
      const Shape shape{4, 64, 7, 9};
      const Tensor x = cast(uniform(shape, -2, 3, 31), dt), dy = cast(uniform(shape, -1, 1, 32), dt);
      const Tensor w = cast(uniform({64}, 0.5, 1.5, 33), DType::F32), b = cast(uniform({64}, -1, 1, 34), DType::F32);
      auto on_gpu = [&](const Tensor& t) {
        return channels_last ? permute(contiguous(permute(t.to(gpu), {0, 2, 3, 1})), {0, 3, 1, 2}) : t.to(gpu);
      };
      Tensor xg = on_gpu(x), wg = w.to(gpu), bg = b.to(gpu), xc = x, wc = w, bc = b;
      for (Tensor* t : {&xg, &wg, &bg, &xc, &wc, &bc}) t->set_requires_grad();
      const Tensor yg = batch_norm(xg, wg, bg, Tensor(), Tensor(), true, 0.1, 1e-5);
      const Tensor yc = batch_norm(xc, wc, bc, Tensor(), Tensor(), true, 0.1, 1e-5);
      sum(yg * on_gpu(dy)).backward();
      sum(yc * dy).backward();
      CHECK(wg.grad().dtype() == DType::F32);
      CHECK(bg.grad().dtype() == DType::F32);
      const auto diff = [](const Tensor& a, const Tensor& c) {
        const Tensor ref = cast(c, DType::F64);
        return max(abs(cast(a.to(kCPU), DType::F64) - ref) / (abs(ref) + 1.0)).item<double>();
      };
      const double tol = dt == DType::F16 ? 4e-3 : 3e-2;
      CHECK(diff(yg, yc) <= tol);
      CHECK(diff(xg.grad(), xc.grad()) <= tol);
      CHECK(diff(wg.grad(), wc.grad()) <= 1e-4);  // f32 sums of the same half values
      CHECK(diff(bg.grad(), bc.grad()) <= 1e-4);
    }
  }
}

TEST_CASE("cuda convolutions: repeated half-precision calls (from the second on, cuDNN's graph API where it measured "
          "faster) keep matching the CPU, forward and backward, with and without a bias") {
  const Device gpu{DeviceType::CUDA, 0};
  auto cl = [&](const Tensor& t) { return permute(contiguous(permute(t.to(gpu), {0, 2, 3, 1})), {0, 3, 1, 2}); };
  for (bool bias : {false, true}) {
    INFO((bias ? "bias" : "no bias"));
    const Tensor x = cast(uniform({8, 32, 14, 14}, -1, 1, 41), DType::F16);
    const Tensor w = cast(uniform({32, 32, 3, 3}, -0.2, 0.2, 42), DType::F16);
    const Tensor b = cast(uniform({32}, -1, 1, 43), DType::F16);
    const Tensor dy = cast(uniform({8, 32, 14, 14}, -1, 1, 44), DType::F16);
    Tensor xc = x, wc = w;
    xc.set_requires_grad();
    wc.set_requires_grad();
    const Tensor yc = conv2d(xc, wc, bias ? b : Tensor(), {1, 1}, {1, 1});
    sum(yc * dy).backward();
    const auto diff = [](const Tensor& a, const Tensor& c) {
      const Tensor ref = cast(c, DType::F64);
      return max(abs(cast(a.to(kCPU), DType::F64) - ref) / (abs(ref) + 1.0)).item<double>();
    };
    for (int call = 0; call < 3; ++call) {
      INFO("call " << call);
      Tensor xg = cl(x), wg = cl(w);
      xg.set_requires_grad();
      wg.set_requires_grad();
      const Tensor yg = conv2d(xg, wg, bias ? b.to(gpu) : Tensor(), {1, 1}, {1, 1});
      sum(yg * cl(dy)).backward();
      CHECK(diff(yg, yc) <= 2e-2);
      CHECK(diff(xg.grad(), xc.grad()) <= 2e-2);
      CHECK(diff(wg.grad(), wc.grad()) <= 2e-2);
    }
  }
}

}  // namespace pacer::test
