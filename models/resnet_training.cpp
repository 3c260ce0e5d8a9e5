#include "models/resnet_training.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "autograd/grad_mode.h"
#include "core/cuda/runtime.h"
#include "core/generator.h"
#include "data/image_loader.h"
#include "models/graph_workloads.h"
#include "models/mlperf_log.h"
#include "models/precision_step.h"
#include "models/resnet.h"
#include "models/tensorboard.h"
#include "models/training_checkpoint.h"
#include "ops/api.h"
#include "ops/graph/compiled_step.h"
#include "optim/lars.h"
#include "optim/schedules.h"
#include "optim/sgd.h"

namespace pacer::models {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void check_config(const ResnetTrainConfig& c) {
  PACER_CHECK(!c.data_dir.empty(), "train resnet: expected --data DIR (a folder with train/ and val/ ImageFolder trees)");
  PACER_CHECK(c.batch >= 1, "train resnet: expected --batch >= 1, got {}", c.batch);
  PACER_CHECK(c.epochs >= 1, "train resnet: expected --epochs >= 1, got {}", c.epochs);
  PACER_CHECK(c.image_size >= 16, "train resnet: expected --image-size >= 16 (five stride-2 stages), got {}",
              c.image_size);
  PACER_CHECK(c.optimizer == "sgd" || c.optimizer == "lars", "train resnet: --optimizer must be sgd or lars, got '{}'",
              c.optimizer);
  PACER_CHECK(c.eval_every >= 1, "train resnet: expected --eval-every >= 1, got {}", c.eval_every);
  PACER_CHECK(c.crop_min_scale > 0 && c.crop_min_scale <= 1, "train resnet: expected 0 < --crop-min-scale <= 1, got {}",
              c.crop_min_scale);
  PACER_CHECK(c.label_smoothing >= 0 && c.label_smoothing < 1, "train resnet: expected 0 <= label smoothing < 1, got {}",
              c.label_smoothing);
  // A run never overwrites another run's checkpoint or appends to its MLPerf log: --out must
  // be new, or the folder of the checkpoint being resumed.
  if (!c.out_dir.empty()) {
    namespace fs = std::filesystem;
    const fs::path out(c.out_dir), checkpoint = out / "checkpoint.safetensors";
    fs::path resumed_dir = fs::path(c.resume).parent_path();
    if (resumed_dir.empty()) resumed_dir = ".";
    std::error_code ec;  // a missing folder is simply not the same folder
    if (c.resume.empty() || !fs::equivalent(resumed_dir, out, ec)) {
      PACER_CHECK(!fs::exists(checkpoint),
                  "train resnet: '{}' already holds another run (checkpoint.safetensors exists); continue it with "
                  "--resume {}, or choose a new --out",
                  c.out_dir, checkpoint.string());
      PACER_CHECK(!fs::exists(out / "mlperf.log"),
                  "train resnet: '{}' already holds another run's mlperf.log; choose a new --out (or remove it)",
                  c.out_dir);
    }
  }
}

// The evaluation resize before the center crop: `eval_resize`, or ImageNet's 256 / 224 ratio.
int64_t eval_resize_or_default(int64_t eval_resize, int64_t image_size) {
  return eval_resize > 0 ? eval_resize : image_size * 256 / 224;
}

// Top-1 and top-5 accuracy over a loader's epoch (evaluation transforms, folder order).
std::pair<double, double> evaluate(ResNet& model, data::ImageLoader& val, const PrecisionPlan& plan, Device device) {
  NoGradGuard no_grad;
  model.eval();
  int64_t n = 0, top1 = 0, top5 = 0;
  val.start_epoch(0);
  data::ImageBatch b;
  while (val.next(b)) {
    if (b.labels.numel() == 0) continue;
    const Tensor x = b.images.to(device), y = b.labels.to(device);
    const Tensor logits = forward_in_precision([&](const Tensor& in) { return model.forward(in); }, x, plan,
                                               device.type);
    const int64_t k = std::min<int64_t>(5, logits.size(1));
    const Tensor best = topk(logits, k, 1).second;  // [b, k]
    const Tensor hit = eq(best, unsqueeze(y, 1));
    top1 += sum(narrow(hit, 1, 0, 1)).to(kCPU).item<int64_t>();
    top5 += sum(hit).to(kCPU).item<int64_t>();
    n += y.numel();
  }
  model.train();
  return {n ? double(top1) / double(n) : 0.0, n ? double(top5) / double(n) : 0.0};
}

}  // namespace

