#pragma once
/// The public op API: one line per op (DESIGN §3). Every function here goes through the
/// dispatcher, so it checks its inputs, records autograd and runs on the inputs' device.
/// Dimensions may be negative (counted from the end), as in PyTorch.

#include <optional>
#include <vector>

#include "core/generator.h"
#include "core/tensor.h"

namespace pacer {

using DimList = Shape;

// --- factories ---------------------------------------------------------------------
Tensor zeros(const Shape& sizes, Options options = {});
Tensor ones(const Shape& sizes, Options options = {});
Tensor full(const Shape& sizes, Scalar value, Options options = {});
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, Scalar value);
/// [start, end) in steps of `step`; dtype defaults to i64 for integral arguments.
Tensor arange(Scalar start, Scalar end, Scalar step = 1, std::optional<DType> dtype = {}, Device device = kCPU);
Tensor arange(Scalar end, std::optional<DType> dtype = {}, Device device = kCPU);
/// `steps` evenly spaced values from start to end inclusive.
Tensor linspace(double start, double end, int64_t steps, Options options = {});
/// Uniform [0, 1), standard normal, integers in [low, high): Philox streams (DESIGN §2).
Tensor rand(const Shape& sizes, Options options = {}, Generator* gen = nullptr);
Tensor randn(const Shape& sizes, Options options = {}, Generator* gen = nullptr);
Tensor randint(int64_t low, int64_t high, const Shape& sizes, Options options = {.dtype = DType::I64},
               Generator* gen = nullptr);

// --- pointwise unary ---------------------------------------------------------------
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor sign(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
/// approximate: "none" (erf, the default) or "tanh".
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max);
Tensor logical_not(const Tensor& x);
/// Converts to `dtype` (differentiable between floating types).
Tensor cast(const Tensor& x, DType dtype);

// --- pointwise binary / ternary (broadcasting, PyTorch type promotion) -------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, Scalar exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_xor(const Tensor& a, const Tensor& b);
/// cond ? a : b, elementwise (cond is bool).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
/// A number as a tensor for binary ops (a wrapped number, PyTorch's promotion).
Tensor wrap(Scalar s);

// --- reductions (dims empty = all dims) --------------------------------------------
Tensor sum(const Tensor& x, const DimList& dims = {}, bool keepdim = false, std::optional<DType> dtype = {});
Tensor mean(const Tensor& x, const DimList& dims = {}, bool keepdim = false);
/// Largest element overall.
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
/// Largest along `dim`: (values, indices).
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);
/// Variance with Bessel's correction by default (correction = 1), as torch.var.
Tensor var(const Tensor& x, const DimList& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const DimList& dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const DimList& dims, bool keepdim = false);
/// p-norm over dims (p = 2 by default; p = 1 and inf supported).
Tensor norm(const Tensor& x, double p = 2.0, const DimList& dims = {}, bool keepdim = false);

// --- linear algebra -----------------------------------------------------------------
/// [m, k] x [k, n].
Tensor mm(const Tensor& a, const Tensor& b);
/// [b, m, k] x [b, k, n].
Tensor bmm(const Tensor& a, const Tensor& b);
/// torch.matmul: 1-D, 2-D and broadcast batched operands.
Tensor matmul(const Tensor& a, const Tensor& b);
/// x @ weight^T + bias (weight [out, in]; bias [out] or undefined).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// --- convolution and pooling (NCHW logical shapes) ----------------------------------
/// 2-d convolution: x [N, C, H, W], weight [K, C / groups, kh, kw], bias [K] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Shape& stride = {1, 1},
              const Shape& padding = {0, 0}, const Shape& dilation = {1, 1}, int64_t groups = 1);
/// Transposed convolution (the adjoint of conv2d w.r.t. its input): x [N, Cin, H, W],
/// weight [Cin, Cout / groups, kh, kw], bias [Cout] or undefined.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                        const Shape& stride = {1, 1}, const Shape& padding = {0, 0},
                        const Shape& output_padding = {0, 0}, const Shape& dilation = {1, 1}, int64_t groups = 1);
