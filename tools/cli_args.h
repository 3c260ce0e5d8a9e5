#pragma once
/// The `pacer` command-line parser: every option is declared with its help text, so
/// `--help` lists them all and anything undeclared is an error that names the valid ones.

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace pacer::cli {

/// A usage mistake (unknown flag, bad value): printed with a hint, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// `--help` was given; what() is the help text (exit status 0).
struct HelpRequested : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  std::string str(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  double number(const std::string& name) const;
  bool flag(const std::string& name) const;
  bool given(const std::string& name) const;

 private:
  friend class Parser;
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> given_;
};

class Parser {
 public:
  Parser(std::string usage, std::string summary) : usage_(std::move(usage)), summary_(std::move(summary)) {}
  /// An option taking a value ("--epochs N"); an empty default means required.
  Parser& option(const std::string& name, const std::string& metavar, const std::string& help,
                 const std::string& default_value);
  /// A switch without a value ("--json").
  Parser& flag(const std::string& name, const std::string& help);
  /// Parses argv (without the command words); throws UsageError or HelpRequested.
  Args parse(const std::vector<std::string>& argv) const;
  std::string help() const;

 private:
  struct Spec {
    std::string name, metavar, help, default_value;
    bool is_flag;
  };
  const Spec* find(const std::string& name) const;
  std::string usage_, summary_;
  std::vector<Spec> specs_;
};

}  // namespace pacer::cli
