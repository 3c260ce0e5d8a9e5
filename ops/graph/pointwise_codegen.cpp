#include "ops/graph/pointwise_codegen.h"

#include <fmt/format.h>

#include <cstring>

namespace pacer::graph {

namespace {

// Conversions without cuda_fp16.h / cuda_bf16.h (NVRTC gets no include path): PTX's cvt for
// f16, and the same round-to-nearest-even as core/half.h for bf16.
constexpr const char* kPrelude = R"(typedef unsigned short pacer_u16;
__device__ __forceinline__ float pacer_h2f(pacer_u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ pacer_u16 pacer_f2h(float f) { pacer_u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ float pacer_b2f(pacer_u16 b) { return __uint_as_float(((unsigned)b) << 16); }
__device__ __forceinline__ pacer_u16 pacer_f2b(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (pacer_u16)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (pacer_u16)(u >> 16);
}
)";

std::string float_literal(double v) {
  const float f = float(v);
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return fmt::format("__uint_as_float(0x{:08x}u)", bits);
}

std::string load(DType t, const std::string& ptr, const std::string& index) {
  switch (t) {
    case DType::F32: return fmt::format("((const float*){})[{}]", ptr, index);
    case DType::F64: return fmt::format("(float)((const double*){})[{}]", ptr, index);
    case DType::F16: return fmt::format("pacer_h2f(((const pacer_u16*){})[{}])", ptr, index);
    case DType::BF16: return fmt::format("pacer_b2f(((const pacer_u16*){})[{}])", ptr, index);
    case DType::Bool:
    case DType::U8: return fmt::format("(((const unsigned char*){})[{}] != 0 ? 1.0f : 0.0f)", ptr, index);
    case DType::I32: return fmt::format("(float)((const int*){})[{}]", ptr, index);
    case DType::I64: return fmt::format("(float)((const long long*){})[{}]", ptr, index);
  }
  PACER_FAIL("cuda_pointwise_source: cannot load {}", t);
}

std::string store(DType t, const std::string& ptr, const std::string& index, const std::string& v) {
  switch (t) {
    case DType::F32: return fmt::format("((float*){})[{}] = {};", ptr, index, v);
    case DType::F16: return fmt::format("((pacer_u16*){})[{}] = pacer_f2h({});", ptr, index, v);
    case DType::BF16: return fmt::format("((pacer_u16*){})[{}] = pacer_f2b({});", ptr, index, v);
    case DType::Bool: return fmt::format("((unsigned char*){})[{}] = {} != 0.0f ? 1 : 0;", ptr, index, v);
    default: PACER_FAIL("cuda_pointwise_source: cannot store {}", t);
  }
}

std::string round_to(DType t, const std::string& a) {
  switch (t) {
    case DType::F16: return fmt::format("pacer_h2f(pacer_f2h({}))", a);
    case DType::BF16: return fmt::format("pacer_b2f(pacer_f2b({}))", a);
    case DType::Bool: return fmt::format("({} != 0.0f ? 1.0f : 0.0f)", a);
    default: return a;
  }
}

// The expression of one instruction; the same math as ops/common/pointwise_math.h.
std::string expression(const PwInstr& in) {
  const std::string a = fmt::format("r{}", in.a), b = fmt::format("r{}", in.b), c = fmt::format("r{}", in.c);
  auto truth = [](const std::string& e) { return fmt::format("(({}) ? 1.0f : 0.0f)", e); };
  switch (in.op) {
    case PwOp::Add: return a + " + " + b;
    case PwOp::Sub: return a + " - " + b;
    case PwOp::Mul: return a + " * " + b;
    case PwOp::Div: return a + " / " + b;
    case PwOp::AddScaled: return fmt::format("{} + {} * {}", a, float_literal(in.scalar), b);
    case PwOp::Maximum: return fmt::format("({0} != {0} || {1} != {1}) ? {0} + {1} : ({0} > {1} ? {0} : {1})", a, b);
    case PwOp::Minimum: return fmt::format("({0} != {0} || {1} != {1}) ? {0} + {1} : ({0} < {1} ? {0} : {1})", a, b);
    case PwOp::PowScalar:
      return float(in.scalar) == 2.0f ? a + " * " + a : fmt::format("powf({}, {})", a, float_literal(in.scalar));
    case PwOp::Neg: return "-" + a;
    case PwOp::Exp: return fmt::format("expf({})", a);
    case PwOp::Log: return fmt::format("logf({})", a);
    case PwOp::Sqrt: return fmt::format("sqrtf({})", a);
    case PwOp::Rsqrt: return fmt::format("1.0f / sqrtf({})", a);
    case PwOp::Abs: return fmt::format("({0} < 0.0f ? -{0} : {0})", a);
    case PwOp::Relu: return fmt::format("({0} < 0.0f ? 0.0f : {0})", a);
    case PwOp::Sigmoid: return fmt::format("1.0f / (1.0f + expf(-{}))", a);
    case PwOp::Tanh: return fmt::format("tanhf({})", a);
    case PwOp::ReluBackward: return fmt::format("({1} <= 0.0f ? 0.0f : {0})", a, b);
    case PwOp::Eq: return truth(a + " == " + b);
    case PwOp::Ne: return truth(a + " != " + b);
    case PwOp::Lt: return truth(a + " < " + b);
    case PwOp::Le: return truth(a + " <= " + b);
    case PwOp::Gt: return truth(a + " > " + b);
    case PwOp::Ge: return truth(a + " >= " + b);
    case PwOp::LogicalAnd: return truth(fmt::format("{} != 0.0f && {} != 0.0f", a, b));
    case PwOp::LogicalOr: return truth(fmt::format("{} != 0.0f || {} != 0.0f", a, b));
    case PwOp::LogicalXor: return truth(fmt::format("({} != 0.0f) != ({} != 0.0f)", a, b));
    case PwOp::LogicalNot: return truth(a + " == 0.0f");
    case PwOp::Where: return fmt::format("({} != 0.0f ? {} : {})", a, b, c);
    case PwOp::Round: return round_to(in.dtype, a);
  }
  PACER_FAIL("cuda_pointwise_source: unknown instruction");
}

}  // namespace

std::string cuda_pointwise_source(const PwProgram& p, const PwSignature& sig, const std::string& name) {
  const int ni = p.num_inputs, no = int(p.outputs.size());
  PACER_CHECK(int(sig.input_dtypes.size()) == ni && int(sig.input_kinds.size()) == ni &&
                  int(sig.output_dtypes.size()) == no,
              "cuda_pointwise_source: the signature has {} inputs and {} outputs, the program {} and {}",
              sig.input_dtypes.size(), sig.output_dtypes.size(), ni, no);
  std::string s = kPrelude;
  s += fmt::format("struct Binding {{ const void* in[{}]; float value[{}]; void* out[{}]; long long n; }};\n", ni, ni, no);
  s += "struct Chunk { int binding; long long begin, end; };\n";
  // The body: inputs into registers, one statement per instruction.
  std::string body;
  for (int k = 0; k < ni; ++k) {
    std::string v;
    switch (sig.input_kinds[size_t(k)]) {
      case PwInputKind::Tensor: v = load(sig.input_dtypes[size_t(k)], fmt::format("b.in[{}]", k), "i"); break;
      case PwInputKind::DeviceScalar: v = load(sig.input_dtypes[size_t(k)], fmt::format("b.in[{}]", k), "0"); break;
      case PwInputKind::HostScalar: v = fmt::format("b.value[{}]", k); break;
    }
    body += fmt::format("    const float r{} = {};\n", k, v);
  }
  for (size_t k = 0; k < p.code.size(); ++k)
    body += fmt::format("    const float r{} = {};\n", ni + int(k), expression(p.code[k]));
  if (!p.reduce_sum) {
    s += fmt::format("extern \"C\" __global__ void {}(const Binding* table, const Chunk* chunks) {{\n", name);
    // The binding copied into registers: stores through b.out cannot then alias the table, so
    // its pointers are not read again for every element.
    s += "  const Chunk c = chunks[blockIdx.x];\n  const Binding b = table[c.binding];\n";
    s += "  for (long long i = c.begin + threadIdx.x; i < c.end; i += blockDim.x) {\n" + body;
    for (int o = 0; o < no; ++o)
      s += "    " + store(sig.output_dtypes[size_t(o)], fmt::format("b.out[{}]", o), "i", fmt::format("r{}", p.outputs[size_t(o)])) + "\n";
    s += "  }\n}\n";
    return s;
  }
  // Reduction: each block sums its chunk in double (a tree in shared memory, 256 threads),
  // then `_finish` adds each binding's chunk sums in chunk order.
  s += fmt::format("extern \"C\" __global__ void {}(const Binding* table, const Chunk* chunks, double* partial) {{\n", name);
  s += "  __shared__ double acc[256];\n  const Chunk c = chunks[blockIdx.x];\n  const Binding b = table[c.binding];\n";
  s += "  double sum = 0;\n";
  s += "  for (long long i = c.begin + threadIdx.x; i < c.end; i += blockDim.x) {\n" + body;
  s += fmt::format("    sum += (double)r{};\n  }}\n", p.outputs[0]);
  s += "  acc[threadIdx.x] = sum;\n  __syncthreads();\n";
  s += "  for (int w = 128; w > 0; w >>= 1) {\n    if ((int)threadIdx.x < w) acc[threadIdx.x] += acc[threadIdx.x + w];\n"
       "    __syncthreads();\n  }\n";
  s += "  if (threadIdx.x == 0) partial[blockIdx.x] = acc[0];\n}\n";
  s += fmt::format("extern \"C\" __global__ void {}_finish(const Binding* table, const Chunk* chunks, int num_chunks, int "
                   "num_bindings, const double* partial) {{\n",
                   name);
  s += "  const int k = blockIdx.x * blockDim.x + threadIdx.x;\n  if (k >= num_bindings) return;\n";
  s += "  double total = 0;\n  for (int j = 0; j < num_chunks; ++j)\n    if (chunks[j].binding == k) total += partial[j];\n";
  s += "  const Binding& b = table[k];\n  const float r = (float)total;\n";
  s += "  " + store(sig.output_dtypes[0], "b.out[0]", "0", "r") + "\n}\n";
  return s;
}

}  // namespace pacer::graph
