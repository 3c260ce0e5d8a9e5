// `pacer eval resnet50` (top-1 / top-5 of a checkpoint on DIR/val) and `pacer forward
// resnet50` (logits of a tensor: the quick check of a model against PyTorch).
#include <cstdio>

#include "autograd/grad_mode.h"
#include "models/resnet.h"
#include "models/resnet_training.h"
#include "nn/safetensors.h"
#include "ops/api.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "tools/json_line.h"

namespace pacer::cli {

namespace {

int depth_of(const std::string& workload, const std::string& usage) {
  if (workload == "resnet50") return 50;
  if (workload == "resnet34") return 34;
  if (workload == "resnet18") return 18;
  throw UsageError("unknown model '" + workload + "' (available: resnet50, resnet34, resnet18)\n\n" + usage);
}

}  // namespace

int run_eval(const std::vector<std::string>& args) {
  const std::string usage = "usage: pacer eval <resnet50|resnet34|resnet18> --data DIR --checkpoint CKPT [options]\n";
  if (args.empty()) throw UsageError("expected a model\n\n" + usage);
  if (args[0] == "--help" || args[0] == "-h") throw HelpRequested(usage);
  const int depth = depth_of(args[0], usage);
  Parser p("pacer eval " + args[0] + " [options]", "Top-1 / top-5 accuracy of a checkpoint on DIR/val.");
  p.option("data", "DIR", "folder holding val/<class>/*.jpg", "")
      .option("checkpoint", "CKPT", "a training checkpoint or a torchvision-style state_dict (safetensors)", "")
      .option("image-size", "N", "center-crop size (resize to N * 256 / 224 first)", "224")
      .option("eval-resize", "N", "short side before the center crop (0 = image-size * 256 / 224)", "0")
      .option("batch", "N", "evaluation batch", "64")
      .option("device", "D", "cpu, cuda or cuda:N", "cpu")
      .option("precision", "P", "32, 16-mixed, bf16-mixed or 16-O2", "32");
  Args a = p.parse(std::vector<std::string>(args.begin() + 1, args.end()));
  if (a.str("data").empty() || a.str("checkpoint").empty()) throw UsageError("--data DIR and --checkpoint CKPT are required");
  Device device;
  try {
    device = Device(a.str("device"));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  auto model = models::load_resnet(depth, nn::load_safetensors(a.str("checkpoint")));
  if (!device.is_cpu()) model->to(device);
  const auto [top1, top5] =
      models::evaluate_resnet(*model, a.str("data"), a.integer("image-size"), a.integer("batch"), a.str("precision"), device,
                              a.integer("eval-resize"));
  JsonLine j;
  j.add("workload", args[0]).add("top1", top1).add("top5", top5).add("checkpoint", a.str("checkpoint"));
  std::printf("%s\n", j.str().c_str());
  return 0;
}

int run_forward(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: pacer forward <resnet50|resnet34|resnet18> --weights W.safetensors --input X.safetensors "
      "--output Y.safetensors\n";
  if (args.empty()) throw UsageError("expected a model\n\n" + usage);
  if (args[0] == "--help" || args[0] == "-h") throw HelpRequested(usage);
  const int depth = depth_of(args[0], usage);
  Parser p("pacer forward " + args[0] + " [options]",
           "Runs the model in eval mode on the tensor named `input` (N x 3 x H x W, float32) and writes `logits`.");
  p.option("weights", "W", "torchvision-style state_dict or training checkpoint (safetensors)", "")
      .option("input", "X", "safetensors file with a tensor named input", "")
      .option("output", "Y", "where to write the tensor named logits", "");
  Args a = p.parse(std::vector<std::string>(args.begin() + 1, args.end()));
  if (a.str("weights").empty() || a.str("input").empty() || a.str("output").empty())
    throw UsageError("--weights, --input and --output are required");
  auto model = models::load_resnet(depth, nn::load_safetensors(a.str("weights")));
  Tensor x;
  for (auto& [k, t] : nn::load_safetensors(a.str("input")))
    if (k == "input") x = t;
  PACER_CHECK(x.defined(), "forward: '{}' holds no tensor named 'input'", a.str("input"));
  model->eval();
  NoGradGuard no_grad;
  const Tensor logits = contiguous(model->forward(x));
  nn::save_safetensors(a.str("output"), {{"logits", logits}});
  JsonLine j;
  j.add("workload", args[0]).add("output", a.str("output")).add("batch", x.size(0)).add("classes", logits.size(1));
  std::printf("%s\n", j.str().c_str());
  return 0;
}

}  // namespace pacer::cli
