#pragma once
/// MLPerf Training v0.6 run log: one line per event,
///
///   :::MLL 1574384734.123 epoch_start: {"value": null, "metadata": {"file": "x.cpp", "lineno": 9, "epoch_num": 1}}
///
/// (unix time in seconds with milliseconds, key, JSON object). The rules followed are those of
/// the compliance checker in PyPI `mlperf-logging` (checked with 4.1.68):
/// `mlperf_logging/compliance_checker/training_0.6.0/common.yaml` and `.../resnet.yaml`,
/// parsed by `compliance_checker/mlp_parser/ruleset_060.py`. Run it with
/// `python3 -m mlperf_logging.compliance_checker --usage training --ruleset 0.6.0 mlperf.log`.
///
/// The order those rules accept for a ResNet run:
///   log_resnet_header(...)                       submission_*, cache_clear, init_start, hyperparameters
///   init_stop, run_start
///   per block of E epochs (evaluated at its last one, epoch numbers start at 1):
///     block_start  {first_epoch_num, epoch_count}
///     epoch_start / epoch_stop {epoch_num} for each epoch of the block
///     eval_start, eval_accuracy (value: top-1 in [0, 1]), eval_stop   {epoch_num} = the block's last
///     block_stop   {first_epoch_num}
///   run_stop {status: "success"}   (the checker accepts only "success"; log "aborted" anyway
///                                   when the target was not reached: the log must not lie)

#include <concepts>
#include <cstdint>
#include <mutex>
#include <source_location>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace pacer::models {

/// A JSON value for a log line: null, bool, integer, floating point, string, or a list of
/// these (e.g. decay boundary epochs). Any integer or floating type converts implicitly, so
/// `log.event("train_samples", dataset.size())` works without casts.
class MlperfValue {
 public:
  using List = std::vector<MlperfValue>;
  MlperfValue() = default;  // null
  MlperfValue(std::nullptr_t) {}
  MlperfValue(bool b) : v_(b) {}
  template <std::integral T>
  requires(!std::same_as<T, bool>) MlperfValue(T i) : v_(static_cast<int64_t>(i)) {}
  template <std::floating_point T>
  MlperfValue(T d) : v_(static_cast<double>(d)) {}
  MlperfValue(const char* s) : v_(std::string(s)) {}
  MlperfValue(std::string s) : v_(std::move(s)) {}
  MlperfValue(std::string_view s) : v_(std::string(s)) {}
  MlperfValue(List l) : v_(std::move(l)) {}
  template <typename T>
  MlperfValue(const std::vector<T>& l) : v_(List(l.begin(), l.end())) {}

  using Variant = std::variant<std::monostate, bool, int64_t, double, std::string, List>;
  const Variant& variant() const { return v_; }

 private:
  Variant v_;
};

/// Metadata entries, in the order given, after "file" and "lineno" (an entry named like
/// those replaces it). E.g. {{"epoch_num", 3}} or {{"status", "success"}}.
using MlperfMetadata = std::vector<std::pair<std::string, MlperfValue>>;

/// Appends `:::MLL` lines to a file. Each line goes to the kernel in one write() as soon as
/// it is logged (a crash loses no earlier line, and lines of concurrent loggers do not
/// interleave), from any thread. Timestamps never decrease within one MlperfLog, even if
/// the wall clock steps back.
class MlperfLog {
 public:
  /// Opens (creates) `path` for appending; throws pacer::Error naming the path and the
  /// system's reason when it cannot.
  explicit MlperfLog(const std::string& path);
  ~MlperfLog();
  MlperfLog(const MlperfLog&) = delete;
  MlperfLog& operator=(const MlperfLog&) = delete;

  /// Logs `key` (letters, digits, '_'; anything else throws) with `value` and `metadata`.
  /// "file"/"lineno" name the caller's source line (the last two path components).
  void event(std::string_view key, const MlperfValue& value = nullptr, const MlperfMetadata& metadata = {},
             std::source_location where = std::source_location::current());

  /// The line event() would write, without writing it (for tests and echoing).
  static std::string format_line(int64_t unix_ms, std::string_view key, const MlperfValue& value,
                                 const MlperfMetadata& metadata, std::source_location where);

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::mutex mutex_;
  int64_t last_ms_ = 0;
};

/// The values a ResNet-50 run logs before init_stop. `opt_name` "sgd" needs
/// `decay_boundary_epochs` (step decay) or, for Pacer's poly decay, `lars_decay_steps` (then the
/// log is not v0.6-compliant: those rules know step decay only for SGD); "lars" needs the
/// lars_* fields (poly decay).
struct ResnetLogConfig {
  // Who and what (submission_*).
  std::string org = "pacer";
  std::string platform = "cpu";
  std::string division = "open";    // "closed" or "open"
  std::string status = "research";  // "cloud", "onprem" or "research"
  std::string poc_name = "pacer";
  std::string entry = "pacer-resnet50";
  // Data and optimizer.
  int64_t global_batch_size = 0;
  int64_t train_samples = 0;
  int64_t eval_samples = 0;
  std::string opt_name = "lars";  // "sgd" or "lars"
  double base_learning_rate = 0;
  double warmup_epochs = 0;  // the checker wants > 0
  double momentum = 0.9;
  double weight_decay = 0;                     // sgd: opt_weight_decay; lars: lars_opt_weight_decay (> 0)
  double label_smoothing = 0;                  // logged when > 0
  std::vector<int64_t> decay_boundary_epochs;  // sgd only
  int64_t lars_decay_steps = 0;                // lars only: total steps of the poly decay
  double lars_poly_power = 2;                  // lars only
  double lars_epsilon = 0;                     // lars only
  int64_t bn_span = 0;                         // images per batch-norm statistics group (per-GPU batch)
  int64_t seed = 0;
};

/// Writes submission_* (benchmark "resnet"), cache_clear (true), init_start and the
/// hyperparameters the v0.6 ResNet rules require. Throws pacer::Error before writing
/// anything when a value would fail those rules (e.g. batch size 0, unknown optimizer).
void log_resnet_header(MlperfLog& log, const ResnetLogConfig& config,
                       std::source_location where = std::source_location::current());

}  // namespace pacer::models
