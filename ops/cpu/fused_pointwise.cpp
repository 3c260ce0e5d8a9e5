// The CPU loop of fused pointwise programs (ops/graph/pointwise_program.h): blocks of
// elements are loaded into float registers (f32 inputs are read where they are), each
// instruction runs over the whole block (a short loop the compiler vectorizes), and the
// outputs are stored. Work is split into
// equal chunks over all bindings, so many small tensors share one parallel loop.
#include <algorithm>
#include <cstring>

#include "core/thread_pool.h"
#include "ops/common/pointwise_math.h"
#include "ops/cpu/loops.h"
#include "ops/graph/pointwise_program.h"

namespace pacer::graph {

namespace {

constexpr int64_t kBlock = 256;     // elements per register
constexpr int64_t kChunk = 16384;   // elements per work item
constexpr int64_t kSumSplit = 65536;  // the sum op sums longer rows in one part per thread

float load_scalar(const Tensor& t) {
  return dispatch_dtype(t.dtype(), [&]<class T>() { return float(compute_t<T>(*static_cast<const T*>(t.data()))); });
}

template <class T>
void load_as_float(const T* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = float(src[i]);
}

void load_block(const Tensor& t, int64_t begin, int64_t n, float* dst) {
  switch (t.dtype()) {
    case DType::F32: std::memcpy(dst, static_cast<const float*>(t.data()) + begin, size_t(n) * sizeof(float)); return;
    case DType::F16: return load_as_float(static_cast<const Half*>(t.data()) + begin, n, dst);
    case DType::BF16: return load_as_float(static_cast<const BFloat16*>(t.data()) + begin, n, dst);
    case DType::Bool: return load_as_float(static_cast<const bool*>(t.data()) + begin, n, dst);
    default: PACER_FAIL("fused pointwise loop: cannot load {}", t.dtype());
  }
}

template <class T>
void store_from_float(const float* src, int64_t n, T* dst) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_same_v<T, bool>) dst[i] = src[i] != 0.0f;
    else dst[i] = T(src[i]);
  }
}

void store_block(const Tensor& t, int64_t begin, int64_t n, const float* src) {
  switch (t.dtype()) {
    case DType::F32: {
      float* dst = static_cast<float*>(t.data()) + begin;
      if (dst != src) std::memcpy(dst, src, size_t(n) * sizeof(float));  // src may be this very block (an input)
      return;
    }
    case DType::F16: return store_from_float(src, n, static_cast<Half*>(t.data()) + begin);
    case DType::BF16: return store_from_float(src, n, static_cast<BFloat16*>(t.data()) + begin);
    case DType::Bool: return store_from_float(src, n, static_cast<bool*>(t.data()) + begin);
    default: PACER_FAIL("fused pointwise loop: cannot store {}", t.dtype());
  }
}

template <class F>
void unary(int64_t n, float* d, const float* a, F f) {
  for (int64_t i = 0; i < n; ++i) d[i] = f(a[i]);
}
template <class F>
void binary(int64_t n, float* d, const float* a, const float* b, F f) {
  for (int64_t i = 0; i < n; ++i) d[i] = float(f(a[i], b[i]));
}

float round_to(DType t, float v) {
  switch (t) {
    case DType::F16: return float(Half(v));
    case DType::BF16: return float(BFloat16(v));
    case DType::Bool: return v != 0.0f ? 1.0f : 0.0f;
    default: return v;
  }
}

