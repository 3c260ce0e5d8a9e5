#pragma once
/// The subcommands of `pacer`. Each takes the words after its name and returns an exit
/// status; usage mistakes throw cli::UsageError (exit 2).

#include <string>
#include <vector>

namespace pacer::cli {

int run_train(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);
int run_inspect(const std::vector<std::string>& args);

}  // namespace pacer::cli
