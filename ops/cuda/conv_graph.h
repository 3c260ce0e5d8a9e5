#pragma once
/// Convolutions through cuDNN's graph (backend) API, where cuDNN 9 offers engines its legacy
/// cudnnConvolution* API does not reach (PyTorch goes this way). Internal to ops/cuda/conv.cpp,
/// which by default takes it per problem where it measured faster than the legacy API
/// (PACER_CUDNN_GRAPH); unproven on a GPU (written after the 2026-11-27 H200 runs, where the
/// legacy API's 3x3 convolutions ran at 0.3-0.6x PyTorch's).

#include <cstdint>

#include "core/tensor.h"

namespace pacer::ops::cuda {

enum class ConvDir : uint8_t { Forward, BackwardData, BackwardFilter };

/// PACER_CUDNN_GRAPH: "1" the graph API first (On), "0" never (Off), unset or anything else
/// (Auto): per problem, whichever of the legacy and the graph API measured faster.
enum class GraphMode : uint8_t { Auto, On, Off };
GraphMode cudnn_graph_mode();

/// Chooses (and caches) the graph-API plan for the problem, as run_conv_graph would, timing
/// the candidates on a scratch output; returns the chosen plan's time in ms, or -1 when no
/// engine takes the problem. Writes nothing the caller sees.
double time_conv_graph(ConvDir dir, const Tensor& x, const Tensor& w, const Tensor& y, bool channels_last,
                       const int64_t stride[2], const int64_t padding[2], const int64_t dilation[2], double beta);

/// One convolution in the roles of the forward one: x (image input), w (filter), y (image
/// output); `dir` says which is written (out = conv result + beta * out). All three in one
/// layout (channels_last: NHWC strides, else NCHW), float16 / bfloat16, one group. False
/// when the graph API has no engine for the problem (the caller falls back).
bool run_conv_graph(ConvDir dir, const Tensor& x, const Tensor& w, const Tensor& y, bool channels_last,
                    const int64_t stride[2], const int64_t padding[2], const int64_t dilation[2], double beta);

/// y = conv2d(x, w) (forward, no bias, one group, all three dense channels-last float16 /
/// bfloat16) and batch norm's per-channel sums of y and of its squares into `sum` / `sqsum`
/// (float32 [C], 16-byte aligned), in one cuDNN graph: the convolution and a genstats node,
/// which cuDNN's runtime fusion engines run together (NVIDIA's MLPerf ResNet does this). Used
/// by the conv_bn fusion whether or not PACER_CUDNN_GRAPH is set; false when no engine takes
/// the problem (nothing is written then). Unproven on a GPU.
bool run_conv_genstats(const Tensor& x, const Tensor& w, const Tensor& y, const int64_t stride[2],
                       const int64_t padding[2], const int64_t dilation[2], float* sum, float* sqsum);

}  // namespace pacer::ops::cuda
