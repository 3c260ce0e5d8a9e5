#pragma once
/// Passes and the PassManager (DESIGN §5). A pass is a class with a name and a run(Graph&)
/// that rewrites the graph; built-in passes and users' passes register the same way:
///
///   class MyPass final : public pacer::graph::Pass {
///    public:
///     std::string name() const override { return "my_pass"; }
///     void run(Graph& g, PassContext& ctx) override { ... ctx.fused("..."); ... }
///   };
///   PACER_REGISTER_PASS(MyPass);     // then "my_pass" works in --passes lists
///
/// The manager verifies the graph after every pass, reports what each did, and with
/// PACER_DUMP_GRAPH=DIR writes the graph (text and DOT) before and after each pass.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ops/graph/graph.h"

namespace pacer::graph {

/// What a pass sees besides the graph: its options and where it reports.
class PassContext {
 public:
  explicit PassContext(std::map<std::string, std::string> options = {}) : options_(std::move(options)) {}
  /// A per-run option ("key" of --pass-option key=value), or `fallback`.
  std::string option(const std::string& key, const std::string& fallback = "") const;
  /// Records one fused group (a short description of what was fused).
  void fused(std::string what) { fused_.push_back(std::move(what)); }
  /// Records a fusion not made, with the reason (kept in the report and the dump).
  void rejected(std::string why) { rejected_.push_back(std::move(why)); }

  const std::vector<std::string>& fused_groups() const { return fused_; }
  const std::vector<std::string>& rejections() const { return rejected_; }

 private:
  std::map<std::string, std::string> options_;
  std::vector<std::string> fused_, rejected_;
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual std::string name() const = 0;
  /// One line for listings.
  virtual std::string summary() const { return ""; }
  virtual void run(Graph& g, PassContext& ctx) = 0;
};

using PassFactory = std::function<std::unique_ptr<Pass>()>;

/// Makes `name` available to PassManager::add(name); a second registration of a name
/// is an error.
void register_pass(const std::string& name, PassFactory factory);
/// The registered pass names, in registration order.
std::vector<std::string> registered_passes();
/// A new instance of the pass registered as `name`; an error lists the known names.
std::unique_ptr<Pass> make_pass(const std::string& name);
/// The built-in passes in their default order.
std::vector<std::string> default_passes();

struct PassReport {
  std::string pass;
  int64_t nodes_before = 0, nodes_after = 0;
  int64_t launches_before = 0, launches_after = 0;
  size_t planned_bytes_after = 0;
  double seconds = 0;  // the pass's own run time
  std::vector<std::string> fused_groups;
  std::vector<std::string> rejected;
};

class PassManager {
 public:
  PassManager& add(std::unique_ptr<Pass> pass);
  PassManager& add(const std::string& name) { return add(make_pass(name)); }
  /// Adds each name of a comma-separated list ("dce,cse"; empty names are skipped); the word
  /// "default" stands for the default passes ("dce,default" runs dce first), "none" for none.
  PassManager& add_list(const std::string& names);
  /// Options every pass can read through PassContext::option.
  PassManager& set_option(const std::string& key, const std::string& value);
  /// Where to dump (overrides PACER_DUMP_GRAPH); empty: the environment variable decides.
  PassManager& dump_to(std::string dir);

  /// Runs the passes in order; returns one report per pass.
  std::vector<PassReport> run(Graph& g) const;

 private:
  std::vector<std::unique_ptr<Pass>> passes_;
  std::map<std::string, std::string> options_;
  std::string dump_dir_;
};

namespace detail {
struct PassRegistrar {
  PassRegistrar(const std::string& name, PassFactory f) { register_pass(name, std::move(f)); }
};
}  // namespace detail

}  // namespace pacer::graph

/// Registers pass class T (default-constructible) under T().name().
#define PACER_REGISTER_PASS(T)                                                                        \
  static ::pacer::graph::detail::PassRegistrar pacer_pass_reg_##T(T().name(), [] {                    \
    return std::unique_ptr<::pacer::graph::Pass>(new T());                                            \
  })
