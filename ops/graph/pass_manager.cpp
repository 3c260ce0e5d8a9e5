#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "ops/graph/executor.h"
#include "ops/graph/pass.h"

namespace pacer::graph {

namespace {

struct Registry {
  std::mutex m;
  std::vector<std::pair<std::string, PassFactory>> passes;
};

Registry& registry() {
  static Registry r;
  return r;
}

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream f(p);
  PACER_CHECK(f.good(), "PACER_DUMP_GRAPH: cannot write {}", p.string());
  f << text;
}

size_t planned_bytes(const Graph& g) { return Executor(g).stats().planned_bytes; }

}  // namespace

std::string PassContext::option(const std::string& key, const std::string& fallback) const {
  auto it = options_.find(key);
  return it == options_.end() ? fallback : it->second;
}

void register_pass(const std::string& name, PassFactory factory) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.m);
  for (const auto& [n, f] : r.passes) PACER_CHECK(n != name, "register_pass: a pass named '{}' is already registered", name);
  r.passes.emplace_back(name, std::move(factory));
}

std::vector<std::string> registered_passes() {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.m);
  std::vector<std::string> out;
  for (const auto& [n, f] : r.passes) out.push_back(n);
  return out;
}

std::unique_ptr<Pass> make_pass(const std::string& name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.m);
  std::string known;
  for (const auto& [n, f] : r.passes) {
    if (n == name) return f();
    known += (known.empty() ? "" : ", ") + n;
  }
  PACER_FAIL("unknown graph pass '{}'; the registered passes are: {}", name, known);
}

std::vector<std::string> default_passes() {
  return {"cse",           "dce",          "bn_relu",   "conv_bn",      "cast_elim",         "gemm_epilogue",
          "softmax_xent",  "pointwise_fusion", "amp_skip", "multi_tensor", "recompute_bn_relu", "conv_backward_pairs"};
}

PassManager& PassManager::add(std::unique_ptr<Pass> pass) {
  PACER_CHECK(pass != nullptr, "PassManager::add: the pass is null");
  passes_.push_back(std::move(pass));
  return *this;
}

PassManager& PassManager::add_list(const std::string& names) {
  size_t start = 0;
  while (start <= names.size()) {
    size_t end = names.find(',', start);
    if (end == std::string::npos) end = names.size();
    const std::string name = names.substr(start, end - start);
    if (name == "default") {
      for (const std::string& n : default_passes()) add(n);
    } else if (!name.empty() && name != "none") {
      add(name);
    }
    start = end + 1;
  }
  return *this;
}

PassManager& PassManager::set_option(const std::string& key, const std::string& value) {
  options_[key] = value;
  return *this;
}

PassManager& PassManager::dump_to(std::string dir) {
  dump_dir_ = std::move(dir);
  return *this;
}

std::vector<PassReport> PassManager::run(Graph& g) const {
  std::string dir = dump_dir_;
  if (dir.empty())
    if (const char* env = std::getenv("PACER_DUMP_GRAPH")) dir = env;
  if (!dir.empty()) std::filesystem::create_directories(dir);
  auto dump = [&](size_t index, const std::string& when, const std::string& pass, const PassContext* ctx) {
    if (dir.empty()) return;
    const std::string stem = fmt::format("{:02}-{}-{}", index, when, pass);
    std::string text = to_text(g);
    if (ctx) {
      for (const std::string& f : ctx->fused_groups()) text += "# fused: " + f + "\n";
      for (const std::string& r : ctx->rejections()) text += "# rejected: " + r + "\n";
    }
    write_text(std::filesystem::path(dir) / (stem + ".txt"), text);
    write_text(std::filesystem::path(dir) / (stem + ".dot"), to_dot(g));
  };

  std::vector<PassReport> reports;
  for (size_t i = 0; i < passes_.size(); ++i) {
    Pass& pass = *passes_[i];
    PassReport r;
    r.pass = pass.name();
    r.nodes_before = int64_t(g.nodes.size());
    r.launches_before = g.launches();
    dump(i + 1, "before", r.pass, nullptr);
    PassContext ctx(options_);
    const auto t0 = std::chrono::steady_clock::now();
    try {
      pass.run(g, ctx);
    } catch (const Error& e) {
      throw Error(fmt::format("graph pass '{}': {}", r.pass, e.what()));
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    g.rebuild_uses();
    verify(g, "pass '" + r.pass + "'");
    dump(i + 1, "after", r.pass, &ctx);
    r.nodes_after = int64_t(g.nodes.size());
    r.launches_after = g.launches();
    r.planned_bytes_after = planned_bytes(g);
    r.fused_groups = ctx.fused_groups();
    r.rejected = ctx.rejections();
    reports.push_back(std::move(r));
  }
  return reports;
}

}  // namespace pacer::graph
