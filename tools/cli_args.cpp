#include "tools/cli_args.h"

#include <fmt/core.h>

#include <charconv>
#include <cstdlib>

namespace pacer::cli {

Parser& Parser::option(const std::string& name, const std::string& metavar, const std::string& help,
                       const std::string& default_value) {
  specs_.push_back({name, metavar, help, default_value, false});
  return *this;
}

Parser& Parser::flag(const std::string& name, const std::string& help) {
  specs_.push_back({name, "", help, "", true});
  return *this;
}

const Parser::Spec* Parser::find(const std::string& name) const {
  for (const Spec& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

std::string Parser::help() const {
  std::string out = fmt::format("usage: {}\n\n{}\n\noptions:\n", usage_, summary_);
  for (const Spec& s : specs_) {
    std::string lhs = s.is_flag ? "--" + s.name : fmt::format("--{} {}", s.name, s.metavar);
    std::string def = s.is_flag || s.default_value.empty() ? (s.is_flag ? "" : " (required)")
                                                           : fmt::format(" (default: {})", s.default_value);
    out += fmt::format("  {:<24} {}{}\n", lhs, s.help, def);
  }
  out += fmt::format("  {:<24} {}\n", "--help", "show this help and exit");
  return out;
}

Args Parser::parse(const std::vector<std::string>& argv) const {
  Args a;
  for (const Spec& s : specs_) {
    a.values_[s.name] = s.is_flag ? "0" : s.default_value;
    a.given_[s.name] = false;
  }
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--help" || arg == "-h") throw HelpRequested(help());
    if (arg.rfind("--", 0) != 0) throw UsageError(fmt::format("unexpected argument '{}'\n\n{}", arg, help()));
    std::string name = arg.substr(2), value;
    const size_t eq = name.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Spec* s = find(name);
    if (!s) throw UsageError(fmt::format("unknown option '--{}'\n\n{}", name, help()));
    if (s->is_flag) {
      if (inline_value) throw UsageError(fmt::format("option '--{}' takes no value", name));
      a.values_[name] = "1";
    } else {
      if (!inline_value) {
        if (i + 1 >= argv.size()) throw UsageError(fmt::format("option '--{}' expects a value ({})", name, s->metavar));
        value = argv[++i];
      }
      a.values_[name] = value;
    }
    a.given_[name] = true;
  }
  for (const Spec& s : specs_)
    if (!s.is_flag && a.values_[s.name].empty())
      throw UsageError(fmt::format("missing required option '--{} {}'\n\n{}", s.name, s.metavar, help()));
  return a;
}

std::string Args::str(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw std::logic_error("undeclared option " + name);
  return it->second;
}

bool Args::given(const std::string& name) const {
  auto it = given_.find(name);
  return it != given_.end() && it->second;
}

int64_t Args::integer(const std::string& name) const {
  const std::string v = str(name);
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size())
    throw UsageError(fmt::format("option '--{}' expects an integer, got '{}'", name, v));
  return out;
}

double Args::number(const std::string& name) const {
  const std::string v = str(name);
  char* end = nullptr;
  const double out = std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size())
    throw UsageError(fmt::format("option '--{}' expects a number, got '{}'", name, v));
  return out;
}

bool Args::flag(const std::string& name) const { return str(name) == "1"; }

}  // namespace pacer::cli