void execute(const PwInstr& in, int64_t n, float* d, const float* a, const float* b, const float* c) {
  using namespace math;
  switch (in.op) {
    case PwOp::Add: return binary(n, d, a, b, Add{});
    case PwOp::Sub: return binary(n, d, a, b, Sub{});
    case PwOp::Mul: return binary(n, d, a, b, Mul{});
    case PwOp::Div: return binary(n, d, a, b, Div{});
    case PwOp::AddScaled: {
      const float alpha = float(in.scalar);
      return binary(n, d, a, b, [alpha](float x, float y) { return x + alpha * y; });
    }
    case PwOp::Maximum: return binary(n, d, a, b, Maximum{});
    case PwOp::Minimum: return binary(n, d, a, b, Minimum{});
    case PwOp::PowScalar: {
      const float p = float(in.scalar);
      if (p == 2.0f) return unary(n, d, a, [](float x) { return x * x; });
      return unary(n, d, a, PowScalar<float>{p});
    }
    case PwOp::Neg: return unary(n, d, a, Neg{});
    case PwOp::Exp: return unary(n, d, a, Exp{});
    case PwOp::Log: return unary(n, d, a, Log{});
    case PwOp::Sqrt: return unary(n, d, a, Sqrt{});
    case PwOp::Rsqrt: return unary(n, d, a, Rsqrt{});
    case PwOp::Abs: return unary(n, d, a, Abs{});
    case PwOp::Relu: return unary(n, d, a, Relu{});
    case PwOp::Sigmoid: return unary(n, d, a, Sigmoid{});
    case PwOp::Tanh: return unary(n, d, a, Tanh{});
    case PwOp::ReluBackward: return binary(n, d, a, b, [](float g, float y) { return y <= 0.0f ? 0.0f : g; });
    case PwOp::Eq: return binary(n, d, a, b, Eq{});
    case PwOp::Ne: return binary(n, d, a, b, Ne{});
    case PwOp::Lt: return binary(n, d, a, b, Lt{});
    case PwOp::Le: return binary(n, d, a, b, Le{});
    case PwOp::Gt: return binary(n, d, a, b, Gt{});
    case PwOp::Ge: return binary(n, d, a, b, Ge{});
    case PwOp::LogicalAnd: return binary(n, d, a, b, LogicalAnd{});
    case PwOp::LogicalOr: return binary(n, d, a, b, LogicalOr{});
    case PwOp::LogicalXor: return binary(n, d, a, b, LogicalXor{});
    case PwOp::LogicalNot: return unary(n, d, a, [](float x) { return x == 0.0f ? 1.0f : 0.0f; });
    case PwOp::Where:
      for (int64_t i = 0; i < n; ++i) d[i] = a[i] != 0.0f ? b[i] : c[i];
      return;
    case PwOp::Round: {
      const DType t = in.dtype;
      if (t == DType::F32) return unary(n, d, a, [](float x) { return x; });
      for (int64_t i = 0; i < n; ++i) d[i] = round_to(t, a[i]);
      return;
    }
  }
}

struct WorkItem {
  size_t binding;
  int64_t begin, end;
  int part = 0;  // which of a long reduction's per-thread parts
};

// Runs the program over elements [item.begin, item.end) of one binding; returns the sum of
// the reduced register (0 unless the program reduces).
double run_item(const PwProgram& p, const PwBinding& b, const WorkItem& item, std::vector<float>& regs) {
  regs.resize(size_t(p.num_registers() * kBlock));
  auto reg = [&](int r) { return regs.data() + r * kBlock; };
  // Where each register's block is read from: its own storage, or (a full-size f32 input)
  // the tensor's memory itself, which saves copying every input block before reading it.
  std::vector<const float*> src(size_t(p.num_registers()));
  for (int r = 0; r < p.num_registers(); ++r) src[size_t(r)] = reg(r);
  enum class Load : uint8_t { Scalar, Direct, Convert };
  std::vector<Load> load(size_t(p.num_inputs));
  for (int i = 0; i < p.num_inputs; ++i) {
    const Tensor& t = b.inputs[size_t(i)];
    load[size_t(i)] = t.dim() == 0 ? Load::Scalar : t.dtype() == DType::F32 ? Load::Direct : Load::Convert;
    if (load[size_t(i)] == Load::Scalar) std::fill(reg(i), reg(i) + kBlock, load_scalar(t));
  }
  // A reduction adds up as the sum op's row loop does (8 float accumulators across the
  // part, combined pairwise, then the last < 8 elements), so that the fused sum is bit for
  // bit the unfused one.
  float acc[8] = {}, rest[8] = {};
  int n_rest = 0;
  for (int64_t at = item.begin; at < item.end; at += kBlock) {
    const int64_t n = std::min(kBlock, item.end - at);
    for (int i = 0; i < p.num_inputs; ++i) {
      if (load[size_t(i)] == Load::Direct) src[size_t(i)] = static_cast<const float*>(b.inputs[size_t(i)].data()) + at;
      else if (load[size_t(i)] == Load::Convert) load_block(b.inputs[size_t(i)], at, n, reg(i));
    }
    for (size_t k = 0; k < p.code.size(); ++k) {
      const PwInstr& in = p.code[k];
      execute(in, n, reg(p.num_inputs + int(k)), in.a >= 0 ? src[size_t(in.a)] : nullptr,
              in.b >= 0 ? src[size_t(in.b)] : nullptr, in.c >= 0 ? src[size_t(in.c)] : nullptr);
    }
    if (p.reduce_sum) {
      const float* r = src[size_t(p.outputs[0])];
      int64_t i = 0;
      for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) acc[k] += r[i + k];
      for (; i < n; ++i) rest[n_rest++] = r[i];  // only in the part's last block
    } else {
      for (size_t o = 0; o < p.outputs.size(); ++o) store_block(b.outputs[o], at, n, src[size_t(p.outputs[o])]);
    }
  }
  if (!p.reduce_sum) return 0;
  float total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (int k = 0; k < n_rest; ++k) total += rest[k];
  return double(total);
}

