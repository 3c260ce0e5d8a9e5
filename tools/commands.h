#pragma once
/// The subcommands of `pacer`. Each takes the words after its name and returns an exit
/// status; usage mistakes throw cli::UsageError (exit 2).

#include <string>
#include <vector>

namespace pacer::cli {

int run_train(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);
int run_inspect(const std::vector<std::string>& args);
int run_prepare(const std::vector<std::string>& args);
int run_eval(const std::vector<std::string>& args);
int run_forward(const std::vector<std::string>& args);
int run_graph(const std::vector<std::string>& args);
/// `pacer train resnet50|resnet34|resnet18` (tools/cmd_train_resnet.cpp).
int train_resnet_command(const std::string& workload, const std::vector<std::string>& argv);

}  // namespace pacer::cli
