// PyTorch-like printing. Floats share one format per tensor (fixed with 4 decimals, or
// scientific when the magnitudes span too much), and big tensors are summarized.
#include <cmath>
#include <ostream>

#include "core/tensor.h"

namespace pacer {

namespace {

constexpr int64_t kSummarizeOver = 1000;
constexpr int64_t kEdgeItems = 3;

struct FloatFormat {
  bool scientific = false;
  bool integral = true;
};

FloatFormat choose_format(const std::vector<double>& values) {
  FloatFormat f;
  double lo = INFINITY, hi = 0;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    if (v != std::floor(v)) f.integral = false;
    double a = std::fabs(v);
    if (a > 0) lo = std::min(lo, a);
    hi = std::max(hi, a);
  }
  if (hi > 0 && (hi / lo > 1000.0 || hi > 1e8 || (!f.integral && lo < 1e-4))) f.scientific = true;
  return f;
}

std::string format_value(double v, DType dtype, const FloatFormat& f) {
  if (dtype == DType::Bool) return v != 0 ? "True" : "False";
  if (!is_floating(dtype)) return fmt::format("{}", int64_t(v));
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (f.scientific) return fmt::format("{:.4e}", v);
  if (f.integral) return fmt::format("{:.0f}.", v);
  return fmt::format("{:.4f}", v);
}

// Values are right-aligned to the widest one, as PyTorch prints them.
std::string padded(double v, DType dtype, const FloatFormat& f, size_t width) {
  std::string s = format_value(v, dtype, f);
  return s.size() < width ? std::string(width - s.size(), ' ') + s : s;
}

void print_dim(std::string& out, const Tensor& t, const std::vector<double>& flat, int64_t d, int64_t base,
               bool summarize, const FloatFormat& f, size_t indent, size_t width) {
  if (t.dim() == 0) {
    out += format_value(flat[0], t.dtype(), f);
    return;
  }
  const int64_t n = t.size(d);
  out += '[';
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
      out += "...,";
      if (d + 1 == t.dim()) {
        out += ' ';
      } else {
        out += '\n';
        out.append(indent + 1, ' ');
      }
      i = n - kEdgeItems;
    }
    if (d + 1 == t.dim()) {
      out += padded(flat[size_t(base + i)], t.dtype(), f, width);
      if (i + 1 < n) out += ", ";
    } else {
      print_dim(out, t, flat, d + 1, (base + i) * t.size(d + 1), summarize, f, indent + 1, width);
      if (i + 1 < n) {
        out += ',';
        out.append(size_t(t.dim() - d - 1), '\n');
        out.append(indent + 1, ' ');
      }
    }
  }
  out += ']';
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  if (!is_cpu()) return fmt::format("tensor(<{} elements on {}>, dtype={})", numel(), device(), dtype());
  std::vector<double> flat = to_vector<double>();
  // print_dim indexes `flat` row-major with base*size(d+1): fine because the flat vector
  // is the logical row-major order.
  std::string body;
  if (numel() == 0) {
    body = "[]";
  } else {
    FloatFormat f = choose_format(flat);
    size_t width = 0;
    for (double v : flat) width = std::max(width, format_value(v, dtype(), f).size());
    print_dim(body, *this, flat, 0, 0, numel() > kSummarizeOver, f, 7, width);
  }
  std::string out = "tensor(" + body;
  if (numel() == 0 && dim() != 1) {
    out += ", size=(";
    for (int64_t d = 0; d < dim(); ++d) {
      if (d) out += ", ";
      out += fmt::format("{}", sizes()[size_t(d)]);
    }
    out += dim() == 1 ? ",)" : ")";
  }
  if (!device().is_cpu()) out += fmt::format(", device='{}'", device());
  const bool default_dtype = dtype() == DType::F32 || dtype() == DType::I64 || dtype() == DType::Bool;
  if (!default_dtype) out += fmt::format(", dtype={}", dtype());
  if (requires_grad()) out += ", requires_grad=True";
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace pacer