std::shared_ptr<ResNet> load_resnet(int depth, const std::vector<std::pair<std::string, Tensor>>& weights) {
  std::vector<std::pair<std::string, Tensor>> state;
  const std::string prefix = "model.";
  bool checkpoint = false;
  for (const auto& [k, t] : weights) checkpoint = checkpoint || k.rfind(prefix, 0) == 0;
  for (const auto& [k, t] : weights) {
    std::string name = k;
    if (checkpoint) {
      if (name.rfind(prefix, 0) != 0) continue;  // optimizer, trainer, ... entries
      name = name.substr(prefix.size());
    }
    if (name.size() >= 19 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0) continue;
    state.emplace_back(name, t);
  }
  const Tensor* fc = nullptr;
  for (const auto& [k, t] : state)
    if (k == "fc.weight") fc = &t;
  PACER_CHECK(fc && fc->dim() == 2, "load_resnet: the weights hold no fc.weight [classes, features] (is this a ResNet "
                                    "state_dict or a Pacer training checkpoint?)");
  auto model = std::make_shared<ResNet>(ResNetOptions{.depth = depth, .num_classes = fc->size(0)});
  model->load_state_dict(state, true);
  return model;
}

std::pair<double, double> evaluate_resnet(ResNet& model, const std::string& data_dir, int64_t image_size, int64_t batch,
                                          const std::string& precision, Device device, int64_t eval_resize) {
  data::ImageLoaderOptions vo;
  vo.batch = batch;
  vo.size = image_size;
  vo.train = false;
  vo.shuffle = false;
  vo.eval_resize = eval_resize_or_default(eval_resize, image_size);
  data::ImageLoader val(data::scan_image_folder((std::filesystem::path(data_dir) / "val").string()), vo);
  return evaluate(model, val, plan_for(parse_precision(precision)), device);
}

ResnetStepTimes time_resnet_steps(int depth, int64_t batch, int64_t image_size, const std::string& precision,
                                  Device device, int64_t warmup, int64_t repeat, bool channels_last,
                                  const std::string& mode, const std::string& passes) {
  PACER_CHECK(batch >= 1 && image_size >= 16 && repeat >= 1 && warmup >= 0,
              "time_resnet_steps: expected batch >= 1, image size >= 16, repeat >= 1, warmup >= 0");
  PACER_CHECK(mode == "eager" || mode == "graph", "time_resnet_steps: expected mode eager or graph, got '{}'", mode);
  GraphWorkload w = make_graph_workload("resnet", {.depth = depth, .batch = batch, .image_size = image_size,
                                                   .precision = precision, .device = device,
                                                   .channels_last = channels_last});
  std::function<std::vector<Tensor>(const std::vector<Tensor>&)> step = w.step;
  std::shared_ptr<graph::CompiledStep> compiled;
  if (mode == "graph") {
    compiled = std::make_shared<graph::CompiledStep>(w.step, graph::CompileOptions{.passes = passes, .capture = {.params = w.params}});
    step = [compiled](const std::vector<Tensor>& in) { return (*compiled)(in); };
    step(w.inputs);  // eager: the optimizer makes its state
    step(w.inputs);  // captured
    const char* emulate = std::getenv("PACER_EMULATE_CUDA_GRAPH");
    if (device.is_cuda() || (emulate && std::string(emulate) == "1")) {
      step(w.inputs);  // the executor's warm-up run
      step(w.inputs);  // its CUDA graph captured and launched
    }
  }
  ResnetStepTimes out;
  for (int64_t i = 0; i < warmup + repeat; ++i) {
    const auto t0 = Clock::now();
    step(w.inputs);
    if (device.is_cuda()) cuda::synchronize(device.index);
    if (i >= warmup) out.ms.push_back(seconds_since(t0) * 1e3);
  }
  if (compiled && compiled->last_executor() && device.is_cuda())
    out.cuda_graph = compiled->last_executor()->stats().cuda_graph;
  return out;
}

