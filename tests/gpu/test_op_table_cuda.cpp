// CUDA-vs-CPU parity over the whole op table (DESIGN §9): every row runs on cuda:0 and on
// the CPU with the same inputs, in f64, f32, f16 and bf16, forward and backward, and the
// results must agree within the row's tolerance for that dtype. TF32 is switched off so
// that f32 means f32 (it has its own check below).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "core/cuda/handles.h"
#include "core/cuda/runtime.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

const Device kGpu{DeviceType::CUDA, 0};

const std::vector<OpCase>& rows() {
  static const std::vector<OpCase> r = all_rows();
  return r;
}

std::vector<Tensor> prepared(const std::vector<Tensor>& in, DType dt, Device device, uint32_t grad_mask, bool grad) {
  std::vector<Tensor> out;
  NoGradGuard no_grad;
  for (size_t i = 0; i < in.size(); ++i) {
    Tensor t = in[i];
    if (!t.defined()) {
      out.push_back(t);
      continue;
    }
    if (is_floating(t.dtype())) t = cast(t, dt);
    t = contiguous(t.to(device));
    t = detach(t);
    if (grad && is_floating(t.dtype()) && (grad_mask >> i & 1u)) {
      t = clone(t);
      t.set_requires_grad();
    }
    out.push_back(t);
  }
  return out;
}

double max_error(const Tensor& got, const Tensor& want) {
  const auto a = cast(got.to(kCPU), DType::F64).to_vector<double>();
  const auto b = cast(want.to(kCPU), DType::F64).to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (a[i] == b[i]) continue;
    if (std::isnan(a[i]) || std::isnan(b[i])) return INFINITY;
    worst = std::max(worst, std::fabs(a[i] - b[i]) / (1 + std::fabs(b[i])));
  }
  return worst;
}

struct Result {
  Tensor out;
  std::vector<Tensor> grads;
};

// Runs the row on `device`; with `grad`, also the gradient of sum(out * w) for the
// differentiable inputs, w a fixed pseudo-random weight (so every output element counts).
Result run_row(const OpCase& row, const std::vector<Tensor>& raw, DType dt, Device device, bool grad) {
  std::vector<Tensor> in = prepared(raw, dt, device, row.grad_mask, grad);
  Result r;
  r.out = row.run(in);
  if (grad && r.out.requires_grad()) {
    Tensor w = cast(uniform(r.out.sizes(), 0.5, 1.5, 7), r.out.dtype()).to(r.out.device());
    sum(r.out * w).backward();
    for (const Tensor& t : in) r.grads.push_back(t.defined() && t.requires_grad() ? t.grad() : Tensor());
  }
  return r;
}

double tolerance(const OpCase& row, DType dt) {
  switch (dt) {
    case DType::F64: return std::max(row.tol, 1e-9);
    case DType::F32: return 4 * row.tol_f32;
    case DType::F16: return 2 * row.tol_f16;
    default: return 2 * row.tol_bf16;
  }
}

void compare(const OpCase& row, DType dt, bool grad) {
  const std::string what = row.name + " " + std::string(dtype_name(dt));
  INFO(what);
  const auto raw = row.inputs();
  // A row without tensor inputs (a factory) runs where it says: nothing to move to the GPU.
  if (std::none_of(raw.begin(), raw.end(), [](const Tensor& t) { return t.defined(); })) return;
  Result cpu, gpu;
  try {
    cpu = run_row(row, raw, dt, kCPU, grad);
  } catch (const Error&) {
    return;  // not supported on the CPU in this dtype either: nothing to compare
  }
  try {
    gpu = run_row(row, raw, dt, kGpu, grad);
  } catch (const Error& e) {
    FAIL_CHECK(what << ": runs on the CPU but fails on CUDA: " << std::string(e.what()));
    return;
  }
  // Every row's output stays on the inputs' device, but to_device's, which names the CPU.
  const Device want = row.name == "to_device" ? kCPU : kGpu;
  if (gpu.out.device() != want) {
    FAIL_CHECK(what << ": output on " << gpu.out.device().str());
    return;
  }
  REQUIRE_MESSAGE(gpu.out.sizes() == cpu.out.sizes(), what << ": shape mismatch");
  CHECK_MESSAGE(gpu.out.dtype() == cpu.out.dtype(), what << ": dtype " << dtype_name(gpu.out.dtype()));
  const double tol = tolerance(row, dt);
  const double err = max_error(gpu.out, cpu.out);
  CHECK_MESSAGE(err <= tol, what << ": forward max error " << err << " > " << tol);
  REQUIRE(gpu.grads.size() == cpu.grads.size());
  for (size_t i = 0; i < cpu.grads.size(); ++i) {
    if (!cpu.grads[i].defined()) continue;
    REQUIRE_MESSAGE(gpu.grads[i].defined(), what << ": no CUDA gradient for input " << i);
    const double gerr = max_error(gpu.grads[i], cpu.grads[i]);
    CHECK_MESSAGE(gerr <= 4 * tol, what << ": gradient " << i << " max error " << gerr << " > " << 4 * tol);
  }
}

}  // namespace

