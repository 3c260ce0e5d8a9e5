// `pacer bench <case>`: performance cases (never timed unit tests). Each prints one JSON
// object per line with case, device, dtype, median_ms, throughput and unit; the PyTorch
// scripts in bench/ print the same fields for the same cases.
//
// gemm, add, conv2d and lstm take --device cuda[:N]: inputs are drawn on the CPU (the same
// Philox numbers as on the CPU), moved to the GPU, and each timed run is bracketed by CUDA
// events on the current stream after a synchronize, so the median is GPU time of one run
// with the host's launch gaps included. tools/gpu_check.sh runs them next to PyTorch.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>

#include "autograd/grad_mode.h"
#include "core/cuda/runtime.h"
#include "core/cuda/stream.h"
#include "core/thread_pool.h"
#include "data/fashion_mnist.h"
#include "models/classifier_training.h"
#include "models/precision.h"
#include "models/resnet_training.h"
#include "data/image_loader.h"
#include "nn/lstm.h"
#include "ops/api.h"
#include "ops/graph/pass.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "tools/json_line.h"

namespace pacer::cli {

namespace {

using Clock = std::chrono::steady_clock;

// Median wall time (ms) of `runs` calls after `warmup` untimed calls.
double median_ms(int64_t warmup, int64_t runs, const std::function<void()>& fn) {
  if (runs < 1) throw UsageError("--repeat must be positive");
  for (int64_t i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int64_t i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// The same on `dev`: wall clock on the CPU; on CUDA, the device is drained first, then each
// run is bracketed by timing events on the current stream and read once its end event is done
// (so the runs never overlap and every run's work, host gaps included, is counted).
double median_ms(Device dev, int64_t warmup, int64_t runs, const std::function<void()>& fn) {
  if (!dev.is_cuda()) return median_ms(warmup, runs, fn);
  if (runs < 1) throw UsageError("--repeat must be positive");
  for (int64_t i = 0; i < warmup; ++i) fn();
  cuda::synchronize(dev.index);
  cuda::Event start(true), stop(true);
  std::vector<double> t;
  for (int64_t i = 0; i < runs; ++i) {
    start.record();
    fn();
    stop.record();
    stop.synchronize();
    t.push_back(double(stop.elapsed_ms(start)));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// The --device option of the cases that run on a GPU.
void device_option(Parser& p) { p.option("device", "D", "cpu, or cuda[:N] (needs the CUDA backend and a GPU)", "cpu"); }

// Parses --device; for CUDA checks that the backend is built and the GPU visible (a clear
// error instead of a failure inside an op) and makes it the current device.
Device bench_device(const Args& a) {
  const std::string spec = a.str("device");
  Device d;
  try {
    d = Device(spec);
  } catch (const std::exception&) {
    throw UsageError("option '--device' expects cpu, cuda or cuda:N, got '" + spec + "'");
  }
  if (!d.is_cuda()) return d;
  if (!cuda::is_built())
    throw std::runtime_error("--device " + spec +
                             ": this pacer was built without its CUDA backend (configure with -DPACER_CUDA=ON)");
  if (!cuda::is_available())
    throw std::runtime_error("--device " + spec + ": no CUDA device is visible (no GPU, or no driver)");
  cuda::check_device(d.index);
  cuda::set_device(d.index);
  return d;
}

// "cpu" or "cuda" (the JSON "device" field, as PyTorch's device type), plus the GPU's name.
void add_device(JsonLine& j, Device d) {
  j.add("device", d.is_cuda() ? "cuda" : "cpu");
  if (d.is_cuda()) j.add("gpu", std::string(cuda::device_properties(d.index).name));
}

// A CPU-drawn f32 tensor as `dt` on `dev` (moved first, then cast on the device). On the CPU
// this is cast(t, dt), as before --device existed.
Tensor on_device(const Tensor& t, DType dt, Device dev) { return cast(dev.is_cuda() ? t.to(dev) : t, dt); }

// x [N, C, H, W] stored channels-last (NHWC), as a permuted view of a contiguous copy.
Tensor channels_last(const Tensor& x) { return permute(contiguous(permute(x, {0, 2, 3, 1})), {0, 3, 1, 2}); }

Parser common(const std::string& name, const std::string& summary) {
  Parser p("pacer bench " + name + " [options]", summary);
  p.option("repeat", "N", "timed runs (the median is reported)", "10")
      .option("warmup", "N", "untimed runs first", "2")
      .option("threads", "N", "CPU threads (0 = PACER_NUM_THREADS or all cores)", "0")
      .flag("json", "print JSON lines only");
  return p;
}

void emit(const Args& a, JsonLine& j, const std::string& human) {
  if (a.flag("json")) std::printf("%s\n", j.str().c_str());
  else std::printf("%s\n%s\n", human.c_str(), j.str().c_str());
}

void apply_threads(const Args& a) {
  if (a.integer("threads") > 0) set_num_threads(int(a.integer("threads")));
}

int bench_gemm(const std::vector<std::string>& argv) {
  Parser p = common("gemm", "C = A @ B for A [m, k], B [k, n]; reports GFLOP/s (2mnk flops).");
  p.option("m", "N", "rows of A", "2048").option("n", "N", "columns of B", "2048").option("k", "N", "inner size", "2048");
  p.option("dtype", "T", "f32, f64, f16 or bf16", "f32");
  device_option(p);
  Args a = p.parse(argv);
  apply_threads(a);
  const int64_t m = a.integer("m"), n = a.integer("n"), k = a.integer("k");
  if (m < 1 || n < 1 || k < 1) throw UsageError("--m, --n and --k must be positive");
  const DType dt = parse_dtype(a.str("dtype"));
  const Device dev = bench_device(a);
  NoGradGuard no_grad;
  Tensor A = on_device(randn({m, k}), dt, dev), B = on_device(randn({k, n}), dt, dev);
  const double ms = median_ms(dev, a.integer("warmup"), a.integer("repeat"), [&] { mm(A, B); });
  const double gflops = 2.0 * double(m) * double(n) * double(k) / (ms * 1e6);
  JsonLine j;
  j.add("case", "gemm");
  add_device(j, dev);
  j.add("dtype", std::string(dtype_name(dt))).add("m", m).add("n", n).add("k", k);
  j.add("threads", num_threads()).add("median_ms", ms).add("throughput", gflops).add("unit", "GFLOP/s");
  emit(a, j,
       fmt::format("gemm {}x{}x{} {} on {}: {:.3f} ms, {:.1f} GFLOP/s", m, n, k, dtype_name(dt), dev, ms, gflops));
  return 0;
}

// Copy bandwidth of this machine with the same threads: read + write bytes per second.
double memcpy_gbps(size_t bytes, int64_t warmup, int64_t runs) {
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  const double ms = median_ms(warmup, runs, [&] {
    parallel_for(0, int64_t(bytes), 1 << 20, [&](int64_t b, int64_t e) {
      std::memcpy(dst.data() + b, src.data() + b, size_t(e - b));
    });
  });
  return 2.0 * double(bytes) / (ms * 1e6);
}

int bench_add(const std::vector<std::string>& argv) {
  Parser p = common("add", "c = a + b elementwise; reports GB/s (3 x bytes per element) and memcpy bandwidth.");
  p.option("numel", "N", "elements per tensor", "16777216").option("dtype", "T", "element type", "f32");
  device_option(p);
  Args a = p.parse(argv);
  apply_threads(a);
  const int64_t n = a.integer("numel");
  if (n < 1) throw UsageError("--numel must be positive");
  const DType dt = parse_dtype(a.str("dtype"));
  const Device dev = bench_device(a);
  NoGradGuard no_grad;
  Tensor x = on_device(rand({n}), dt, dev), y = on_device(rand({n}), dt, dev);
  const double ms = median_ms(dev, a.integer("warmup"), a.integer("repeat"), [&] { add(x, y); });
  const double bytes = 3.0 * double(n) * double(element_size(dt));
  const double gbps = bytes / (ms * 1e6);
  double copy = 0;
  if (dev.is_cuda()) {
    // Device-to-device copy of the same bytes (read + write), the bound an add can reach.
    Tensor src = full({n}, 1.0, {.dtype = dt, .device = dev}), dst = full({n}, 0.0, {.dtype = dt, .device = dev});
    const double copy_ms = median_ms(dev, a.integer("warmup"), a.integer("repeat"), [&] { copy_(dst, src); });
    copy = 2.0 * double(n) * double(element_size(dt)) / (copy_ms * 1e6);
  } else {
    copy = memcpy_gbps(size_t(n) * element_size(dt), a.integer("warmup"), a.integer("repeat"));
  }
  JsonLine j;
  j.add("case", "add");
  add_device(j, dev);
  j.add("dtype", std::string(dtype_name(dt))).add("numel", n);
  j.add("threads", num_threads()).add("median_ms", ms).add("throughput", gbps).add("unit", "GB/s");
  j.add("memcpy_gbps", copy).add("fraction_of_memcpy", gbps / copy);
  emit(a, j, fmt::format("add {} x {} on {}: {:.3f} ms, {:.2f} GB/s ({:.0f}% of memcpy {:.2f} GB/s)", n, dtype_name(dt),
                         dev, ms, gbps, 100 * gbps / copy, copy));
  return 0;
}

int bench_dispatch(const std::vector<std::string>& argv) {
  Parser p = common("dispatch", "1-element add with autograd recording: per-call overhead of the dispatcher.");
  p.option("calls", "N", "calls per timed run", "20000");
  Args a = p.parse(argv);
  apply_threads(a);
  const int64_t calls = a.integer("calls");
  if (calls < 1) throw UsageError("--calls must be positive");
  Tensor x = ones({1}, {.requires_grad = true}), y = ones({1});
  const double ms = median_ms(a.integer("warmup"), a.integer("repeat"), [&] {
    for (int64_t i = 0; i < calls; ++i) add(x, y);
  });
  const double us = ms * 1e3 / double(calls);
  JsonLine j;
  j.add("case", "dispatch").add("device", "cpu").add("dtype", "float32").add("autograd", true);
  j.add("median_ms", ms / double(calls)).add("median_us", us).add("throughput", 1e6 / us).add("unit", "calls/s");
  emit(a, j, fmt::format("dispatch: {:.3f} us per recorded 1-element add", us));
  return 0;
}

int bench_mlp_epoch(const std::vector<std::string>& argv) {
  Parser p = common("mlp-epoch", "One training epoch of the Fashion-MNIST MLP (784-256-10, SGD momentum).");
  p.option("data", "DIR", "Fashion-MNIST folder", data::kFashionMnistDir)
      .option("batch", "N", "minibatch size", "64")
      .option("lr", "X", "learning rate", "0.05");
  Args a = p.parse(argv);
  apply_threads(a);
  const int64_t batch = a.integer("batch");
  if (batch < 1) throw UsageError("--batch must be positive");
  auto train = data::load_fashion_mnist(a.str("data"), "train");
  std::vector<double> t;
  for (int64_t i = 0; i < a.integer("warmup") + a.integer("repeat"); ++i) {
    double s = models::time_epoch("mlp", train, batch, a.number("lr"), uint64_t(i));
    if (i >= a.integer("warmup")) t.push_back(s * 1e3);
  }
  std::sort(t.begin(), t.end());
  const double ms = t[t.size() / 2];
  JsonLine j;
  j.add("case", "mlp-epoch").add("device", "cpu").add("dtype", "float32").add("batch", batch);
  j.add("threads", num_threads()).add("median_ms", ms).add("throughput", double(train.size()) / (ms / 1e3));
  j.add("unit", "samples/s");
  emit(a, j, fmt::format("mlp-epoch batch {}: {:.0f} ms per epoch", batch, ms));
  return 0;
}

int bench_train_step(const std::vector<std::string>& argv) {
  Parser p = common("train-step", "One training step (forward, loss, backward, SGD) of a Fashion-MNIST model at a "
                                  "precision (32, 16-mixed, bf16-mixed, 16-O2).");
  p.option("model", "NAME", "mlp or cnn", "cnn").option("batch", "N", "minibatch size", "64");
  p.option("precision", "P", "32, 16-mixed, bf16-mixed or 16-O2", "32");
  Args a = p.parse(argv);
  apply_threads(a);
  const int64_t batch = a.integer("batch");
  if (batch < 1) throw UsageError("--batch must be positive");
  const std::string model = a.str("model"), precision = a.str("precision");
  if (model != "mlp" && model != "cnn") throw UsageError("--model must be mlp or cnn, got '" + model + "'");
  try {
    models::parse_precision(precision);
  } catch (const Error& e) {
    throw UsageError(std::string("--precision: ") + e.what());
  }
  std::vector<double> t = models::time_train_steps(model, precision, batch, a.integer("warmup"), a.integer("repeat"));
  std::sort(t.begin(), t.end());
  const double ms = t[t.size() / 2];
  JsonLine j;
  j.add("case", "train-step").add("device", "cpu").add("model", model).add("precision", precision);
  j.add("batch", batch).add("threads", num_threads()).add("median_ms", ms);
  j.add("throughput", double(batch) / (ms / 1e3)).add("unit", "samples/s");
  emit(a, j, fmt::format("train-step {} {} batch {}: {:.2f} ms per step", model, precision, batch, ms));
  return 0;
}

int bench_resnet_step(const std::vector<std::string>& argv) {
  Parser p = common("resnet50-step", "One ResNet-50 training step (forward, loss, backward, LARS) on synthetic data.");
  p.option("batch", "N", "batch", "8").option("image-size", "N", "image height = width", "224");
  p.option("precision", "P", "32, 16-mixed, bf16-mixed or 16-O2", "32").option("device", "D", "cpu or cuda[:N]", "cpu");
  p.option("depth", "N", "ResNet depth: 18, 34 or 50", "50");
  p.flag("channels-last", "NHWC activations (CUDA)");
  p.option("mode", "M", "eager, or graph (captured, passes, static executor)", "eager");
  p.option("passes", "LIST", "graph mode: comma-separated passes, 'default' (may be part of the list) or 'none'",
           "default");
  Args a = p.parse(argv);
  apply_threads(a);
  if (a.str("mode") != "eager" && a.str("mode") != "graph")
    throw UsageError("--mode must be eager or graph, got '" + a.str("mode") + "'");
  try {
    graph::PassManager().add_list(a.str("passes"));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  Device device;
  try {
    device = Device(a.str("device"));
    models::parse_precision(a.str("precision"));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  const int64_t batch = a.integer("batch"), size = a.integer("image-size");
  if (batch < 1 || size < 16) throw UsageError("--batch must be >= 1 and --image-size >= 16");
  const models::ResnetStepTimes times =
      models::time_resnet_steps(int(a.integer("depth")), batch, size, a.str("precision"), device, a.integer("warmup"),
                                a.integer("repeat"), a.flag("channels-last"), a.str("mode"), a.str("passes"));
  std::vector<double> t = times.ms;
  std::sort(t.begin(), t.end());
  const double ms = t[t.size() / 2];
  JsonLine j;
  j.add("case", "resnet50-step").add("device", device.str()).add("precision", a.str("precision"));
  j.add("depth", a.integer("depth")).add("batch", batch).add("image_size", size).add("threads", num_threads());
  j.add("channels_last", a.flag("channels-last")).add("mode", a.str("mode"));
  if (a.str("mode") == "graph") j.add("passes", a.str("passes"));
  if (!times.cuda_graph.empty()) j.add("cuda_graph", times.cuda_graph);
  j.add("median_ms", ms).add("throughput", double(batch) / (ms / 1e3)).add("unit", "img/s");
  emit(a, j,
       fmt::format("resnet{}-step batch {} size {} {} {}: {:.1f} ms, {:.1f} img/s{}", a.integer("depth"), batch, size,
                   a.str("precision"), a.str("mode"), ms, double(batch) / (ms / 1e3),
                   times.cuda_graph.empty() ? "" : " (CUDA graph: " + times.cuda_graph + ")"));
  return 0;
}

int bench_imagefolder_pipeline(const std::vector<std::string>& argv) {
  Parser p = common("imagefolder-pipeline",
                    "JPEG decode + random-resized crop + flip + normalize throughput of the training loader.");
  p.option("data", "DIR", "an ImageFolder tree (e.g. DIR/train from `pacer prepare`)", "")
      .option("loader-threads", "N", "decode threads (0 = all cores)", "0")
      .option("batch", "N", "batch", "64")
      .option("images", "N", "images per timed run", "2000")
      .option("size", "N", "output size", "224");
  Args a = p.parse(argv);
  if (a.str("data").empty()) throw UsageError("--data DIR is required");
  std::vector<double> ips;
  for (int64_t i = 0; i < a.integer("warmup") + a.integer("repeat"); ++i) {
    const double v = data::pipeline_images_per_s(a.str("data"), int(a.integer("loader-threads")), a.integer("batch"),
                                                 a.integer("images"), a.integer("size"));
    if (i >= a.integer("warmup")) ips.push_back(v);
  }
  std::sort(ips.begin(), ips.end());
  const double med = ips[ips.size() / 2];
  JsonLine j;
  j.add("case", "imagefolder-pipeline").add("device", "cpu").add("size", a.integer("size"));
  j.add("loader_threads", a.integer("loader-threads")).add("median_ms", 1e3 * double(a.integer("images")) / med);
  j.add("throughput", med).add("unit", "img/s");
  emit(a, j, fmt::format("imagefolder-pipeline size {}: {:.0f} img/s", a.integer("size"), med));
  return 0;
}

int bench_conv2d(const std::vector<std::string>& argv) {
  Parser p = common("conv2d", "2-d convolution (im2col + GEMM), forward or forward + backward; GFLOP/s.");
  p.option("n", "N", "batch", "8").option("c", "N", "input channels", "64").option("h", "N", "height", "56");
  p.option("w", "N", "width", "56").option("k", "N", "output channels", "64").option("kernel", "N", "kernel size", "3");
  p.option("stride", "N", "stride", "1").option("padding", "N", "padding", "1").option("groups", "N", "groups", "1");
  p.option("dilation", "N", "dilation", "1").option("dtype", "T", "element type", "f32");
  p.flag("channels-last", "input in NHWC memory order").flag("backward", "time forward + backward");
  device_option(p);
  Args a = p.parse(argv);
  apply_threads(a);
  const int64_t n = a.integer("n"), c = a.integer("c"), h = a.integer("h"), w = a.integer("w"), k = a.integer("k");
  const int64_t ks = a.integer("kernel"), st = a.integer("stride"), pad = a.integer("padding"),
                g = a.integer("groups"), dil = a.integer("dilation");
  if (n < 1 || c < 1 || h < 1 || w < 1 || k < 1 || ks < 1 || st < 1 || pad < 0 || g < 1 || dil < 1)
    throw UsageError("sizes, kernel, stride, groups and dilation must be positive and padding non-negative");
  const DType dt = parse_dtype(a.str("dtype"));
  const bool backward = a.flag("backward"), nhwc = a.flag("channels-last");
  const Device dev = bench_device(a);
  const int64_t span_h = h + 2 * pad - dil * (ks - 1) - 1, span_w = w + 2 * pad - dil * (ks - 1) - 1;
  if (span_h < 0 || span_w < 0) throw UsageError("the dilated kernel is larger than the padded input");
  const int64_t oh = span_h / st + 1, ow = span_w / st + 1;
  Tensor x = on_device(randn({n, c, h, w}), dt, dev);
  if (nhwc) x = channels_last(x);
  Tensor wt = on_device(randn({k, c / g, ks, ks}), dt, dev) * 0.05;
  // On CUDA the backward starts from a dense gradient in the output's layout (as inside a
  // network) rather than sum()'s broadcast one; the CPU case keeps sum(y).backward().
  Tensor dy;
  if (backward) {
    x.set_requires_grad();
    wt = detach(wt);
    wt.set_requires_grad();
    if (dev.is_cuda())
      dy = nhwc ? permute(full({n, oh, ow, k}, 1.0, {.dtype = dt, .device = dev}), {0, 3, 1, 2})
                : full({n, k, oh, ow}, 1.0, {.dtype = dt, .device = dev});
  }
  const double ms = median_ms(dev, a.integer("warmup"), a.integer("repeat"), [&] {
    Tensor y = conv2d(x, wt, Tensor(), {st, st}, {pad, pad}, {dil, dil}, g);
    if (!backward) return;
    if (dy.defined()) y.backward(dy);
    else sum(y).backward();
  });
  const double flops = 2.0 * double(n * k * oh * ow) * double(c / g * ks * ks) * (backward ? 3.0 : 1.0);
  JsonLine j;
  j.add("case", "conv2d");
  add_device(j, dev);
  j.add("dtype", std::string(dtype_name(dt))).add("n", n).add("c", c);
  j.add("h", h).add("w", w).add("k", k).add("kernel", ks).add("stride", st).add("padding", pad).add("groups", g);
  j.add("channels_last", a.flag("channels-last")).add("backward", backward).add("threads", num_threads());
  j.add("median_ms", ms).add("throughput", flops / (ms * 1e6)).add("unit", "GFLOP/s");
  emit(a, j, fmt::format("conv2d {}x{}x{}x{} k{} {}x{}/{} on {}: {:.3f} ms, {:.1f} GFLOP/s", n, c, h, w, k, ks, ks, st,
                         dev, ms, flops / (ms * 1e6)));
  return 0;
}

// The output of nn::LSTM::forward(x) with these weights (zero initial state, full lengths).
Tensor lstm_forward(const Tensor& x, const std::vector<LstmWeights>& weights, int64_t layers, bool bidirectional) {
  return lstm(x, Tensor(), Tensor(), weights, layers, bidirectional).output;
}

int bench_lstm(const std::vector<std::string>& argv) {
  Parser p = common("lstm", "nn::LSTM over a [steps, batch, input] sequence; GFLOP/s of the gate GEMMs.");
  p.option("hidden", "N", "hidden size", "1024").option("input", "N", "input size (0 = hidden)", "0");
  p.option("batch", "N", "batch", "64").option("steps", "N", "sequence length", "50");
  p.option("layers", "N", "stacked layers", "1").option("dtype", "T", "element type", "f32");
  p.flag("bidirectional", "both directions").flag("backward", "time forward + backward");
  device_option(p);
  Args a = p.parse(argv);
  apply_threads(a);
  const int64_t H = a.integer("hidden"), B = a.integer("batch"), T = a.integer("steps"), L = a.integer("layers");
  const int64_t I = a.integer("input") > 0 ? a.integer("input") : H;
  if (H < 1 || B < 1 || T < 1 || L < 1) throw UsageError("--hidden, --batch, --steps and --layers must be positive");
  const DType dt = parse_dtype(a.str("dtype"));
  const bool bidir = a.flag("bidirectional"), backward = a.flag("backward");
  const Device dev = bench_device(a);
  nn::LSTM lstm(I, H, L, true, false, bidir, {.dtype = dt});
  // The module's parameters live on the CPU (Module::to(Device) is not there yet), so on
  // CUDA the same weights are copied to the GPU as new leaves and pacer::lstm, which is
  // what LSTM::forward calls, runs on them.
  std::vector<LstmWeights> weights = lstm.weights;
  if (dev.is_cuda()) {
    NoGradGuard no_grad;
    for (LstmWeights& lw : weights)
      for (Tensor* t : {&lw.w_ih, &lw.w_hh, &lw.b_ih, &lw.b_hh})
        if (t->defined()) *t = detach(t->to(dev)).set_requires_grad(backward);
  }
  Tensor x = on_device(randn({T, B, I}), dt, dev);
  if (backward) x.set_requires_grad();
  const double ms = median_ms(dev, a.integer("warmup"), a.integer("repeat"), [&] {
    if (!backward) {
      NoGradGuard no_grad;
      lstm_forward(x, weights, L, bidir);
      return;
    }
    sum(lstm_forward(x, weights, L, bidir)).backward();
  });
  const int64_t D = bidir ? 2 : 1;
  double flops = 0;
  for (int64_t l = 0; l < L; ++l) flops += 2.0 * double(D * T * B) * 4.0 * double(H) * double((l == 0 ? I : D * H) + H);
  if (backward) flops *= 3.0;
  JsonLine j;
  j.add("case", "lstm");
  add_device(j, dev);
  j.add("dtype", std::string(dtype_name(dt))).add("hidden", H).add("input", I);
  j.add("batch", B).add("steps", T).add("layers", L).add("bidirectional", bidir).add("backward", backward);
  j.add("threads", num_threads()).add("median_ms", ms).add("throughput", flops / (ms * 1e6)).add("unit", "GFLOP/s");
  emit(a, j, fmt::format("lstm H{} B{} T{} L{} on {}: {:.3f} ms, {:.1f} GFLOP/s", H, B, T, L, dev, ms,
                         flops / (ms * 1e6)));
  return 0;
}

int bench_batchnorm(const std::vector<std::string>& argv) {
  Parser p = common("batchnorm", "batch_norm in training mode (batch statistics); GB/s of the minimum traffic.");
  p.option("n", "N", "batch", "8").option("c", "N", "channels", "64").option("h", "N", "height", "112");
  p.option("w", "N", "width", "112").option("dtype", "T", "element type", "f32");
  p.flag("backward", "time forward + backward");
  Args a = p.parse(argv);
  apply_threads(a);
  const int64_t n = a.integer("n"), c = a.integer("c"), h = a.integer("h"), w = a.integer("w");
  if (n < 1 || c < 1 || h < 1 || w < 1) throw UsageError("--n, --c, --h and --w must be positive");
  const DType dt = parse_dtype(a.str("dtype"));
  const bool backward = a.flag("backward");
  Tensor x = cast(randn({n, c, h, w}), dt);
  if (backward) x.set_requires_grad();
  Tensor weight = ones({c}, {.requires_grad = backward}), bias = zeros({c}, {.requires_grad = backward});
  Tensor rm = zeros({c}), rv = ones({c});
  Tensor dy = cast(randn({n, c, h, w}), dt);  // a dense incoming gradient, as in a network
  const double ms = median_ms(a.integer("warmup"), a.integer("repeat"), [&] {
    Tensor y = batch_norm(x, cast(weight, dt), cast(bias, dt), rm, rv, true);
    if (backward) y.backward(dy);
  });
  // Minimum traffic: forward reads x twice (statistics, normalize) and writes y; backward
  // reads x and dy twice (reductions, then the input gradient) and writes dx.
  const size_t bytes_per_pass = size_t(n * c * h * w) * element_size(dt);
  const double bytes = double(bytes_per_pass) * (backward ? 8.0 : 3.0);
  const double gbps = bytes / (ms * 1e6);
  const double copy = memcpy_gbps(bytes_per_pass, a.integer("warmup"), a.integer("repeat"));
  JsonLine j;
  j.add("case", "batchnorm").add("device", "cpu").add("dtype", std::string(dtype_name(dt))).add("n", n).add("c", c);
  j.add("h", h).add("w", w).add("backward", backward).add("threads", num_threads()).add("median_ms", ms);
  j.add("throughput", gbps).add("unit", "GB/s").add("memcpy_gbps", copy).add("fraction_of_memcpy", gbps / copy);
  emit(a, j, fmt::format("batchnorm {}x{}x{}x{}: {:.3f} ms, {:.1f} GB/s ({:.0f}% of memcpy)", n, c, h, w, ms, gbps,
                         100 * gbps / copy));
  return 0;
}

struct Case {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>&);
};

constexpr Case kCases[] = {
    {"gemm", "matrix multiply GFLOP/s", bench_gemm},
    {"add", "elementwise add bandwidth vs memcpy", bench_add},
    {"dispatch", "per-op overhead with autograd", bench_dispatch},
    {"mlp-epoch", "Fashion-MNIST MLP epoch time", bench_mlp_epoch},
    {"conv2d", "2-d convolution GFLOP/s (forward, or with --backward)", bench_conv2d},
    {"lstm", "LSTM layer GFLOP/s (forward, or with --backward)", bench_lstm},
    {"batchnorm", "training batch norm bandwidth vs memcpy", bench_batchnorm},
    {"train-step", "one training step of the MLP / CNN at a precision", bench_train_step},
    {"resnet50-step", "one ResNet-50 training step, img/s", bench_resnet_step},
    {"imagefolder-pipeline", "JPEG training pipeline throughput, img/s", bench_imagefolder_pipeline},
};

}  // namespace

int run_bench(const std::vector<std::string>& args) {
  std::string usage = "usage: pacer bench <case> [options]\n\ncases:\n";
  for (const Case& c : kCases) usage += fmt::format("  {:<21} {}\n", c.name, c.summary);
  usage += "\n`pacer bench <case> --help` lists its options.\n";
  if (args.empty()) throw UsageError("expected a case\n\n" + usage);
  if (args[0] == "--help" || args[0] == "-h") throw HelpRequested(usage);
  for (const Case& c : kCases)
    if (args[0] == c.name) return c.run(std::vector<std::string>(args.begin() + 1, args.end()));
  throw UsageError("unknown case '" + args[0] + "'\n\n" + usage);
}

}  // namespace pacer::cli
