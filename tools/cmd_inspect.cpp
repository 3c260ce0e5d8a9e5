// `pacer inspect FILE.safetensors`: lists a checkpoint's tensors without loading them,
// after validating the whole header (a malformed file is an error, exit status 1).
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>

#include "nn/safetensors.h"
#include "tools/cli_args.h"
#include "tools/commands.h"
#include "tools/json_line.h"

namespace pacer::cli {

namespace {

// JsonLine holds flat values only; shape and offsets are JSON arrays, so they are
// appended to its text (fmt prints a Shape as "[2, 3]", which is valid JSON).
std::string json_entry(const nn::SafetensorsEntry& e) {
  JsonLine j;
  j.add("name", e.name).add("dtype", nn::safetensors_dtype_name(e.dtype));
  std::string s = j.str();
  s.pop_back();
  return s + fmt::format(", \"shape\": {}, \"data_offsets\": [{}, {}]}}", e.shape, e.begin, e.end);
}

}  // namespace

int run_inspect(const std::vector<std::string>& args) {
  Parser p("pacer inspect FILE.safetensors [options]",
           "Validates a safetensors file and lists its tensors, one line each: name, dtype, shape.");
  p.flag("json", "print one JSON object per tensor (name, dtype, shape, data_offsets)");
  // The Parser knows only options: the first word that is not one is the file.
  std::vector<std::string> rest;
  std::string file;
  for (const std::string& word : args) {
    if (file.empty() && !word.empty() && word[0] != '-') file = word;
    else rest.push_back(word);
  }
  const Args a = p.parse(rest);
  if (file.empty()) throw UsageError("missing FILE.safetensors\n\n" + p.help());

  const std::vector<nn::SafetensorsEntry> entries = nn::inspect_safetensors(file);
  size_t name_width = 0;
  for (const auto& e : entries) name_width = std::max(name_width, e.name.size());
  for (const auto& e : entries) {
    if (a.flag("json")) std::printf("%s\n", json_entry(e).c_str());
    else std::printf("%s\n", fmt::format("{:<{}}  {:<4}  {}", e.name, name_width, nn::safetensors_dtype_name(e.dtype),
                                         e.shape).c_str());
  }
  return 0;
}

}  // namespace pacer::cli