// The number of elements a binding's loop runs over: its outputs' (or, for a reduction, its
// full-size inputs') element count.
int64_t domain_size(const PwProgram& p, const PwBinding& b) {
  if (!p.reduce_sum) return b.outputs.at(0).numel();
  int64_t n = 1;
  for (const Tensor& t : b.inputs)
    if (t.dim() > 0) n = std::max(n, t.numel());
  return n;
}

// Boundaries of `runs` runs of consecutive items with near-equal element counts: run r is
// items [starts[r], starts[r + 1]), an item going to the run its first element falls in.
std::vector<int64_t> balanced_runs(const std::vector<WorkItem>& items, int runs) {
  int64_t total = 0;
  for (const WorkItem& it : items) total += it.end - it.begin;
  std::vector<int64_t> starts(size_t(runs) + 1, int64_t(items.size()));
  starts[0] = 0;
  int64_t seen = 0;
  int r = 1;
  for (size_t i = 0; i < items.size(); ++i) {
    while (r < runs && seen >= total * r / runs) starts[size_t(r++)] = int64_t(i);
    seen += items[i].end - items[i].begin;
  }
  return starts;
}

}  // namespace

void run_pointwise_program(const PwProgram& p, const std::vector<PwBinding>& bindings) {
  std::vector<WorkItem> items;
  int64_t total = 0;
  for (size_t k = 0; k < bindings.size(); ++k) {
    const PwBinding& b = bindings[k];
    PACER_CHECK(int(b.inputs.size()) == p.num_inputs && b.outputs.size() == p.outputs.size(),
                "fused pointwise loop: expected {} inputs and {} outputs, got {} and {}", p.num_inputs,
                p.outputs.size(), b.inputs.size(), b.outputs.size());
    const int64_t n = domain_size(p, b);
    // Full-size tensors are walked in memory order: one layout for all of them (contiguous
    // for a reduction, else the first output's, which the pass checked is gap-free).
    const Tensor& ref = p.reduce_sum ? Tensor() : b.outputs[0];
    for (const Tensor& t : b.inputs) {
      const bool laid_out = p.reduce_sum ? t.is_contiguous() : t.strides() == ref.strides();
      PACER_CHECK(t.is_cpu() && (t.dim() == 0 || (t.numel() == n && laid_out)),
                  "fused pointwise loop: an input must be a CPU 0-d tensor or have {} elements laid out as the output, "
                  "got {} {} strides {}",
                  n, t.device(), t.sizes(), t.strides());
    }
    for (const Tensor& t : b.outputs)
      PACER_CHECK(t.is_cpu() && (p.reduce_sum || t.strides() == ref.strides()),
                  "fused pointwise loop: the outputs must be CPU tensors of one layout, got {} strides {}", t.device(),
                  t.strides());
    if (!p.reduce_sum) {
      for (int64_t at = 0; at < n; at += kChunk) items.push_back({k, at, std::min(n, at + kChunk)});
    } else if (n <= kSumSplit) {  // the parts the sum op splits a full reduction into
      items.push_back({k, 0, n});
    } else {
      const int nt = num_threads();
      for (int t = 0; t < nt; ++t) items.push_back({k, n * t / nt, n * (t + 1) / nt, t});
    }
    total += n;
  }
  // Each thread takes a run of consecutive items: ordered by part, the threads share every
  // long reduction instead of one taking the first bindings and another the last (the
  // largest tensors of a network come last). Parts are still summed in order.
  std::stable_sort(items.begin(), items.end(), [](const WorkItem& a, const WorkItem& b) { return a.part < b.part; });
  std::vector<double> partial(items.size(), 0.0);
  auto run_items = [&](int64_t first, int64_t last) {
    std::vector<float> regs;
    for (int64_t i = first; i < last; ++i) {
      const WorkItem& item = items[size_t(i)];
      partial[size_t(i)] = run_item(p, bindings[item.binding], item, regs);
    }
  };
  if (total < ops::cpu::kPointwiseGrain) {
    run_items(0, int64_t(items.size()));
  } else {
    // Runs of equal element counts, not of equal item counts: a reduction's items are whole
    // small tensors and parts of large ones (LARS's norms: the 16 largest of ResNet-50's 54
    // weights hold 3/4 of its elements), so equal counts left one thread ~3x the other's work.
    const std::vector<int64_t> starts = balanced_runs(items, num_threads());
    parallel_for(0, int64_t(starts.size()) - 1, 1, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) run_items(starts[size_t(r)], starts[size_t(r) + 1]);
    });
  }
  if (!p.reduce_sum) return;
  std::vector<double> sums(bindings.size(), 0.0);
  for (size_t i = 0; i < items.size(); ++i) sums[items[i].binding] += partial[i];
  for (size_t k = 0; k < bindings.size(); ++k) {
    const Tensor& out = bindings[k].outputs[0];
    float v = float(sums[k]);
    store_block(out, 0, 1, &v);
  }
}

}  // namespace pacer::graph
