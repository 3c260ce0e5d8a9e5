#pragma once
/// The program of a fused pointwise kernel: a straight-line list of elementwise
/// instructions over registers, evaluated for every element of one domain (the fused ops'
/// common output shape). Registers 0..num_inputs-1 hold the inputs (a tensor of the domain's
/// shape, or a 0-d tensor broadcast as a scalar); instruction i writes register
/// num_inputs + i. Values are computed in float whatever the tensors' dtypes (f32, f16,
/// bf16, bool), as the unfused kernels compute them; an explicit cast rounds to its dtype.
///
/// The same program can run over several sets of tensors at once (the multi-tensor form
/// the optimizer's per-parameter updates become): one parallel loop over all of them.

#include <optional>
#include <string>
#include <vector>

#include "ops/op_def.h"

namespace pacer::graph {

enum class PwOp : uint8_t {
  Add, Sub, Mul, Div, AddScaled, Maximum, Minimum, PowScalar,
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Relu, Sigmoid, Tanh, ReluBackward,
  Eq, Ne, Lt, Le, Gt, Ge, LogicalAnd, LogicalOr, LogicalXor, LogicalNot,
  Where, Round,
};

struct PwInstr {
  PwOp op = PwOp::Add;
  int a = -1, b = -1, c = -1;  // operand registers
  double scalar = 0;           // AddScaled's alpha, PowScalar's exponent
  DType dtype = DType::F32;    // Round's target dtype
};

struct PwProgram {
  int num_inputs = 0;
  std::vector<PwInstr> code;
  std::vector<int> outputs;  // the register stored into each output
  /// One output: the sum of its register over the whole domain (a 0-d result).
  bool reduce_sum = false;

  int num_registers() const { return num_inputs + int(code.size()); }
  /// Text form, "r2 = mul(r0, r1); r3 = relu(r2); out r3": also the key under which
  /// programs count as the same.
  std::string text() const;
};

/// The instruction an op call becomes inside a fused loop (operands not yet set), or none
/// when the fused loop does not compute that op (or not for these attributes).
std::optional<PwInstr> pointwise_instr(const ops::OpDef& op, const ops::Attrs& attrs);

/// Whether the fused loop loads and stores tensors of this dtype (f32, f16, bf16, bool).
bool pointwise_dtype(DType t);

/// One set of tensors a program runs over: inputs (of the domain's shape, contiguous, or
/// 0-d) and outputs (of the domain's shape, contiguous; 0-d for a reduction).
struct PwBinding {
  std::vector<Tensor> inputs, outputs;
};

/// Runs the program over every binding in one parallel loop (CPU tensors). An output may
/// be the same tensor as an input (an in-place update): each element is loaded before it
/// is stored.
void run_pointwise_program(const PwProgram& program, const std::vector<PwBinding>& bindings);

}  // namespace pacer::graph
