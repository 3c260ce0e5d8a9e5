// Losses with torch's semantics: cross_entropy, nll_loss, smooth_l1_loss, bce_with_logits,
// mse_loss. All decompose into other ops (log_softmax, gather, where, sum, ...), so they
// are differentiable without kernels of their own. Half-precision inputs are computed in
// f32 (DESIGN §6) and the result is returned in the inputs' promoted dtype.
#include <string>

#include "core/host_reads.h"
#include "ops/defs/common.h"

namespace pacer {
using namespace ops;

namespace {

enum class Reduction { None, Sum, Mean };

Reduction parse_reduction(const std::string& r, const char* fn) {
  if (r == "none") return Reduction::None;
  if (r == "sum") return Reduction::Sum;
  PACER_CHECK(r == "mean", "{}: expected reduction 'mean', 'sum' or 'none', got '{}'", fn, r);
  return Reduction::Mean;
}

Tensor up(const Tensor& t) { return t.defined() && is_half(t.dtype()) ? cast(t, DType::F32) : t; }
Tensor down(const Tensor& t, DType dtype) { return is_half(dtype) ? cast(t, dtype) : t; }

Tensor apply_reduction(const Tensor& loss, Reduction r) {
  if (r == Reduction::None) return loss;
  return r == Reduction::Sum ? sum(loss) : mean(loss);
}

void check_floating_arg(const Tensor& t, const char* fn, const char* what) {
  PACER_CHECK(is_floating(t.dtype()), "{}: expected a floating {} (float32/64, float16, bfloat16), got {}", fn, what,
              t.dtype());
}

// x and y of one shape, both floating (torch broadcasts some of these with a warning that
// it is likely a mistake; here it is an error).
DType check_pair(const Tensor& x, const Tensor& y, const char* fn) {
  check_floating_arg(x, fn, "input");
  check_floating_arg(y, fn, "target");
  PACER_CHECK(x.sizes() == y.sizes(), "{}: expected a target of the input's shape {}, got shape {}", fn, x.sizes(),
              y.sizes());
  return result_type({x, y});
}

// Per-element nll of logp [N, C, d...] (or [C]) at class indices target [N, d...] (or []),
// zero where target == ignore_index; also returns the mask of counted targets.
std::pair<Tensor, Tensor> nll_elements(const Tensor& logp, const Tensor& target, int64_t ignore_index, const char* fn) {
  check_floating_arg(logp, fn, "input");
  PACER_CHECK(logp.dim() >= 1, "{}: expected an input [N, C, d...] or [C], got a 0-d tensor", fn);
  PACER_CHECK(target.dtype() == DType::I64 || target.dtype() == DType::I32,
              "{}: expected int64 (or int32) class-index targets, got {}", fn, target.dtype());
  Shape want = logp.sizes();
  const int64_t cdim = logp.dim() == 1 ? 0 : 1;
  want.erase(size_t(cdim));
  PACER_CHECK(target.sizes() == want, "{}: expected a target of shape {} for an input of shape {}, got shape {}", fn,
              want, logp.sizes(), target.sizes());
  const int64_t C = logp.size(cdim);
  if (target.is_cpu()) {
    // A check, not part of the result: allowed while a graph is captured (its replays
    // skip it; the gather kernel still refuses an index out of range).
    AllowHostReads check_only;
    for (int64_t k : target.to_vector<int64_t>())
      PACER_CHECK(k == ignore_index || (k >= 0 && k < C),
                  "{}: target {} is out of range for {} classes (expected 0 <= target < {} or ignore_index {})", fn, k,
                  C, C, ignore_index);
  }
  Tensor ignored = eq(target, wrap(ignore_index));
  Tensor safe = where(ignored, wrap(int64_t(0)), target);
  Tensor picked = squeeze(gather(logp, cdim, unsqueeze(safe, cdim)), cdim);
  Tensor loss = where(ignored, wrap(0.0), neg(picked));
  return {loss, logical_not(ignored)};
}

// "mean" divides by the number of counted targets (nan when there are none, as torch).
Tensor reduce_counted(const Tensor& loss, const Tensor& counted, Reduction r) {
  if (r != Reduction::Mean) return apply_reduction(loss, r);
  return sum(loss) / sum(cast(counted, loss.dtype()));
}

}  // namespace

Tensor nll_loss(const Tensor& logp, const Tensor& target, const std::string& reduction, int64_t ignore_index) {
  const Reduction r = parse_reduction(reduction, "nll_loss");
  auto [loss, counted] = nll_elements(up(logp), target, ignore_index, "nll_loss");
  return down(reduce_counted(loss, counted, r), logp.dtype());
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const std::string& reduction, int64_t ignore_index,
                     double label_smoothing) {
  const Reduction r = parse_reduction(reduction, "cross_entropy");
  check_floating_arg(logits, "cross_entropy", "input");
  PACER_CHECK(label_smoothing >= 0 && label_smoothing <= 1,
              "cross_entropy: expected label_smoothing in [0, 1], got {}", label_smoothing);
  PACER_CHECK(logits.dim() >= 1, "cross_entropy: expected an input [N, C, d...] or [C], got a 0-d tensor");
  const int64_t cdim = logits.dim() == 1 ? 0 : 1;
  Tensor logp = log_softmax(up(logits), cdim);
  auto [loss, counted] = nll_elements(logp, target, ignore_index, "cross_entropy");
  if (label_smoothing > 0) {
    Tensor smooth = where(counted, neg(mean(logp, {cdim})), wrap(0.0));
    loss = loss * (1.0 - label_smoothing) + smooth * label_smoothing;
  }
  return down(reduce_counted(loss, counted, r), logits.dtype());
}

Tensor smooth_l1_loss(const Tensor& x, const Tensor& y, const std::string& reduction, double beta) {
  const Reduction r = parse_reduction(reduction, "smooth_l1_loss");
  const DType out = check_pair(x, y, "smooth_l1_loss");
  PACER_CHECK(beta >= 0, "smooth_l1_loss: expected beta >= 0, got {}", beta);
  Tensor d = abs(up(x) - up(y));
  Tensor loss = beta == 0 ? d : where(lt(d, wrap(beta)), d * d * (0.5 / beta), d - 0.5 * beta);
  return down(apply_reduction(loss, r), out);
}

// (1 - y) x + (1 + (pw - 1) y) (log(1 + exp(-|x|)) + max(-x, 0)): no exp of a positive number.
Tensor bce_with_logits(const Tensor& x, const Tensor& y, const Tensor& pos_weight, const std::string& reduction) {
  const Reduction r = parse_reduction(reduction, "bce_with_logits");
  DType out = check_pair(x, y, "bce_with_logits");
  if (pos_weight.defined()) {
    check_floating_arg(pos_weight, "bce_with_logits", "pos_weight");
    bool fits = pos_weight.dim() <= x.dim();
    for (int64_t k = 1; fits && k <= pos_weight.dim(); ++k)
      fits = pos_weight.size(-k) == 1 || pos_weight.size(-k) == x.size(-k);
    PACER_CHECK(fits, "bce_with_logits: expected a pos_weight that broadcasts to the input's shape {} (e.g. [{}]), got shape {}",
                x.sizes(), x.dim() > 0 ? x.size(-1) : 1, pos_weight.sizes());
    out = result_type({x, y, pos_weight});
  }
  Tensor xf = up(x), yf = up(y);
  Tensor softplus_neg = log(1.0 + exp(neg(abs(xf)))) + relu(neg(xf));  // log(1 + exp(-x))
  Tensor weight = pos_weight.defined() ? 1.0 + (up(pos_weight) - 1.0) * yf : Tensor();
  Tensor loss = (1.0 - yf) * xf + (weight.defined() ? weight * softplus_neg : softplus_neg);
  return down(apply_reduction(loss, r), out);
}

Tensor mse_loss(const Tensor& x, const Tensor& y, const std::string& reduction) {
  const Reduction r = parse_reduction(reduction, "mse_loss");
  const DType out = check_pair(x, y, "mse_loss");
  Tensor d = up(x) - up(y);
  return down(apply_reduction(d * d, r), out);
}

}  // namespace pacer