/// Max pooling: (values, indices); an index is the position h * W + w in the input plane.
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const Shape& kernel, const Shape& stride = {},
                                                  const Shape& padding = {0, 0}, const Shape& dilation = {1, 1});
Tensor max_pool2d(const Tensor& x, const Shape& kernel, const Shape& stride = {}, const Shape& padding = {0, 0},
                  const Shape& dilation = {1, 1});
/// Average pooling (padding counted in the divisor, PyTorch's default count_include_pad).
Tensor avg_pool2d(const Tensor& x, const Shape& kernel, const Shape& stride = {}, const Shape& padding = {0, 0});
/// Average over adaptive windows to an [oh, ow] output (PyTorch's window rule).
Tensor adaptive_avg_pool2d(const Tensor& x, const Shape& output_size);
/// Batch normalization over dim 1. In training, normalizes with batch statistics and
/// updates running_mean / running_var in place (unbiased variance, as PyTorch):
/// running = (1 - momentum) * running + momentum * batch.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);
/// Zeroes elements with probability p and scales the rest by 1 / (1 - p) (training only).
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

// --- normalization, embedding and losses ------------------------------------------
// Composites of the ops above (differentiable through them). Half-precision inputs are
// computed in f32 and the result is returned in the input's dtype (DESIGN §6).
/// torch.nn.functional.layer_norm: normalizes over the trailing dims `normalized_shape`
/// with the biased variance; weight and bias (shape normalized_shape) may be undefined.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
/// Rows of weight [V, D] picked by indices (int64/int32, any shape): indices.shape + [D].
/// The row at padding_idx (-1: none) gets no gradient, as in torch.
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx = -1);
/// Losses take reduction "mean" (the default), "sum" or "none" (one loss per element).
/// Cross-entropy of logits [N, C] or [N, C, d...] (or [C]) against class indices [N] or
/// [N, d...] (int64/int32), as torch: targets equal to ignore_index add nothing and "mean"
/// divides by the number of the others; label smoothing gives
/// (1 - s) * nll + s * mean_c(-log p_c).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const std::string& reduction = "mean",
                     int64_t ignore_index = -100, double label_smoothing = 0.0);
/// Negative log-likelihood of log-probabilities logp [N, C] or [N, C, d...] (or [C]).
Tensor nll_loss(const Tensor& logp, const Tensor& target, const std::string& reduction = "mean",
                int64_t ignore_index = -100);
/// Huber-like loss: 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (beta = 0: L1).
Tensor smooth_l1_loss(const Tensor& x, const Tensor& y, const std::string& reduction = "mean", double beta = 1.0);
/// Binary cross-entropy of logits x against targets y in [0, 1], computed stably;
/// pos_weight (broadcast to x's shape, e.g. [C]) scales the positive term.
Tensor bce_with_logits(const Tensor& x, const Tensor& y, const Tensor& pos_weight = Tensor(),
                       const std::string& reduction = "mean");
/// (x - y)^2.
Tensor mse_loss(const Tensor& x, const Tensor& y, const std::string& reduction = "mean");

// --- shape and indexing ------------------------------------------------------------
/// A view with new sizes (one may be -1); throws when the strides do not allow it.
Tensor view(const Tensor& x, const Shape& sizes);
/// view() when possible, otherwise a contiguous copy.
Tensor reshape(const Tensor& x, const Shape& sizes);
Tensor permute(const Tensor& x, const DimList& dims);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
/// 2-D transpose.
Tensor t(const Tensor& x);
Tensor contiguous(const Tensor& x);
/// Elements start, start+step, ... < end along dim (a view; end is clamped).
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor cat(const std::vector<Tensor>& xs, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split_with_sizes(const Tensor& x, const Shape& sizes, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);
Tensor expand(const Tensor& x, const Shape& sizes);
Tensor squeeze(const Tensor& x, std::optional<int64_t> dim = {});
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
/// Copy of x with x[index[i][j]][j] = src[i][j] (dim 0 shown).
Tensor scatter(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src);
Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value);
/// Constant padding; `pad` lists (before, after) pairs starting from the last dim.
Tensor pad(const Tensor& x, const Shape& pad, Scalar value = 0);
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
Tensor one_hot(const Tensor& index, int64_t num_classes);
/// Sum of input gradient over broadcast dims down to `sizes` (used by backward rules).
Tensor sum_to(const Tensor& x, const Shape& sizes);