ResnetResult train_resnet(const ResnetTrainConfig& c, const std::function<void(const ResnetProgress&)>& progress,
                          const std::function<void(int64_t, double, double)>& on_eval) {
  check_config(c);
  const auto start = Clock::now();
  const PrecisionPlan plan = plan_for(parse_precision(c.precision));
  namespace fs = std::filesystem;
  data::ImageFolder train_set = data::scan_image_folder((fs::path(c.data_dir) / "train").string());
  data::ImageFolder val_set = data::scan_image_folder((fs::path(c.data_dir) / "val").string());
  PACER_CHECK(train_set.classes == val_set.classes,
              "train resnet: train/ has {} classes and val/ has {}: expected the same class folders",
              train_set.classes.size(), val_set.classes.size());
  const int64_t classes = int64_t(train_set.classes.size());
  const int64_t train_size = train_set.size(), val_size = val_set.size();

  data::ImageLoaderOptions lo;
  lo.batch = c.batch;
  lo.size = c.image_size;
  lo.seed = c.seed;
  lo.threads = c.loader_threads;
  lo.drop_last = true;  // equal steps, as the MLPerf reference
  lo.crop.min_scale = c.crop_min_scale;
  lo.pin_memory = c.device.is_cuda();  // the host-to-device copy then overlaps the step
  data::ImageLoader train(std::move(train_set), lo);
  data::ImageLoaderOptions vo = lo;
  vo.train = false;
  vo.shuffle = false;
  vo.drop_last = false;
  vo.eval_resize = eval_resize_or_default(c.eval_resize, c.image_size);
  data::ImageLoader val(std::move(val_set), vo);
  const int64_t steps_per_epoch = train.batches_per_epoch();
  PACER_CHECK(steps_per_epoch >= 1, "train resnet: {} training images make no batch of {}", train_size, c.batch);

  manual_seed(c.seed);
  ResNet model({.depth = c.depth, .num_classes = classes, .zero_init_residual = c.zero_init_residual});
  if (!c.device.is_cpu()) model.to(c.device);
  if (plan.half_model) model.to(plan.lower, is_norm_layer);

  // Batch-norm scales / shifts and biases (the 1-d parameters) get no weight decay and no
  // LARS trust ratio (MLPerf v0.6, NVIDIA's recipe).
  std::vector<Tensor> decay, no_decay;
  for (const Tensor& p : model.parameters()) (p.dim() > 1 ? decay : no_decay).push_back(p);
  const bool lars = c.optimizer == "lars";
  const double lr = c.lr > 0 ? c.lr : (lars ? 5.0 * double(c.batch) / 1664.0 : 0.128 * double(c.batch) / 256.0);
  const double wd = c.weight_decay >= 0 ? c.weight_decay : (lars ? 2e-4 : 1e-4);
  std::unique_ptr<optim::Optimizer> opt;
  if (lars) {
    opt = std::make_unique<optim::Lars>(std::vector<optim::ParamGroup<optim::LarsOptions>>{
        {decay, {.lr = lr, .momentum = c.momentum, .weight_decay = wd}},
        {no_decay, {.lr = lr, .momentum = c.momentum, .weight_decay = 0, .exclude_from_lars = true}}});
  } else {
    opt = std::make_unique<optim::Sgd>(std::vector<optim::ParamGroup<optim::SgdOptions>>{
        {decay, {.lr = lr, .momentum = c.momentum, .weight_decay = wd}},
        {no_decay, {.lr = lr, .momentum = c.momentum, .weight_decay = 0}}});
  }
  if (plan.master_weights) opt->use_master_weights();
  std::unique_ptr<optim::LossScaler> scaler;
  if (plan.loss_scaling) scaler = std::make_unique<optim::LossScaler>(optim::LossScalerOptions{}, c.device);
  const int64_t total_steps = c.epochs * steps_per_epoch;
  const double warmup = std::min(c.warmup_epochs, double(c.epochs - 1));
  optim::PolyWarmupSchedule schedule(
      {.base_lr = lr, .warmup_steps = int64_t(warmup * double(steps_per_epoch)), .total_steps = total_steps, .power = 2});

  TrainingPosition at;
  if (!c.resume.empty()) at = load_training_checkpoint(c.resume, model, *opt, &schedule, scaler.get());
  PACER_CHECK(at.step < steps_per_epoch || at.step == 0,
              "train resnet: the checkpoint is at step {} of an epoch of {} steps (another --batch?)", at.step,
              steps_per_epoch);

  std::unique_ptr<MlperfLog> mll;
  std::unique_ptr<TensorBoardWriter> tb;
  std::string checkpoint;
  if (!c.out_dir.empty()) {
    fs::create_directories(c.out_dir);
    mll = std::make_unique<MlperfLog>((fs::path(c.out_dir) / "mlperf.log").string());
    tb = std::make_unique<TensorBoardWriter>((fs::path(c.out_dir) / "tensorboard").string());
    checkpoint = (fs::path(c.out_dir) / "checkpoint.safetensors").string();
    if (c.resume.empty()) {
      ResnetLogConfig h;
      h.platform = c.device.is_cpu() ? "cpu" : "cuda";
      h.global_batch_size = c.batch;
      h.train_samples = train_size;
      h.eval_samples = val_size;
      h.opt_name = c.optimizer;
      h.base_learning_rate = lr;
      h.warmup_epochs = warmup;
      h.momentum = c.momentum;
      h.weight_decay = wd;
      h.label_smoothing = c.label_smoothing;
      h.lars_decay_steps = total_steps;
      h.bn_span = c.batch;
      h.seed = int64_t(c.seed);
      log_resnet_header(*mll, h);
      mll->event("init_stop");
      mll->event("run_start");
    }
  }

  ResnetResult r;
  // Graph mode: the whole step (forward, loss, backward, optimizer) captured once per batch
  // shape, then replayed through the default passes; the LR reaches replays as a tensor.
  auto train_step = [&](const std::vector<Tensor>& in) -> std::vector<Tensor> {
    const Tensor logits = forward_in_precision([&](const Tensor& t) { return model.forward(t); }, in[0], plan,
                                               c.device.type);
    const Tensor loss = cross_entropy(logits, in[1], "mean", -100, c.label_smoothing);
    backward_and_step(loss, *opt, scaler.get());
    return {loss};
  };
  // The LR enters the update as a tensor in eager steps too, so that --graph on and off
  // compute the same numbers bit for bit (a replay can only read it from a tensor).
  opt->use_lr_tensors();
  std::unique_ptr<graph::CompiledStep> compiled;
  if (c.graph) {
    if (!c.device.is_cpu()) {
      r.graph_note = "graph mode has not run on a GPU yet (no CUDA-graph replay); the steps run eagerly";
    } else {
      // With dynamic loss scaling too: inside a capture an overflowed step is skipped by
      // data, fused into the update loops (amp_skip), and a capture that made the optimizer's
      // state (after an overflowed first step) is not replayed but taken again.
      compiled = std::make_unique<graph::CompiledStep>(train_step,
                                                       graph::CompileOptions{.capture = {.params = model.parameters()}});
      r.graph = true;
    }
  }
  int64_t run_steps = 0;
  double images = 0, train_time = 0, wait_time = 0;
  bool done = false;
  for (int64_t e = at.epoch; e < c.epochs && !done; ++e) {
    const int64_t block_first = e - e % c.eval_every;
    if (mll && e == block_first)
      mll->event("block_start", nullptr,
                 {{"first_epoch_num", block_first + 1}, {"epoch_count", std::min(c.eval_every, c.epochs - block_first)}});
    if (mll) mll->event("epoch_start", nullptr, {{"epoch_num", e + 1}});
    const int64_t first = e == at.epoch ? at.step : 0;
    train.start_epoch(e, first);
    const auto t0 = Clock::now();
    data::ImageBatch b;
    int64_t step = first;
    double epoch_images = 0;
    for (;;) {
      const auto w0 = Clock::now();
      const bool more = train.next(b);
      wait_time += seconds_since(w0);
      if (!more) break;
      const Tensor x = b.images.to(c.device), y = b.labels.to(c.device);
      opt->set_lr(schedule.lr());
      const Tensor loss = compiled ? (*compiled)({x, y})[0] : train_step({x, y})[0];
      schedule.step();
      ++step;
      ++run_steps;
      epoch_images += double(y.numel());
      const double l = loss.to(kCPU).item<float>();
      r.step_losses.push_back(l);
      const double ips = epoch_images / std::max(seconds_since(t0), 1e-9);
      if (tb && (step % 10 == 0 || step == steps_per_epoch)) {
        const int64_t global = e * steps_per_epoch + step;
        tb->add_scalar("train/loss", l, global);
        tb->add_scalar("train/lr", opt->lr(), global);
        tb->add_scalar("train/images_per_s", ips, global);
        if (scaler) tb->add_scalar("train/loss_scale", scaler->current_scale(), global);
      }
      if (progress && (step % 10 == 0 || step == steps_per_epoch || step == first + 1)) {
        const double elapsed = seconds_since(start);
        const double left = double(total_steps - (e * steps_per_epoch + step));
        progress({e, step, steps_per_epoch, l, opt->lr(), ips, elapsed, left * double(c.batch) / std::max(ips, 1e-9),
                  scaler ? scaler->current_scale() : 0.0});
      }
      if (!checkpoint.empty() && c.checkpoint_every > 0 && run_steps % c.checkpoint_every == 0 &&
          step < steps_per_epoch)
        save_training_checkpoint(checkpoint, model, *opt, {e, step}, &schedule, scaler.get());
      if (c.stop_after_steps > 0 && run_steps >= c.stop_after_steps) {
        done = r.stopped_early = step < steps_per_epoch || e + 1 < c.epochs;
        break;
      }
    }
    train_time += seconds_since(t0);
    images += epoch_images;
    if (r.stopped_early) break;
    r.epochs = e + 1;
    if (mll) mll->event("epoch_stop", nullptr, {{"epoch_num", e + 1}});
    if (!checkpoint.empty()) save_training_checkpoint(checkpoint, model, *opt, {e + 1, 0}, &schedule, scaler.get());
    const bool block_end = (e + 1) % c.eval_every == 0 || e + 1 == c.epochs;
    if (block_end) {
      if (mll) mll->event("eval_start", nullptr, {{"epoch_num", e + 1}});
      const auto [top1, top5] = evaluate(model, val, plan, c.device);
      r.top1 = top1;
      r.top5 = top5;
      if (mll) {
        mll->event("eval_accuracy", top1, {{"epoch_num", e + 1}});
        mll->event("eval_stop", nullptr, {{"epoch_num", e + 1}});
        mll->event("block_stop", nullptr, {{"first_epoch_num", block_first + 1}});
      }
      if (tb) {
        tb->add_scalar("eval/top1", top1, e + 1);
        tb->add_scalar("eval/top5", top5, e + 1);
      }
      if (on_eval) on_eval(e, top1, top5);
      if (c.target_accuracy > 0 && top1 >= c.target_accuracy) {
        r.reached_target = true;
        done = true;
      }
    }
  }
  if (mll && !r.stopped_early)
    mll->event("run_stop", nullptr,
               {{"status", c.target_accuracy <= 0 || r.reached_target ? "success" : "aborted"}});
  r.skipped_images = train.skipped() + val.skipped();
  r.wall_s = seconds_since(start);
  r.images_per_s = train_time > 0 ? images / train_time : 0;
  r.data_wait_fraction = train_time > 0 ? wait_time / train_time : 0;
  return r;
}

}  // namespace pacer::models
