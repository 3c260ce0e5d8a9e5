// `pacer`: one binary, one subcommand per job (DESIGN §7).
#include <fmt/core.h>

#include <cstdio>

#include "core/error.h"
#include "tools/cli_args.h"
#include "tools/commands.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>&);
};

constexpr Command kCommands[] = {
    {"train", "train a workload (mlp, cnn, resnet50) and print its final JSON line", pacer::cli::run_train},
    {"bench", "run a benchmark case (gemm, add, conv2d, train-step, ...) and print JSON lines", pacer::cli::run_bench},
    {"prepare", "convert a data set for a workload (fashion-mnist -> ImageFolder JPEGs)", pacer::cli::run_prepare},
    {"eval", "top-1 / top-5 of a ResNet checkpoint on an ImageFolder val/ tree", pacer::cli::run_eval},
    {"forward", "a ResNet's logits for a tensor (check a model against PyTorch)", pacer::cli::run_forward},
    {"graph", "capture a training step, run the fusion passes, report what each did", pacer::cli::run_graph},
    {"inspect", "list the tensors of a safetensors file", pacer::cli::run_inspect},
};

std::string top_help() {
  std::string out = "usage: pacer <command> [options]\n\nPacer: a small, fast C++ deep-learning framework.\n\ncommands:\n";
  for (const Command& c : kCommands) out += fmt::format("  {:<8} {}\n", c.name, c.summary);
  out += "\n`pacer <command> --help` lists the options of a command.\n";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(top_help().c_str(), args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  for (const Command& c : kCommands) {
    if (args[0] != c.name) continue;
    try {
      return c.run(std::vector<std::string>(args.begin() + 1, args.end()));
    } catch (const pacer::cli::HelpRequested& h) {
      std::fputs(h.what(), stdout);
      return 0;
    } catch (const pacer::cli::UsageError& e) {
      std::fprintf(stderr, "pacer %s: %s\n", c.name, e.what());
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "pacer %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "pacer: unknown command '%s'\n\n%s", args[0].c_str(), top_help().c_str());
  return 2;
}
