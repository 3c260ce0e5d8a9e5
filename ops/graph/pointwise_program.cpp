#include "ops/graph/pointwise_program.h"

#include <fmt/format.h>

#include <map>

namespace pacer::graph {

namespace {

const char* op_name(PwOp op) {
  switch (op) {
    case PwOp::Add: return "add";
    case PwOp::Sub: return "sub";
    case PwOp::Mul: return "mul";
    case PwOp::Div: return "div";
    case PwOp::AddScaled: return "add_scaled";
    case PwOp::Maximum: return "maximum";
    case PwOp::Minimum: return "minimum";
    case PwOp::PowScalar: return "pow";
    case PwOp::Neg: return "neg";
    case PwOp::Exp: return "exp";
    case PwOp::Log: return "log";
    case PwOp::Sqrt: return "sqrt";
    case PwOp::Rsqrt: return "rsqrt";
    case PwOp::Abs: return "abs";
    case PwOp::Relu: return "relu";
    case PwOp::Sigmoid: return "sigmoid";
    case PwOp::Tanh: return "tanh";
    case PwOp::ReluBackward: return "relu_backward";
    case PwOp::Eq: return "eq";
    case PwOp::Ne: return "ne";
    case PwOp::Lt: return "lt";
    case PwOp::Le: return "le";
    case PwOp::Gt: return "gt";
    case PwOp::Ge: return "ge";
    case PwOp::LogicalAnd: return "and";
    case PwOp::LogicalOr: return "or";
    case PwOp::LogicalXor: return "xor";
    case PwOp::LogicalNot: return "not";
    case PwOp::Where: return "where";
    case PwOp::Round: return "round";
  }
  return "?";
}

}  // namespace

std::string PwProgram::text() const {
  std::string s;
  for (size_t i = 0; i < code.size(); ++i) {
    const PwInstr& in = code[i];
    s += fmt::format("r{} = {}(", num_inputs + int(i), op_name(in.op));
    std::string args;
    for (int r : {in.a, in.b, in.c})
      if (r >= 0) args += (args.empty() ? "" : ", ") + fmt::format("r{}", r);
    s += args;
    if (in.op == PwOp::AddScaled || in.op == PwOp::PowScalar) s += fmt::format("; {}", in.scalar);
    if (in.op == PwOp::Round) s += fmt::format("; {}", in.dtype);
    s += "); ";
  }
  s += reduce_sum ? "sum" : "out";
  for (int r : outputs) s += fmt::format(" r{}", r);
  return s;
}

bool pointwise_dtype(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::Bool;
}

std::optional<PwInstr> pointwise_instr(const ops::OpDef& op, const ops::Attrs& attrs) {
  static const std::map<std::string, PwOp> kByName = {
      {"add", PwOp::Add},          {"sub", PwOp::Sub},
      {"mul", PwOp::Mul},          {"mul_", PwOp::Mul},
      {"div", PwOp::Div},          {"maximum", PwOp::Maximum},
      {"minimum", PwOp::Minimum},  {"neg", PwOp::Neg},
      {"exp", PwOp::Exp},          {"log", PwOp::Log},
      {"sqrt", PwOp::Sqrt},        {"rsqrt", PwOp::Rsqrt},
      {"abs", PwOp::Abs},          {"relu", PwOp::Relu},
      {"sigmoid", PwOp::Sigmoid},  {"tanh", PwOp::Tanh},
      {"relu_backward", PwOp::ReluBackward},
      {"eq", PwOp::Eq},            {"ne", PwOp::Ne},
      {"lt", PwOp::Lt},            {"le", PwOp::Le},
      {"gt", PwOp::Gt},            {"ge", PwOp::Ge},
      {"logical_and", PwOp::LogicalAnd}, {"logical_or", PwOp::LogicalOr},
      {"logical_xor", PwOp::LogicalXor}, {"logical_not", PwOp::LogicalNot},
      {"where", PwOp::Where},
  };
  PwInstr in;
  if (op.name == "add_") {
    const Scalar& alpha = attrs.scalar("alpha");
    in.op = PwOp::AddScaled;
    in.scalar = alpha.to_double();
    if (alpha.is_integral() && alpha.to_int() == 1) in.op = PwOp::Add;  // as the add_ kernel does
    return in;
  }
  if (op.name == "pow_scalar") {
    in.op = PwOp::PowScalar;
    in.scalar = attrs.scalar("exponent").to_double();
    return in;
  }
  if (op.name == "cast") {
    in.op = PwOp::Round;
    in.dtype = attrs.dtype("dtype");
    if (!pointwise_dtype(in.dtype)) return std::nullopt;
    return in;
  }
  auto it = kByName.find(op.name);
  if (it == kByName.end()) return std::nullopt;
  in.op = it->second;
  return in;
}

}  // namespace pacer::graph
