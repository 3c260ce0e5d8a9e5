#include "models/mlperf_log.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace pacer::models {
namespace {

using Json = nlohmann::ordered_json;

Json to_json(const MlperfValue& value) {
  return std::visit(
      [](const auto& v) -> Json {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return nullptr;
        } else if constexpr (std::is_same_v<T, MlperfValue::List>) {
          Json a = Json::array();
          for (const MlperfValue& e : v) a.push_back(to_json(e));
          return a;
        } else {
          return v;
        }
      },
      value.variant());
}

// nlohmann's compact dump has no spaces; the v0.6 reference loggers wrote Python's
// json.dumps style (", " and ": "), which is what people grep for, so we match it.
std::string dump_spaced(const Json& j) {
  if (j.is_object()) {
    std::string s = "{";
    bool first = true;
    for (const auto& [k, v] : j.items()) {
      if (!first) s += ", ";
      first = false;
      s += Json(k).dump() + ": " + dump_spaced(v);
    }
    return s + "}";
  }
  if (j.is_array()) {
    std::string s = "[";
    for (size_t i = 0; i < j.size(); ++i) s += (i ? ", " : "") + dump_spaced(j[i]);
    return s + "]";
  }
  // Non-finite doubles would come out as null, silently changing a logged number's type.
  PACER_CHECK(!j.is_number_float() || std::isfinite(j.get<double>()),
              "MlperfLog: a value must be a finite number, got {}", j.get<double>());
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// "/home/u/pacer/models/resnet_training.cpp" -> "models/resnet_training.cpp": enough to
// find the line, without the builder's directory layout.
std::string short_file(const char* file) {
  std::string_view f(file);
  size_t cut = f.rfind('/');
  if (cut != std::string_view::npos && cut > 0) {
    size_t before = f.rfind('/', cut - 1);
    if (before != std::string_view::npos) f.remove_prefix(before + 1);
  }
  return std::string(f);
}

bool valid_key(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

MlperfLog::MlperfLog(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  PACER_CHECK(fd_ >= 0, "MlperfLog: cannot open '{}' for appending: {}", path, std::strerror(errno));
}

MlperfLog::~MlperfLog() {
  if (fd_ >= 0) ::close(fd_);
}

std::string MlperfLog::format_line(int64_t unix_ms, std::string_view key, const MlperfValue& value,
                                   const MlperfMetadata& metadata, std::source_location where) {
  PACER_CHECK(valid_key(key),
              "MlperfLog: a key must be letters, digits and '_' (the v0.6 parser's [A-Za-z0-9_]+), got '{}'", key);
  Json meta = Json::object();
  meta["file"] = short_file(where.file_name());
  meta["lineno"] = where.line();
  for (const auto& [k, v] : metadata) meta[k] = to_json(v);
  Json line = Json::object();
  line["value"] = to_json(value);
  line["metadata"] = std::move(meta);
  return fmt::format(":::MLL {}.{:03d} {}: {}\n", unix_ms / 1000, unix_ms % 1000, key, dump_spaced(line));
}

void MlperfLog::event(std::string_view key, const MlperfValue& value, const MlperfMetadata& metadata,
                      std::source_location where) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Clamped so that the checker's ordering (and a reader's durations) never see time run
  // backwards when NTP steps the clock.
  last_ms_ = std::max(last_ms_, now_ms());
  std::string line = format_line(last_ms_, key, value, metadata, where);
  // O_APPEND + one write per line: concurrent writers (other ranks, other processes) cannot
  // interleave inside a line. A short write only happens on a full disk or a signal.
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    PACER_CHECK(n > 0, "MlperfLog: writing to '{}' failed: {}", path_, n < 0 ? std::strerror(errno) : "no progress");
    done += static_cast<size_t>(n);
  }
}

