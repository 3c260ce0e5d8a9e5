// cudnn_lstm and cudnn_lstm_backward: multi-layer, optionally bidirectional LSTM through
// cuDNN's RNN API (cudnnRNNForward, cudnnRNNBackwardData_v8, cudnnRNNBackwardWeights_v8).
// The torch-layout weights are copied into cuDNN's packed weight space at each forward
// (the weight space is output 4, saved for backward), and the weight-space gradient is
// copied back out into one gradient per weight. Sequences of different lengths use the
// padded (unpacked) data layouts with per-sequence lengths, so results match the
// composite in ops/defs/rnn.cpp: outputs past a length are zero, h_n / c_n come from each
// sequence's last valid step, and the reverse direction starts there.
#include <cudnn.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "autograd/grad_mode.h"
#include "core/cuda/handles.h"
#include "core/cuda/library_check.h"
#include "core/cuda/pinned.h"
#include "ops/api.h"
#include "ops/cuda/launch.cuh"
#include "ops/registry.h"

namespace pacer::ops::cuda {

namespace {

// A contiguous version of `t` (no autograd history: kernels work on values).
Tensor dense(const Tensor& t) {
  if (!t.defined() || t.is_contiguous()) return t;
  NoGradGuard ng;  // the dispatcher runs kernels with grad mode off already; kept explicit
  return contiguous(t);
}

cudnnDataType_t cudnn_dtype(DType dt) {
  switch (dt) {
    case DType::F16: return CUDNN_DATA_HALF;
    case DType::F32: return CUDNN_DATA_FLOAT;
    case DType::F64: return CUDNN_DATA_DOUBLE;
    case DType::BF16: return CUDNN_DATA_BFLOAT16;
    default: PACER_CHECK(false, "cudnn_lstm: unsupported dtype {}", dt);
  }
  return CUDNN_DATA_FLOAT;
}

int to_int(int64_t v, const char* what) {
  PACER_CHECK(v >= 0 && v <= int64_t(INT32_MAX), "cudnn_lstm: {} {} does not fit cuDNN's int32", what, v);
  return int(v);
}

// The attributes and sizes of one call.
struct Config {
  int64_t T = 0, B = 0, in = 0, H = 0, L = 0, D = 1;
  bool batch_first = false, bias = true;
  DType dtype = DType::F32;
  Shape lengths;  // empty: every sequence has length T

  int64_t sets() const { return L * D; }
  int64_t per_set() const { return bias ? 4 : 2; }
  int64_t layer_in(int64_t l) const { return l == 0 ? in : D * H; }
};

Config read_config(const OpCall& c, const Tensor& x, const Tensor& h0) {
  Config k;
  k.L = c.attrs.i("num_layers");
  k.D = c.attrs.b("bidirectional") ? 2 : 1;
  k.batch_first = c.attrs.b("batch_first");
  k.bias = c.attrs.b("has_bias");
  k.lengths = c.attrs.shape("lengths");
  k.dtype = x.dtype();
  k.T = x.size(k.batch_first ? 1 : 0);
  k.B = x.size(k.batch_first ? 0 : 1);
  k.in = x.size(2);
  k.H = h0.size(2);
  return k;
}

// Everything cuDNN needs about the network itself (not the data): the RNN descriptor and
// where each weight matrix and bias lies in the weight space. Cached per configuration.
struct RnnKey {
  int device = 0;
  DType dtype = DType::F32;
  int64_t in = 0, H = 0, L = 0, D = 1;
  bool bias = true, tf32 = false;
  bool operator==(const RnnKey&) const = default;
};

// One gate's matrix or bias inside the weight space (byte offset, byte count), in the order
// weights are passed: per set, W_ih gates i f g o, W_hh gates, then b_ih and b_hh gates.
struct Piece {
  size_t ws_offset = 0, nbytes = 0;
  size_t input = 0;      // which weight input (0-based among the weights)
  size_t t_offset = 0;   // byte offset inside that weight tensor
};

struct RnnEntry {
  RnnKey key;
  cudnnRNNDescriptor_t rnn = nullptr;
  cudnnDropoutDescriptor_t dropout = nullptr;
  size_t weight_bytes = 0;
  std::vector<Piece> pieces;  // filled on first use (needs a weight-space address)
  bool gaps = true;           // whether the pieces leave bytes of the weight space uncovered