TEST_CASE("cuda parity: every op-table row, f64 and f32, forward and backward") {
  Tf32Off tf32_off;
  for (const OpCase& row : rows()) {
    if (row.custom) continue;
    compare(row, DType::F64, row.grad);
    if (row.half) compare(row, DType::F32, row.grad);
  }
}

TEST_CASE("cuda parity: every op-table row, f16 and bf16, forward and backward") {
  for (const OpCase& row : rows()) {
    if (row.custom || !row.half) continue;
    compare(row, DType::F16, row.grad);
    compare(row, DType::BF16, row.grad);
  }
}

TEST_CASE("cuda parity: strided CUDA inputs give the dense result") {
  Tf32Off tf32_off;
  for (const OpCase& row : rows()) {
    if (row.custom) continue;
    INFO(row.name);
    std::vector<Tensor> dense, strided;
    for (const Tensor& t : row.inputs()) {
      Tensor g = t.defined() ? t.to(kGpu) : t;
      dense.push_back(g);
      if (g.defined() && is_floating(g.dtype()) && g.dim() >= 1) {
        Shape wide = g.sizes();
        wide.back() *= 2;
        Tensor buf = zeros(wide, {.dtype = g.dtype(), .device = kGpu});
        Tensor v = slice(buf, -1, 0, wide.back(), 2);
        copy_(v, g);
        strided.push_back(make_view(v, v.sizes(), v.strides(), v.storage_offset()));
      } else {
        strided.push_back(g);
      }
    }
    const double err = max_error(row.run(strided), row.run(dense));
    CHECK_MESSAGE(err <= 1e-12, row.name << ": strided vs dense max error " << err);
  }
}

TEST_CASE("cuda parity: random draws equal the CPU's (dropout masks bit for bit)") {
  for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::F64}) {
    INFO(dtype_name(dt));
    Generator a(1234), b(1234);
    Tensor cpu = rand({1000, 37}, {.dtype = dt}, &a);
    Tensor gpu = rand({1000, 37}, {.dtype = dt, .device = kGpu}, &b);
    CHECK(max_error(gpu, cpu) == 0.0);
    Tensor ncpu = randn({999}, {.dtype = dt}, &a);
    Tensor ngpu = randn({999}, {.dtype = dt, .device = kGpu}, &b);
    CHECK(max_error(ngpu, ncpu) <= 1e-6);  // Box-Muller in double: equal but for near-ties
    Tensor icpu = randint(0, 10, {500}, {.dtype = DType::I64}, &a);
    Tensor igpu = randint(0, 10, {500}, {.dtype = DType::I64, .device = kGpu}, &b);
    CHECK(max_error(igpu, icpu) == 0.0);
  }
  Generator a(99), b(99);
  Tensor x = ones({64, 64});
  Tensor mc = dropout(x, 0.3, true, &a);
  Tensor mg = dropout(x.to(kGpu), 0.3, true, &b);
  CHECK(max_error(mg, mc) == 0.0);
}

TEST_CASE("cuda parity: TF32 GEMM stays within TF32's precision") {
  cuda::set_allow_tf32(true);
  Tensor a = cast(uniform({256, 512}, -1, 1, 3), DType::F32), b = cast(uniform({512, 128}, -1, 1, 4), DType::F32);
  const double err = max_error(mm(a.to(kGpu), b.to(kGpu)), mm(a, b));
  MESSAGE("TF32 mm max error " << err);
  CHECK(err <= 5e-2);  // 10-bit mantissa inputs, f32 accumulation, |sum| ~ sqrt(512)
}

}  // namespace pacer::test
