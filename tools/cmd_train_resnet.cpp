// `pacer train resnet50` (and resnet18 / resnet34): the MLPerf v0.6 ResNet recipe on an
// ImageFolder tree, with a progress line, eval results, run logs and checkpoints.
#include <cstdio>

#include "core/thread_pool.h"
#include "models/precision.h"
#include "models/resnet_training.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "tools/json_line.h"

namespace pacer::cli {

int train_resnet_command(const std::string& workload, const std::vector<std::string>& argv) {
  Parser p("pacer train " + workload + " [options]",
           "Trains " + workload + " (v1.5) on an ImageFolder tree (DIR/train/<class>/*.jpg, DIR/val/<class>/*.jpg) "
           "with the MLPerf v0.6 recipe.");
  p.option("data", "DIR", "folder holding train/ and val/ (see `pacer prepare fashion-mnist`)", "")
      .option("device", "D", "cpu, cuda or cuda:N", "cpu")
      .option("precision", "P", "32, 16-mixed, bf16-mixed or 16-O2", "32")
      .option("batch", "N", "global batch size", "32")
      .option("epochs", "N", "epochs", "5")
      .option("image-size", "N", "training / evaluation crop size", "224")
      .option("optimizer", "NAME", "sgd or lars", "lars")
      .option("lr", "X", "base learning rate (0 = the recipe's: LARS 5*B/1664, SGD 0.128*B/256)", "0")
      .option("weight-decay", "X", "weight decay, not on batch norm or biases (-1 = LARS 2e-4, SGD 1e-4)", "-1")
      .option("label-smoothing", "X", "label smoothing", "0.1")
      .option("eval-resize", "N", "evaluation: short side before the center crop (0 = image-size * 256 / 224)", "0")
      .option("crop-min-scale", "X", "random-resized crop: smallest area fraction (small images want more)", "0.05")
      .option("zero-init-residual", "on|off", "start each block's last batch-norm scale at 0 (each block the identity)", "on")
      .option("warmup-epochs", "X", "linear warmup epochs before the poly-2 decay", "5")
      .option("eval-every", "N", "evaluate every N epochs (and after the last)", "1")
      .option("target-accuracy", "X", "stop once val top-1 reaches X (0 = never)", "0")
      .option("out", "RUN_DIR", "write mlperf.log, tensorboard/ and checkpoint.safetensors here; - = none", "-")
      .option("resume", "CKPT", "continue from this checkpoint; - = start fresh", "-")
      .option("checkpoint-every", "N", "also checkpoint every N steps (0 = at epoch ends only)", "0")
      .option("seed", "N", "seed for initialization, shuffling and augmentation", "0")
      .option("loader-threads", "N", "JPEG decode threads (0 = all cores)", "0")
      .option("threads", "N", "compute threads (0 = PACER_NUM_THREADS or all cores)", "0")
      .option("stop-after-steps", "N", "stop after N steps of this run (0 = never)", "0")
      .option("graph", "on|off", "capture the step and replay it through the fusion passes, where supported", "on")
      .flag("quiet", "no progress output");
  Args a = p.parse(argv);
  models::ResnetTrainConfig c;
  c.depth = workload == "resnet18" ? 18 : workload == "resnet34" ? 34 : 50;
  c.data_dir = a.str("data");
  if (c.data_dir.empty()) throw UsageError("--data DIR is required (a folder with train/ and val/)");
  try {
    c.device = Device(a.str("device"));
    models::parse_precision(a.str("precision"));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  c.precision = a.str("precision");
  c.batch = a.integer("batch");
  c.epochs = a.integer("epochs");
  c.image_size = a.integer("image-size");
  c.optimizer = a.str("optimizer");
  c.lr = a.number("lr");
  c.weight_decay = a.number("weight-decay");
  c.label_smoothing = a.number("label-smoothing");
  c.crop_min_scale = a.number("crop-min-scale");
  c.eval_resize = a.integer("eval-resize");
  if (c.eval_resize != 0 && c.eval_resize < c.image_size)
    throw UsageError("--eval-resize must be 0 or at least --image-size (the center crop), got " +
                     std::to_string(c.eval_resize));
  c.warmup_epochs = a.number("warmup-epochs");
  const std::string zero_init = a.str("zero-init-residual");
  if (zero_init != "on" && zero_init != "off")
    throw UsageError("--zero-init-residual must be on or off, got '" + zero_init + "'");
  c.zero_init_residual = zero_init == "on";
  c.eval_every = a.integer("eval-every");
  c.target_accuracy = a.number("target-accuracy");
  c.out_dir = a.str("out") == "-" ? "" : a.str("out");
  c.resume = a.str("resume") == "-" ? "" : a.str("resume");
  c.checkpoint_every = a.integer("checkpoint-every");
  c.seed = uint64_t(a.integer("seed"));
  c.loader_threads = int(a.integer("loader-threads"));
  c.stop_after_steps = a.integer("stop-after-steps");
  const std::string graph = a.str("graph");
  if (graph != "on" && graph != "off") throw UsageError("--graph must be on or off, got '" + graph + "'");
  c.graph = graph == "on";
  if (c.batch < 1) throw UsageError("--batch must be at least 1");
  if (c.epochs < 1) throw UsageError("--epochs must be at least 1");
  if (c.optimizer != "sgd" && c.optimizer != "lars") throw UsageError("--optimizer must be sgd or lars");
  if (c.checkpoint_every > 0 && c.out_dir.empty()) throw UsageError("--checkpoint-every needs --out RUN_DIR");
  if (a.integer("threads") > 0) set_num_threads(int(a.integer("threads")));
  const bool quiet = a.flag("quiet");

  auto progress = [&](const models::ResnetProgress& s) {
    if (quiet) return;
    std::fprintf(stderr, "\repoch %lld/%lld  step %lld/%lld  loss %.4f  lr %.4g  %.1f img/s  ETA %.0fs   ",
                 (long long)s.epoch + 1, (long long)c.epochs, (long long)s.step, (long long)s.steps_per_epoch, s.loss,
                 s.lr, s.images_per_s, s.eta_s);
    if (s.loss_scale > 0) std::fprintf(stderr, "scale %g   ", s.loss_scale);
  };
  auto on_eval = [&](int64_t epoch, double top1, double top5) {
    if (!quiet) std::fprintf(stderr, "\nepoch %lld: val top-1 %.4f  top-5 %.4f\n", (long long)epoch + 1, top1, top5);
  };
  models::ResnetResult r = models::train_resnet(c, progress, on_eval);
  if (!r.graph_note.empty() && !quiet) std::fprintf(stderr, "note: %s\n", r.graph_note.c_str());
  JsonLine j;
  j.add("workload", workload)
      .add("eval_accuracy", r.top1)
      .add("top5", r.top5)
      .add("epochs", r.epochs)
      .add("wall_s", r.wall_s)
      .add("images_per_s", r.images_per_s)
      .add("precision", c.precision)
      .add("device", c.device.str())
      .add("skipped_images", r.skipped_images)
      .add("data_wait_fraction", r.data_wait_fraction)
      .add("reached_target", r.reached_target)
      .add("graph", r.graph);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace pacer::cli