// --- sorting, selection and resampling ----------------------------------------------
/// Sorted values along `dim` and their int64 source indices; stable (ties keep their input
/// order, as torch.sort(stable=True)); NaN sorts as larger than every number.
std::pair<Tensor, Tensor> sort(const Tensor& x, int64_t dim = -1, bool descending = false);
/// The indices of sort(x, dim, descending) (not differentiable).
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
/// The k largest (or smallest) values along `dim` and their indices, always in sorted order.
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true);
/// Indices of the nonzero elements of x as int64 [n, x.dim()], in row-major order.
Tensor nonzero(const Tensor& x);
/// The elements of x where the bool mask (broadcast to x's shape) is true, as a 1-D tensor
/// in row-major order; differentiable w.r.t. x.
Tensor masked_select(const Tensor& x, const Tensor& mask);
/// Nearest-neighbour resize of x [N, C, H, W] to [N, C, oh, ow]; source pixel
/// floor(dst * in / out) per axis (torch's rule for an explicit size).
Tensor upsample_nearest2d(const Tensor& x, const Shape& output_size);
/// The same with output size floor(H * scale_factor) x floor(W * scale_factor).
Tensor upsample_nearest2d(const Tensor& x, double scale_factor);

// --- in place (return the modified tensor) -----------------------------------------
/// x += alpha * other.
Tensor& add_(Tensor& x, const Tensor& other, Scalar alpha = 1);
Tensor& mul_(Tensor& x, const Tensor& other);
Tensor& zero_(Tensor& x);
Tensor& fill_(Tensor& x, Scalar value);
/// Copies src into x (broadcast to x's shape, converted to x's dtype).
Tensor& copy_(Tensor& x, const Tensor& src);

/// A copy that shares no storage and records no history.
Tensor clone(const Tensor& x);
/// Shares storage, records no history.
Tensor detach(const Tensor& x);

// --- operators ------------------------------------------------------------------
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, Scalar b) { return add(a, wrap(b)); }
inline Tensor operator-(const Tensor& a, Scalar b) { return sub(a, wrap(b)); }
inline Tensor operator*(const Tensor& a, Scalar b) { return mul(a, wrap(b)); }
inline Tensor operator/(const Tensor& a, Scalar b) { return div(a, wrap(b)); }
inline Tensor operator+(Scalar a, const Tensor& b) { return add(wrap(a), b); }
inline Tensor operator-(Scalar a, const Tensor& b) { return sub(wrap(a), b); }
inline Tensor operator*(Scalar a, const Tensor& b) { return mul(wrap(a), b); }
inline Tensor operator/(Scalar a, const Tensor& b) { return div(wrap(a), b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
inline Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
inline Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
inline Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
inline Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
inline Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
inline Tensor operator<(const Tensor& a, Scalar b) { return lt(a, wrap(b)); }
inline Tensor operator>(const Tensor& a, Scalar b) { return gt(a, wrap(b)); }

/// True when a and b have the same shape and all |a - b| <= atol + rtol * |b| (CPU).
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);

}  // namespace pacer

// Families with many ops keep their declarations beside this file (still one line per op).
#include "ops/api_amp.h"
#include "ops/api_attention.h"
#include "ops/api_detection.h"
#include "ops/api_rnn.h"
