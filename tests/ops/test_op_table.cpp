// Drives every row of the op test table through its checks (DESIGN §9).
#include <doctest/doctest.h>

#include "tests/ops/op_table.h"

namespace pacer::test {

namespace {

const std::vector<OpCase>& rows() {
  static const std::vector<OpCase> r = all_rows();
  return r;
}

std::vector<Tensor> cast_floating(const std::vector<Tensor>& in, DType dt) {
  std::vector<Tensor> out;
  for (const Tensor& t : in) out.push_back(is_floating(t.dtype()) ? cast(t, dt) : t);
  return out;
}

// Largest |a - b| / (1 + |b|) — a mixed absolute/relative error.
double max_error(const ref::Arr& got, const ref::Arr& want) {
  double worst = 0;
  for (size_t i = 0; i < want.v.size(); ++i) {
    const double a = got.v[i], b = want.v[i];
    if (std::isnan(a) && std::isnan(b)) continue;
    if (a == b) continue;
    worst = std::max(worst, std::fabs(a - b) / (1 + std::fabs(b)));
    if (std::isnan(a) || std::isnan(b)) worst = INFINITY;
  }
  return worst;
}

void check_close(const Tensor& got, const ref::Arr& want, double tol, const std::string& what) {
  REQUIRE_MESSAGE(got.sizes() == want.sizes, what << ": shape " << fmt::format("{}", got.sizes()) << " expected "
                                                   << fmt::format("{}", want.sizes));
  const double err = max_error(ref::of(got), want);
  CHECK_MESSAGE(err <= tol, what << ": max error " << err << " > tolerance " << tol);
}

std::vector<ref::Arr> refs(const std::vector<Tensor>& in) {
  std::vector<ref::Arr> r;
  for (const Tensor& t : in) r.push_back(ref::of(t));
  return r;
}

// Same values, but every floating input of rank >= 1 is a strided view (every other
// element of a wider buffer), so kernels see non-contiguous memory.
std::vector<Tensor> strided_copies(const std::vector<Tensor>& in) {
  std::vector<Tensor> out;
  NoGradGuard no_grad;
  for (const Tensor& t : in) {
    if (!is_floating(t.dtype()) || t.dim() == 0) {
      out.push_back(t);
      continue;
    }
    Shape wide = t.sizes();
    wide.back() *= 2;
    Tensor buf = zeros(wide, {.dtype = t.dtype()});
    Tensor v = slice(buf, -1, 0, wide.back(), 2);
    copy_(v, t);
    out.push_back(make_view(v, v.sizes(), v.strides(), v.storage_offset()));
  }
  return out;
}

}  // namespace

TEST_CASE("op table: forward matches the f64 reference") {
  for (const OpCase& row : rows()) {
    if (row.custom) continue;
    INFO("row: " << row.name);
    auto in = row.inputs();
    Tensor out = row.run(in);
    check_close(out.to(DType::F64), row.reference(refs(in)), row.tol, row.name + " f64");
  }
}

TEST_CASE("op table: gradcheck (f64 central differences)") {
  for (const OpCase& row : rows()) {
    if (row.custom || !row.grad) continue;
    INFO("row: " << row.name);
    std::vector<Tensor> in;
    bool any = false;
    auto raw = row.inputs();
    for (size_t i = 0; i < raw.size(); ++i) {
      Tensor leaf = detach(raw[i]);
      if (is_floating(leaf.dtype()) && (row.grad_mask >> i & 1u)) {
        leaf = clone(leaf);
        leaf.set_requires_grad();
        any = true;
      }
      in.push_back(leaf);
    }
    if (!any) continue;
    auto result = autograd::gradcheck(row.run, in, row.grad_options);
    CHECK_MESSAGE(result.ok, row.name << ": " << result.message);
  }
}

TEST_CASE("op table: f32, f16 and bf16 runs stay within their tolerances") {
  for (const OpCase& row : rows()) {
    if (row.custom || !row.half) continue;
    INFO("row: " << row.name);
    auto in = row.inputs();
    for (auto [dt, tol] : {std::pair{DType::F32, row.tol_f32}, std::pair{DType::F16, row.tol_f16},
                           std::pair{DType::BF16, row.tol_bf16}}) {
      auto low = cast_floating(in, dt);
      Tensor out = row.run(low);
      if (is_floating(out.dtype())) {
        bool any_float_in = false;
        for (const Tensor& t : in) any_float_in = any_float_in || is_floating(t.dtype());
        if (any_float_in) CHECK_MESSAGE(out.dtype() == dt, row.name << ": output dtype " << dtype_name(out.dtype()));
      }
      // Reference on the rounded inputs, so the tolerance measures the op alone.
      check_close(out.to(DType::F64), row.reference(refs(cast_floating(low, DType::F64))), tol,
                  row.name + " " + std::string(dtype_name(dt)));
    }
  }
}

TEST_CASE("op table: non-contiguous inputs give the same result") {
  for (const OpCase& row : rows()) {
    if (row.custom) continue;
    INFO("row: " << row.name);
    auto in = row.inputs();
    Tensor dense = row.run(in).to(DType::F64);
    Tensor strided = row.run(strided_copies(in)).to(DType::F64);
    check_close(strided, ref::of(dense), 1e-12, row.name + " strided");
  }
}

TEST_CASE("op table: error inputs give their messages") {
  for (const OpCase& row : rows()) {
    INFO("row: " << row.name);
    for (const ErrorCase& e : row.errors) {
      bool threw = false;
      try {
        e.call();
      } catch (const Error& err) {
        threw = true;
        const std::string msg = err.what();
        CHECK_MESSAGE(msg.find(e.expect) != std::string::npos,
                      row.name << ": message '" << msg << "' lacks '" << e.expect << "'");
      }
      CHECK_MESSAGE(threw, row.name << ": expected an error containing '" << e.expect << "'");
    }
  }
}

TEST_CASE("op table: property rows (random factories)") {
  for (const OpCase& row : rows()) {
    if (!row.custom) continue;
    INFO("row: " << row.name);
    row.custom();
  }
}

}  // namespace pacer::test