void log_resnet_header(MlperfLog& log, const ResnetLogConfig& c, std::source_location where) {
  // Check everything first: a half-written header would fail the checker in a less obvious way.
  PACER_CHECK(c.division == "closed" || c.division == "open",
              "log_resnet_header: division must be 'closed' or 'open', got '{}'", c.division);
  PACER_CHECK(c.status == "cloud" || c.status == "onprem" || c.status == "research",
              "log_resnet_header: status must be 'cloud', 'onprem' or 'research', got '{}'", c.status);
  PACER_CHECK(!c.org.empty() && !c.platform.empty() && !c.poc_name.empty() && !c.entry.empty(),
              "log_resnet_header: org, platform, poc_name and entry must be non-empty");
  PACER_CHECK(c.opt_name == "sgd" || c.opt_name == "lars",
              "log_resnet_header: opt_name must be 'sgd' or 'lars', got '{}'", c.opt_name);
  PACER_CHECK(c.global_batch_size > 0, "log_resnet_header: global_batch_size must be > 0, got {}", c.global_batch_size);
  PACER_CHECK(c.base_learning_rate > 0, "log_resnet_header: base_learning_rate must be > 0, got {}",
              c.base_learning_rate);
  // The v0.6 checker wants warmup_epochs > 0; a run without warmup logs its true 0 (and
  // fails that check) rather than a made-up value.
  PACER_CHECK(c.warmup_epochs >= 0, "log_resnet_header: warmup_epochs must be >= 0, got {}", c.warmup_epochs);
  PACER_CHECK(c.bn_span > 0, "log_resnet_header: bn_span must be > 0, got {}", c.bn_span);
  if (c.opt_name == "sgd") {
    PACER_CHECK(!c.decay_boundary_epochs.empty() || c.lars_decay_steps > 0,
                "log_resnet_header: sgd needs decay_boundary_epochs (step decay) or decay steps (poly decay)");
  } else {
    PACER_CHECK(c.lars_decay_steps > 0, "log_resnet_header: lars needs lars_decay_steps > 0, got {}",
                c.lars_decay_steps);
    PACER_CHECK(c.lars_poly_power > 0, "log_resnet_header: lars needs lars_poly_power > 0, got {}", c.lars_poly_power);
    PACER_CHECK(c.weight_decay > 0, "log_resnet_header: lars needs weight_decay > 0, got {}", c.weight_decay);
    PACER_CHECK(c.lars_epsilon >= 0, "log_resnet_header: lars_epsilon must be >= 0, got {}", c.lars_epsilon);
  }

  log.event("submission_benchmark", "resnet", {}, where);
  log.event("submission_org", c.org, {}, where);
  log.event("submission_division", c.division, {}, where);
  log.event("submission_status", c.status, {}, where);
  log.event("submission_platform", c.platform, {}, where);
  log.event("submission_poc_name", c.poc_name, {}, where);
  log.event("submission_entry", c.entry, {}, where);
  log.event("cache_clear", true, {}, where);
  log.event("init_start", nullptr, {}, where);
  log.event("seed", c.seed, {}, where);
  log.event("global_batch_size", c.global_batch_size, {}, where);
  log.event("train_samples", c.train_samples, {}, where);
  log.event("eval_samples", c.eval_samples, {}, where);
  log.event("model_bn_span", c.bn_span, {}, where);
  log.event("opt_name", c.opt_name, {}, where);
  log.event("opt_base_learning_rate", c.base_learning_rate, {}, where);
  log.event("opt_learning_rate_warmup_epochs", c.warmup_epochs, {}, where);
  if (c.label_smoothing > 0) log.event("model_label_smoothing", c.label_smoothing, {}, where);
  if (c.opt_name == "sgd") {
    log.event("opt_momentum", c.momentum, {}, where);
    log.event("opt_weight_decay", c.weight_decay, {}, where);
    if (!c.decay_boundary_epochs.empty()) {
      log.event("opt_learning_rate_decay_boundary_epochs", c.decay_boundary_epochs, {}, where);
    } else {  // Pacer's SGD recipe decays like LARS (poly): not a v0.6 SGD key set
      log.event("opt_learning_rate_decay_steps", c.lars_decay_steps, {}, where);
      log.event("opt_learning_rate_decay_poly_power", c.lars_poly_power, {}, where);
    }
  } else {
    log.event("lars_opt_momentum", c.momentum, {}, where);
    log.event("lars_opt_weight_decay", c.weight_decay, {}, where);
    log.event("lars_epsilon", c.lars_epsilon, {}, where);
    log.event("lars_opt_learning_rate_decay_steps", c.lars_decay_steps, {}, where);
    log.event("lars_opt_learning_rate_decay_poly_power", c.lars_poly_power, {}, where);
  }
}

}  // namespace pacer::models
