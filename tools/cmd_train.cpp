// `pacer train <workload>`: trains with progress on stderr and ends with one JSON line.
#include <cstdio>

#include "core/thread_pool.h"
#include "models/classifier_training.h"
#include "models/precision.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "tools/json_line.h"

namespace pacer::cli {

namespace {

// `pacer train mlp` and `pacer train cnn`: the same recipe and options, two models.
int train_classifier_command(const std::string& model, const std::vector<std::string>& argv) {
  const std::string what = model == "mlp" ? "the 784-256-10 MLP" : "the two-block conv-BN-ReLU-pool CNN";
  Parser p("pacer train " + model + " [options]", "Trains " + what + " on Fashion-MNIST with SGD + momentum.");
  p.option("data", "DIR", "folder with the Fashion-MNIST IDX files", data::kFashionMnistDir)
      .option("epochs", "N", "passes over the training set", model == "mlp" ? "10" : "5")
      .option("batch", "N", "minibatch size", "64")
      .option("lr", "X", "learning rate", "0.05")
      .option("momentum", "X", "SGD momentum", "0.9")
      .option("seed", "N", "seed for initialization and shuffling", "0")
      .option("lr-decay-epoch", "N", "divide the learning rate by 10 from this epoch on (0 = never)",
              model == "mlp" ? "0" : "4")
      .option("train-limit", "N", "use only the first N training samples (0 = all)", "0")
      .option("test-limit", "N", "evaluate on the first N test samples (0 = all)", "0")
      .option("checkpoint", "FILE", "save a training checkpoint (safetensors) here; - = none", "-")
      .option("checkpoint-every", "N", "also save every N steps (0 = only at the end)", "0")
      .option("resume", "FILE", "continue from this training checkpoint; - = start fresh", "-")
      .option("threads", "N", "CPU threads (0 = PACER_NUM_THREADS or all cores)", "0")
      .option("precision", "P", "32, 16-mixed (f16 autocast + loss scaling), bf16-mixed, 16-O2 (f16 model, f32 "
                                "master weights and batch norm)", "32")
      .flag("quiet", "no progress output");
  Args a = p.parse(argv);
  models::TrainConfig c;
  c.model = model;
  c.data_dir = a.str("data");
  c.epochs = a.integer("epochs");
  c.batch = a.integer("batch");
  c.lr = a.number("lr");
  c.momentum = a.number("momentum");
  c.seed = uint64_t(a.integer("seed"));
  c.lr_decay_epoch = a.integer("lr-decay-epoch");
  c.checkpoint = a.str("checkpoint") == "-" ? "" : a.str("checkpoint");
  c.checkpoint_every = a.integer("checkpoint-every");
  c.resume = a.str("resume") == "-" ? "" : a.str("resume");
  c.precision = a.str("precision");
  try {
    models::parse_precision(c.precision);
  } catch (const Error& e) {
    throw UsageError(std::string("--precision: ") + e.what());
  }
  if (c.checkpoint_every < 0) throw UsageError("--checkpoint-every must be >= 0");
  if (c.checkpoint_every > 0 && c.checkpoint.empty()) throw UsageError("--checkpoint-every needs --checkpoint FILE");
  c.train_limit = a.integer("train-limit");
  c.test_limit = a.integer("test-limit");
  if (c.epochs < 1) throw UsageError("--epochs must be at least 1");
  if (c.batch < 1) throw UsageError("--batch must be at least 1");
  if (!(c.lr > 0)) throw UsageError("--lr must be positive");
  if (a.integer("threads") > 0) set_num_threads(int(a.integer("threads")));
  const bool quiet = a.flag("quiet");

  auto progress = [&](const models::TrainProgress& s) {
    if (quiet) return;
    const double done = (double(s.epoch) + double(s.step) / double(s.steps_per_epoch)) / double(c.epochs);
    const double eta = done > 0 ? s.elapsed_s * (1 - done) / done : 0;
    std::fprintf(stderr, "\repoch %lld/%lld  step %lld/%lld  loss %.4f  %.0f samples/s  ETA %.0fs   ",
                 (long long)s.epoch + 1, (long long)c.epochs, (long long)s.step, (long long)s.steps_per_epoch, s.loss,
                 s.samples_per_s, eta);
    if (s.loss_scale > 0) std::fprintf(stderr, "scale %g  skipped %lld   ", s.loss_scale, (long long)s.skipped_steps);
    if (s.step == s.steps_per_epoch) std::fputc('\n', stderr);
  };
  models::TrainResult r = models::train_classifier(c, progress);
  JsonLine j;
  j.add("workload", model)
      .add("eval_accuracy", r.eval_accuracy)
      .add("epochs", r.epochs)
      .add("wall_s", r.wall_s)
      .add("final_loss", r.final_loss)
      .add("train_samples_per_s", r.train_samples_per_s)
      .add("threads", num_threads())
      .add("precision", c.precision);
  if (r.loss_scale > 0) j.add("loss_scale", r.loss_scale).add("skipped_steps", r.skipped_steps);
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace

int run_train(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: pacer train <workload> [options]\n\nworkloads:\n  mlp      784-256-10 MLP on Fashion-MNIST\n"
      "  cnn      small conv-BN-ReLU-pool CNN on Fashion-MNIST\n"
      "  resnet50 ResNet-50 v1.5, MLPerf v0.6 recipe, on an ImageFolder tree (also resnet18, resnet34)\n\n"
      "`pacer train <workload> --help` lists its options.\n";
  if (args.empty()) throw UsageError("expected a workload\n\n" + usage);
  if (args[0] == "--help" || args[0] == "-h") throw HelpRequested(usage);
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "mlp" || args[0] == "cnn") return train_classifier_command(args[0], rest);
  if (args[0] == "resnet50" || args[0] == "resnet34" || args[0] == "resnet18") return train_resnet_command(args[0], rest);
  throw UsageError("unknown workload '" + args[0] + "' (available: mlp, cnn, resnet50, resnet34, resnet18)\n\n" + usage);
}

}  // namespace pacer::cli
