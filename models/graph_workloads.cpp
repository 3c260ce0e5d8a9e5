#include "models/graph_workloads.h"

#include "core/generator.h"
#include "models/precision.h"
#include "models/precision_step.h"
#include "models/resnet.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/lstm.h"
#include "nn/multihead_attention.h"
#include "ops/api.h"
#include "optim/lars.h"
#include "optim/loss_scaler.h"
#include "optim/sgd.h"

namespace pacer::models {

namespace {

// What a step closes over; kept alive by GraphWorkload::owner.
struct Trainer {
  std::shared_ptr<nn::Module> model;
  std::unique_ptr<optim::Optimizer> opt;
  std::unique_ptr<optim::LossScaler> scaler;
  PrecisionPlan plan;
};

GraphWorkload resnet(const GraphWorkloadOptions& o) {
  auto t = std::make_shared<Trainer>();
  t->plan = plan_for(parse_precision(o.precision));
  manual_seed(0);
  auto model = std::make_shared<ResNet>(ResNetOptions{.depth = o.depth, .num_classes = 1000});
  if (!o.device.is_cpu()) model->to(o.device);
  if (t->plan.half_model) model->to(t->plan.lower, is_norm_layer);
  std::vector<Tensor> decay, no_decay;
  for (const Tensor& p : model->parameters()) (p.dim() > 1 ? decay : no_decay).push_back(p);
  auto opt = std::make_unique<optim::Lars>(std::vector<optim::ParamGroup<optim::LarsOptions>>{
      {decay, {.lr = 0.1, .momentum = 0.9, .weight_decay = 2e-4}},
      {no_decay, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0, .exclude_from_lars = true}}});
  if (t->plan.master_weights) opt->use_master_weights();
  if (t->plan.loss_scaling) t->scaler = std::make_unique<optim::LossScaler>(optim::LossScalerOptions{}, o.device);
  t->opt = std::move(opt);
  t->model = model;
  Tensor x = randn({o.batch, 3, o.image_size, o.image_size}).to(o.device);
  // NHWC memory, logical NCHW: on CUDA the layout then flows through every conv and
  // pointwise op (ops/defs/common.h suggested_strides), as channels_last does in PyTorch.
  if (o.channels_last) x = permute(contiguous(permute(x, {0, 2, 3, 1})), {0, 3, 1, 2});
  const Tensor y = randint(0, 1000, {o.batch}).to(o.device);
  GraphWorkload w;
  w.name = "resnet" + std::to_string(o.depth);
  w.inputs = {x, y};
  w.params = model->parameters();
  Trainer* tr = t.get();
  const DeviceType type = o.device.type;
  w.step = [tr, model, type](const std::vector<Tensor>& in) {
    const Tensor logits =
        forward_in_precision([&](const Tensor& im) { return model->forward(im); }, in[0], tr->plan, type);
    const Tensor loss = cross_entropy(logits, in[1], "mean", -100, 0.1);
    backward_and_step(loss, *tr->opt, tr->scaler.get());
    return std::vector<Tensor>{loss};
  };
  w.owner = t;
  return w;
}

// A post-norm encoder layer: x + attention -> norm -> + FFN -> norm.
class EncoderLayer : public nn::UnaryModule {
 public:
  EncoderLayer(int64_t d, int64_t heads, int64_t ffn) {
    attn = register_module("self_attn", std::make_shared<nn::MultiheadAttention>(d, heads));
    linear1 = register_module("linear1", std::make_shared<nn::Linear>(d, ffn));
    linear2 = register_module("linear2", std::make_shared<nn::Linear>(ffn, d));
    norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(Shape{d}));
    norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(Shape{d}));
  }
  Tensor forward(const Tensor& x) const override {
    const Tensor h = norm1->forward(x + attn->forward(x, x, x, Tensor(), false).first);
    return norm2->forward(h + linear2->forward(relu(linear1->forward(h))));
  }
  std::shared_ptr<nn::MultiheadAttention> attn;
  std::shared_ptr<nn::Linear> linear1, linear2;
  std::shared_ptr<nn::LayerNorm> norm1, norm2;
};

GraphWorkload regression(const std::string& name, std::shared_ptr<nn::Module> model,
                         std::function<Tensor(const nn::Module&, const Tensor&)> forward, const Shape& shape,
                         const GraphWorkloadOptions& o) {
  auto t = std::make_shared<Trainer>();
  t->plan = plan_for(parse_precision(o.precision));
  if (!o.device.is_cpu()) model->to(o.device);
  t->opt = std::make_unique<optim::Sgd>(model->parameters(), optim::SgdOptions{.lr = 0.01, .momentum = 0.9});
  if (t->plan.loss_scaling) t->scaler = std::make_unique<optim::LossScaler>(optim::LossScalerOptions{}, o.device);
  t->model = model;
  GraphWorkload w;
  w.name = name;
  w.inputs = {randn(shape).to(o.device), randn(shape).to(o.device)};
  w.params = model->parameters();
  Trainer* tr = t.get();
  const DeviceType type = o.device.type;
  w.step = [tr, forward, type](const std::vector<Tensor>& in) {
    const Tensor out =
        forward_in_precision([&](const Tensor& x) { return forward(*tr->model, x); }, in[0], tr->plan, type);
    const Tensor d = out - in[1];
    const Tensor loss = mean(d * d);
    backward_and_step(loss, *tr->opt, tr->scaler.get());
    return std::vector<Tensor>{loss};
  };
  w.owner = t;
  return w;
}

}  // namespace

std::vector<std::string> graph_workload_names() { return {"resnet", "transformer-layer", "lstm-layer"}; }

GraphWorkload make_graph_workload(const std::string& name, const GraphWorkloadOptions& o) {
  PACER_CHECK(o.batch >= 1 && o.seq_len >= 1, "graph workload: expected batch >= 1 and seq_len >= 1, got {} and {}",
              o.batch, o.seq_len);
  if (name == "resnet") return resnet(o);
  manual_seed(0);
  if (name == "transformer-layer")
    return regression(name, std::make_shared<EncoderLayer>(256, 4, 1024),
                      [](const nn::Module& m, const Tensor& x) { return static_cast<const EncoderLayer&>(m).forward(x); },
                      {o.seq_len, o.batch, 256}, o);
  if (name == "lstm-layer")
    return regression(name, std::make_shared<nn::LSTM>(512, 512),
                      [](const nn::Module& m, const Tensor& x) { return static_cast<const nn::LSTM&>(m).forward(x).output; },
                      {o.seq_len, o.batch, 512}, o);
  std::string known;
  for (const std::string& n : graph_workload_names()) known += (known.empty() ? "" : ", ") + n;
  PACER_FAIL("graph workload: unknown workload '{}'; expected one of: {}", name, known);
}

}  // namespace pacer::models