  RnnEntry() = default;
  RnnEntry(const RnnEntry&) = delete;
  RnnEntry& operator=(const RnnEntry&) = delete;
  ~RnnEntry() {
    if (rnn) cudnnDestroyRNNDescriptor(rnn);
    if (dropout) cudnnDestroyDropoutDescriptor(dropout);
  }
};

// Owns one cuDNN descriptor of each kind used per call.
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { PACER_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

struct DataDesc {
  cudnnRNNDataDescriptor_t d = nullptr;
  DataDesc() { PACER_CUDNN_CHECK(cudnnCreateRNNDataDescriptor(&d)); }
  ~DataDesc() { cudnnDestroyRNNDataDescriptor(d); }
  DataDesc(const DataDesc&) = delete;
  DataDesc& operator=(const DataDesc&) = delete;
};

int64_t desc_numel(cudnnTensorDescriptor_t d) {
  cudnnDataType_t dt;
  int nb = 0, dims[8] = {}, strides[8] = {};
  PACER_CUDNN_CHECK(cudnnGetTensorNdDescriptor(d, 8, &dt, &nb, dims, strides));
  int64_t n = 1;
  for (int i = 0; i < nb; ++i) n *= dims[i];
  return n;
}

// Locates every weight matrix and bias of `e` in a weight space at `ws` (offsets only are
// kept: they do not depend on the address).
void locate_weights(cudnnHandle_t handle, RnnEntry& e, void* ws, const Config& k) {
  const size_t es = element_size(k.dtype);
  TensorDesc m, b;
  std::vector<Piece> pieces;
  const auto* base = static_cast<const char*>(ws);
  for (int64_t s = 0; s < k.sets(); ++s) {
    const int64_t l = s / k.D;
    for (int lin = 0; lin < 8; ++lin) {
      void* m_addr = nullptr;
      void* b_addr = nullptr;
      PACER_CUDNN_CHECK(
          cudnnGetRNNWeightParams(handle, e.rnn, int32_t(s), e.weight_bytes, ws, lin, m.d, &m_addr, b.d, &b_addr));
      const bool recurrent = lin >= 4;
      const int64_t gate = lin % 4, cols = recurrent ? k.H : k.layer_in(l);
      PACER_CHECK(m_addr != nullptr && desc_numel(m.d) == k.H * cols,
                  "cudnn_lstm: unexpected weight matrix layout from cuDNN (set {}, linear layer {})", s, lin);
      const size_t w_in = size_t(s * k.per_set() + (recurrent ? 1 : 0));
      pieces.push_back({size_t(static_cast<const char*>(m_addr) - base), size_t(k.H * cols) * es, w_in,
                        size_t(gate * k.H * cols) * es});
      if (k.bias) {
        PACER_CHECK(b_addr != nullptr && desc_numel(b.d) == k.H,
                    "cudnn_lstm: unexpected bias layout from cuDNN (set {}, linear layer {})", s, lin);
        const size_t b_in = size_t(s * k.per_set() + (recurrent ? 3 : 2));
        pieces.push_back({size_t(static_cast<const char*>(b_addr) - base), size_t(k.H) * es, b_in,
                          size_t(gate * k.H) * es});
      }
    }
  }
  size_t covered = 0;
  for (const Piece& p : pieces) {
    PACER_CHECK(p.ws_offset + p.nbytes <= e.weight_bytes, "cudnn_lstm: weight piece outside the weight space");
    covered += p.nbytes;
  }
  // Pieces never overlap (each is a distinct matrix or bias), so this says whether the weight
  // space has bytes no weight fills (alignment padding): those are zeroed before packing.
  e.gaps = covered != e.weight_bytes;
  // Merge pieces adjacent both in the weight space and in the same weight tensor (cuDNN
  // usually keeps the four gates of a matrix together): one copy per run.
  std::vector<Piece> merged;
  std::vector<Piece> sorted = pieces;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Piece& a, const Piece& b) {
    return a.input != b.input ? a.input < b.input : a.t_offset < b.t_offset;
  });
  for (const Piece& p : sorted) {
    if (!merged.empty()) {
      Piece& q = merged.back();
      if (q.input == p.input && q.t_offset + q.nbytes == p.t_offset && q.ws_offset + q.nbytes == p.ws_offset) {
        q.nbytes += p.nbytes;
        continue;
      }
    }
    merged.push_back(p);
  }
  e.pieces = std::move(merged);
}

RnnEntry& rnn_entry(cudnnHandle_t handle, const Config& k, int device) {
  thread_local std::vector<std::unique_ptr<RnnEntry>> cache;
  const bool tf32 = k.dtype == DType::F32 && pacer::cuda::allow_tf32();
  const RnnKey key{device, k.dtype, k.in, k.H, k.L, k.D, k.bias, tf32};
  for (auto& e : cache)
    if (e->key == key) return *e;

  auto e = std::make_unique<RnnEntry>();
  e->key = key;
  PACER_CUDNN_CHECK(cudnnCreateDropoutDescriptor(&e->dropout));
  // No dropout: no states are needed (nothing random is drawn with probability 0).
  PACER_CUDNN_CHECK(cudnnSetDropoutDescriptor(e->dropout, handle, 0.0f, nullptr, 0, 0));
  PACER_CUDNN_CHECK(cudnnCreateRNNDescriptor(&e->rnn));
  const cudnnDataType_t data = cudnn_dtype(k.dtype);
  const cudnnDataType_t math_prec = k.dtype == DType::F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  if (k.dtype == DType::F16 || k.dtype == DType::BF16) math = CUDNN_TENSOR_OP_MATH;
  else if (k.dtype == DType::F32) math = tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  PACER_CUDNN_CHECK(cudnnSetRNNDescriptor_v8(
      e->rnn, CUDNN_RNN_ALGO_STANDARD, CUDNN_LSTM, k.bias ? CUDNN_RNN_DOUBLE_BIAS : CUDNN_RNN_NO_BIAS,
      k.D == 2 ? CUDNN_BIDIRECTIONAL : CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, data, math_prec, math,
      to_int(k.in, "input_size"), to_int(k.H, "hidden_size"), to_int(k.H, "hidden_size"),
      to_int(k.L, "num_layers"), e->dropout, CUDNN_RNN_PADDED_IO_ENABLED));
  PACER_CUDNN_CHECK(cudnnGetRNNWeightSpaceSize(handle, e->rnn, &e->weight_bytes));
  cache.push_back(std::move(e));
  return *cache.back();
}

// The per-call data descriptors and sequence lengths (host array for the descriptors, a
// device copy for the kernels, which read it asynchronously).
struct SeqData {
  DataDesc x, y;
  TensorDesc h;
  Tensor dev_lengths;  // int32 [B] on the device; kept alive until the call's work is queued
};

void make_seq_data(SeqData& sd, const Config& k, Device device) {
  const int T = to_int(k.T, "sequence length"), B = to_int(k.B, "batch");
  Tensor host = pacer::cuda::pinned_empty({k.B}, DType::I32);
  auto* len = static_cast<int32_t*>(host.data());
  for (int64_t b = 0; b < k.B; ++b) {
    const int64_t v = k.lengths.empty() ? k.T : k.lengths[size_t(b)];
    PACER_CHECK(v >= 1 && v <= k.T, "cudnn_lstm: expected lengths in [1, {}], got {} for sequence {}", k.T, v, b);
    len[b] = int32_t(v);
  }
  {
    NoGradGuard ng;
    sd.dev_lengths = host.to(device);  // asynchronous from pinned memory
  }
  const cudnnDataType_t dt = cudnn_dtype(k.dtype);
  const cudnnRNNDataLayout_t layout =
      k.batch_first ? CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED : CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED;
  // Zero bits read as 0 in every floating type cuDNN may interpret the fill as.
  double fill = 0.0;
  PACER_CUDNN_CHECK(cudnnSetRNNDataDescriptor(sd.x.d, dt, layout, T, B, to_int(k.in, "input_size"), len, &fill));
  PACER_CUDNN_CHECK(
      cudnnSetRNNDataDescriptor(sd.y.d, dt, layout, T, B, to_int(k.D * k.H, "output size"), len, &fill));
  PACER_CHECK(k.sets() * k.B * k.H <= int64_t(INT32_MAX), "cudnn_lstm: state of {} x {} x {} too large for cuDNN",
              k.sets(), k.B, k.H);
  const int dims[3] = {int(k.sets()), B, int(k.H)};
  const int strides[3] = {int(k.B * k.H), int(k.H), 1};
  PACER_CUDNN_CHECK(cudnnSetTensorNdDescriptor(sd.h.d, dt, 3, dims, strides));
}

void check_weights(const Config& k, const std::vector<Tensor>& w) {
  PACER_CHECK(int64_t(w.size()) == k.sets() * k.per_set(), "cudnn_lstm: expected {} weight tensors, got {}",
              k.sets() * k.per_set(), w.size());
  for (int64_t s = 0; s < k.sets(); ++s) {
    const int64_t cols = k.layer_in(s / k.D);
    const size_t i = size_t(s * k.per_set());
    PACER_CHECK(w[i].sizes() == Shape({4 * k.H, cols}) && w[i + 1].sizes() == Shape({4 * k.H, k.H}),
                "cudnn_lstm: unexpected weight shapes {} and {} for set {}", w[i].sizes(), w[i + 1].sizes(), s);
    if (k.bias)
      PACER_CHECK(w[i + 2].sizes() == Shape({4 * k.H}) && w[i + 3].sizes() == Shape({4 * k.H}),
                  "cudnn_lstm: unexpected bias shapes {} and {} for set {}", w[i + 2].sizes(), w[i + 3].sizes(), s);
    for (size_t j = i; j < i + size_t(k.per_set()); ++j)
      PACER_CHECK(w[j].dtype() == k.dtype && w[j].is_contiguous(), "cudnn_lstm: weight {} must be contiguous {}",
                  j, k.dtype);
  }
}

cudnnHandle_t handle() { return static_cast<cudnnHandle_t>(pacer::cuda::cudnn_handle()); }

// Inputs: x, h0, c0, then per layer and direction w_ih, w_hh[, b_ih, b_hh].
// Outputs: output, h_n, c_n, reserve space (U8), weight space (U8).
void cudnn_lstm_kernel(OpCall& c) {
  // Training mode (a reserve space for backward) when the call is recorded; infer decides,
  // since kernels run with grad mode off.
  const bool training = c.attrs.has("training") && c.attrs.b("training");
  const Tensor x = dense(c.in(0)), h0 = dense(c.in(1)), c0 = dense(c.in(2));
  std::vector<Tensor> w;
  for (size_t i = 3; i < c.inputs.size(); ++i) w.push_back(dense(c.in(i)));
  const Config k = read_config(c, x, h0);
  check_weights(k, w);
  PACER_CHECK(h0.sizes() == Shape({k.sets(), k.B, k.H}) && c0.sizes() == h0.sizes(),
              "cudnn_lstm: unexpected state shapes {} and {}", h0.sizes(), c0.sizes());

  const cudnnHandle_t h = handle();
  RnnEntry& e = rnn_entry(h, k, c.device.index);
  SeqData sd;
  make_seq_data(sd, k, c.device);

  const Options opt{.dtype = k.dtype, .device = c.device};
  const Options bytes{.dtype = DType::U8, .device = c.device};
  const cudaStream_t s = stream();

  // Pack the weights.
  Tensor ws = empty({int64_t(e.weight_bytes)}, bytes);
  if (e.pieces.empty()) locate_weights(h, e, ws.data(), k);
  auto* ws_ptr = static_cast<char*>(ws.data());
  if (e.gaps && ws.nbytes() > 0) PACER_CUDA_CHECK(cudaMemsetAsync(ws_ptr, 0, ws.nbytes(), s));
  for (const Piece& p : e.pieces)
    PACER_CUDA_CHECK(cudaMemcpyAsync(ws_ptr + p.ws_offset, static_cast<const char*>(w[p.input].data()) + p.t_offset,
                                     p.nbytes, cudaMemcpyDeviceToDevice, s));

  size_t work_bytes = 0, reserve_bytes = 0;
  PACER_CUDNN_CHECK(cudnnGetRNNTempSpaceSizes(h, e.rnn, training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
                                              sd.x.d, &work_bytes, &reserve_bytes));
  Tensor y = k.batch_first ? empty({k.B, k.T, k.D * k.H}, opt) : empty({k.T, k.B, k.D * k.H}, opt);
  Tensor hy = empty(h0.sizes(), opt), cy = empty(h0.sizes(), opt);
  Tensor reserve = empty({training ? int64_t(reserve_bytes) : 0}, bytes);
  // Padding positions of y are filled with 0 through the descriptor; clear them anyway so
  // they never depend on it.
  if (!k.lengths.empty() && y.nbytes() > 0) PACER_CUDA_CHECK(cudaMemsetAsync(y.data(), 0, y.nbytes(), s));

  void* work = work_bytes ? pacer::cuda::workspace(work_bytes) : nullptr;
  PACER_CUDNN_CHECK(cudnnRNNForward(h, e.rnn, training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
                                    data_ptr<int32_t>(sd.dev_lengths), sd.x.d, x.data(), sd.y.d, y.data(), sd.h.d,
                                    h0.data(), hy.data(), sd.h.d, c0.data(), cy.data(), e.weight_bytes, ws.data(),
                                    work_bytes, work, training ? reserve_bytes : 0,
                                    training ? reserve.data() : nullptr));
  c.outputs = {y, hy, cy, reserve, ws};
}

// Inputs: x, h0, c0, output, reserve, weight space, d_output, d_h_n, d_c_n.
// Outputs: dx, dh0, dc0, then one gradient per weight (the forward's weight inputs).
void cudnn_lstm_backward_kernel(OpCall& c) {
  const Tensor x = dense(c.in(0)), h0 = dense(c.in(1)), c0 = dense(c.in(2)), y = dense(c.in(3));
  const Tensor& reserve = c.in(4);
  const Tensor& ws = c.in(5);
  const Tensor dy = dense(c.in(6)), dhy = dense(c.in(7)), dcy = dense(c.in(8));
  const Config k = read_config(c, x, h0);
  PACER_CHECK(reserve.is_contiguous() && ws.is_contiguous() && reserve.dtype() == DType::U8 &&
                  ws.dtype() == DType::U8,
              "cudnn_lstm_backward: expected the forward's reserve and weight spaces");
  PACER_CHECK(reserve.numel() > 0, "cudnn_lstm_backward: the forward ran without a reserve space (inference mode)");
  PACER_CHECK(dy.sizes() == y.sizes() && dy.dtype() == k.dtype && dhy.sizes() == h0.sizes() &&
                  dcy.sizes() == h0.sizes() && dhy.dtype() == k.dtype && dcy.dtype() == k.dtype,
              "cudnn_lstm_backward: unexpected gradient shapes or dtypes");

  const cudnnHandle_t h = handle();
  RnnEntry& e = rnn_entry(h, k, c.device.index);
  PACER_CHECK(size_t(ws.numel()) == e.weight_bytes, "cudnn_lstm_backward: weight space of {} bytes, expected {}",
              ws.numel(), e.weight_bytes);
  SeqData sd;
  make_seq_data(sd, k, c.device);
  const cudaStream_t s = stream();

  size_t work_bytes = 0, reserve_bytes = 0;
  PACER_CUDNN_CHECK(cudnnGetRNNTempSpaceSizes(h, e.rnn, CUDNN_FWD_MODE_TRAINING, sd.x.d, &work_bytes, &reserve_bytes));
  PACER_CHECK(size_t(reserve.numel()) >= reserve_bytes, "cudnn_lstm_backward: reserve space of {} bytes, need {}",
              reserve.numel(), reserve_bytes);

  Tensor& dx = c.out(0);
  Tensor& dhx = c.out(1);
  Tensor& dcx = c.out(2);
  // Positions past a sequence's length get no gradient.
  if (!k.lengths.empty() && dx.nbytes() > 0) PACER_CUDA_CHECK(cudaMemsetAsync(dx.data(), 0, dx.nbytes(), s));
  Tensor dws = empty({int64_t(e.weight_bytes)}, {.dtype = DType::U8, .device = c.device});
  // cudnnRNNBackwardWeights_v8 accumulates (CUDNN_WGRAD_MODE_ADD): start from zero.
  if (dws.nbytes() > 0) PACER_CUDA_CHECK(cudaMemsetAsync(dws.data(), 0, dws.nbytes(), s));

  void* work = work_bytes ? pacer::cuda::workspace(work_bytes) : nullptr;
  // The reserve space is read and written by both calls (backward data leaves what backward
  // weights needs there), so they run in this order.
  PACER_CUDNN_CHECK(cudnnRNNBackwardData_v8(h, e.rnn, data_ptr<int32_t>(sd.dev_lengths), sd.y.d, y.data(), dy.data(),
                                            sd.x.d, dx.data(), sd.h.d, h0.data(), dhy.data(), dhx.data(), sd.h.d,
                                            c0.data(), dcy.data(), dcx.data(), e.weight_bytes, ws.data(), work_bytes,
                                            work, reserve_bytes, reserve.data()));
  PACER_CUDNN_CHECK(cudnnRNNBackwardWeights_v8(h, e.rnn, CUDNN_WGRAD_MODE_ADD, data_ptr<int32_t>(sd.dev_lengths),
                                               sd.x.d, x.data(), sd.h.d, h0.data(), sd.y.d, y.data(), e.weight_bytes,
                                               dws.data(), work_bytes, work, reserve_bytes, reserve.data()));

  // Unpack the weight-space gradient into the per-weight gradients (outputs 3...).
  std::vector<Tensor> dw(c.outputs.begin() + 3, c.outputs.end());
  check_weights(k, dw);
  if (e.pieces.empty()) locate_weights(h, e, dws.data(), k);
  const auto* dws_ptr = static_cast<const char*>(dws.data());
  for (const Piece& p : e.pieces)
    PACER_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dw[p.input].data()) + p.t_offset, dws_ptr + p.ws_offset,
                                     p.nbytes, cudaMemcpyDeviceToDevice, s));
}

}  // namespace

PACER_KERNEL(cudnn_lstm, CUDA, cudnn_lstm_kernel);
PACER_KERNEL(cudnn_lstm_backward, CUDA, cudnn_lstm_backward_kernel);

}  // namespace pacer::ops::cuda
