// The run logs a training writes: TensorBoard event files (read back here by a TFRecord +
// protobuf reader written independently of the writer) and MLPerf v0.6 `:::MLL` lines.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "models/mlperf_log.h"
#include "models/tensorboard.h"

namespace pacer {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed at the end.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("pacer_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ---- An event-file reader: TFRecord framing, then the protobuf fields of Event. ----

struct ScalarValue {
  std::string tag;
  float value = 0;
};
struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<ScalarValue> values;
};

uint64_t get_le(std::string_view b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return v;
}

struct ProtoReader {
  std::string_view b;
  size_t at = 0;
  bool done() const { return at >= b.size(); }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at >= b.size()) throw std::runtime_error("truncated varint");
      auto c = static_cast<unsigned char>(b[at++]);
      v |= uint64_t(c & 0x7F) << shift;
      if (!(c & 0x80)) return v;
    }
    throw std::runtime_error("varint too long");
  }
  uint64_t fixed(int bytes) {
    if (at + bytes > b.size()) throw std::runtime_error("truncated fixed field");
    uint64_t v = get_le(b, at, bytes);
    at += bytes;
    return v;
  }
  std::string_view bytes() {
    uint64_t n = varint();
    if (at + n > b.size()) throw std::runtime_error("truncated bytes field");
    std::string_view s = b.substr(at, n);
    at += n;
    return s;
  }
  void skip(uint32_t wire) {
    if (wire == 0)
      varint();
    else if (wire == 1)
      fixed(8);
    else if (wire == 2)
      bytes();
    else if (wire == 5)
      fixed(4);
    else
      throw std::runtime_error("unknown wire type");
  }
};

ScalarValue parse_value(std::string_view b) {
  ScalarValue v;
  ProtoReader r{b};
  while (!r.done()) {
    uint64_t key = r.varint();
    if (key == ((1 << 3) | 2)) {
      v.tag = std::string(r.bytes());
    } else if (key == ((2 << 3) | 5)) {
      auto bits = static_cast<uint32_t>(r.fixed(4));
      std::memcpy(&v.value, &bits, 4);
    } else {
      r.skip(key & 7);
    }
  }
  return v;
}

Event parse_event(std::string_view b) {
  Event e;
  ProtoReader r{b};
  while (!r.done()) {
    uint64_t key = r.varint();
    if (key == ((1 << 3) | 1)) {
      uint64_t bits = r.fixed(8);
      std::memcpy(&e.wall_time, &bits, 8);
    } else if (key == ((2 << 3) | 0)) {
      e.step = static_cast<int64_t>(r.varint());
    } else if (key == ((3 << 3) | 2)) {
      e.file_version = std::string(r.bytes());
    } else if (key == ((5 << 3) | 2)) {
      ProtoReader s{r.bytes()};
      while (!s.done()) {
        uint64_t skey = s.varint();
        if (skey == ((1 << 3) | 2))
          e.values.push_back(parse_value(s.bytes()));
        else
          s.skip(skey & 7);
      }
    } else {
      r.skip(key & 7);
    }
  }
  return e;
}

// Throws std::runtime_error naming the first framing or CRC problem.
std::vector<Event> read_events(std::string_view file) {
  std::vector<Event> events;
  size_t at = 0;
  while (at < file.size()) {
    if (file.size() - at < 12) throw std::runtime_error("truncated record header");
    uint64_t len = get_le(file, at, 8);
    if (get_le(file, at + 8, 4) != models::masked_crc32c(file.data() + at, 8))
      throw std::runtime_error("length CRC mismatch");
    if (file.size() - at - 12 < len + 4) throw std::runtime_error("truncated record data");
    std::string_view data = file.substr(at + 12, len);
    if (get_le(file, at + 12 + len, 4) != models::masked_crc32c(data.data(), data.size()))
      throw std::runtime_error("data CRC mismatch");
    events.push_back(parse_event(data));
    at += 12 + len + 4;
  }
  return events;
}

std::string read_error(std::string_view file) {
  try {
    read_events(file);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

// ---- MLPerf lines. ----

struct LogLine {
  std::string stamp;  // as written: "<seconds>.<3 digits>"
  double time = 0;
  std::string key;
  nlohmann::json body;
};

std::vector<LogLine> read_mlperf(const fs::path& p) {
  std::vector<LogLine> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    REQUIRE_MESSAGE(line.rfind(":::MLL ", 0) == 0, line);
    size_t sp = line.find(' ', 7);
    size_t colon = line.find(": ", sp);
    REQUIRE_MESSAGE((sp != std::string::npos && colon != std::string::npos), line);
    LogLine l;
    l.stamp = line.substr(7, sp - 7);
    l.time = std::stod(l.stamp);
    l.key = line.substr(sp + 1, colon - sp - 1);
    l.body = nlohmann::json::parse(line.substr(colon + 2));  // throws on bad JSON: the test fails
    out.push_back(std::move(l));
  }
  return out;
}

bool stamp_has_ms(const std::string& s) {
  size_t dot = s.find('.');
  if (dot == std::string::npos || dot == 0 || s.size() - dot - 1 != 3) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (i != dot && !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

// A short ResNet run in the order the v0.6 rules accept: 2 blocks of 2 epochs, evaluated
// at epochs 2 and 4.
void write_fake_resnet_run(models::MlperfLog& log) {
  models::ResnetLogConfig c;
  c.global_batch_size = 256;
  c.train_samples = 1281167;
  c.eval_samples = 50000;
  c.opt_name = "lars";
  c.base_learning_rate = 5.0;
  c.warmup_epochs = 5;
  c.weight_decay = 2e-4;
  c.label_smoothing = 0.1;
  c.lars_decay_steps = 4 * 5005;
  c.lars_poly_power = 2;
  c.lars_epsilon = 0;
  c.bn_span = 32;
  models::log_resnet_header(log, c);
  log.event("init_stop");
  log.event("run_start");
  for (int block = 0; block < 2; ++block) {
    int first = 1 + 2 * block;
    log.event("block_start", nullptr, {{"first_epoch_num", first}, {"epoch_count", 2}});
    for (int epoch = first; epoch < first + 2; ++epoch) {
      log.event("epoch_start", nullptr, {{"epoch_num", epoch}});
      log.event("epoch_stop", nullptr, {{"epoch_num", epoch}});
    }
    log.event("eval_start", nullptr, {{"epoch_num", first + 1}});
    log.event("eval_accuracy", 0.25 * (block + 1), {{"epoch_num", first + 1}});
    log.event("eval_stop", nullptr, {{"epoch_num", first + 1}});
    log.event("block_stop", nullptr, {{"first_epoch_num", first}});
  }
  log.event("run_stop", nullptr, {{"status", "success"}});
}

}  // namespace

TEST_CASE("crc32c gives the published CRC-32C check values") {
  const char* check = "123456789";
  CHECK(models::crc32c(check, 9) == 0xE3069283u);
  // iSCSI (RFC 3720, B.4) test vectors.
  unsigned char zeros[32] = {}, ones[32], inc[32];
  for (int i = 0; i < 32; ++i) ones[i] = 0xFF, inc[i] = static_cast<unsigned char>(i);
  CHECK(models::crc32c(zeros, 32) == 0x8A9136AAu);
  CHECK(models::crc32c(ones, 32) == 0x62A8AB43u);
  CHECK(models::crc32c(inc, 32) == 0x46DD794Eu);
  CHECK(models::crc32c(check + 4, 5, models::crc32c(check, 4)) == 0xE3069283u);  // continued
  uint32_t crc = models::crc32c(check, 9);
  CHECK(models::masked_crc32c(check, 9) == ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST_CASE("TensorBoard event file reads back: name, file_version record, scalars with their steps") {
  TempDir dir("tb_roundtrip");
  std::string path;
  {
    models::TensorBoardWriter w((dir.path / "run1").string());  // the run directory is created
    path = w.path();
    for (int step = 0; step < 5; ++step) w.add_scalar("train/loss", 2.5 - 0.5 * step, step);
    w.add_scalar("train/lr", 0.1, 4);                       // not exact in float: stored as float
    w.add_scalar("eval/accuracy", 0.75, int64_t(1) << 40);  // a step needing a long varint
    w.add_scalar("odd", -3.0, -1);                          // negative int64: 10-byte varint
    // Written as it goes: readable before the writer closes.
    CHECK(read_events(read_bytes(path)).size() == 9);
  }
  std::string name = fs::path(path).filename().string();
  CHECK(name.rfind("events.out.tfevents.", 0) == 0);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  CHECK(name.find(std::string(".") + host) != std::string::npos);

  std::vector<Event> ev = read_events(read_bytes(path));
  REQUIRE(ev.size() == 9);
  CHECK(ev[0].file_version == "brain.Event:2");
  CHECK(ev[0].values.empty());
  CHECK(ev[0].wall_time > 1.5e9);  // seconds since 1970, not ms
  for (int step = 0; step < 5; ++step) {
    const Event& e = ev[1 + step];
    CHECK(e.step == step);
    CHECK(e.file_version.empty());
    REQUIRE(e.values.size() == 1);
    CHECK(e.values[0].tag == "train/loss");
    CHECK(e.values[0].value == static_cast<float>(2.5 - 0.5 * step));
  }
  CHECK(ev[6].values[0].tag == "train/lr");
  CHECK(ev[6].values[0].value == 0.1f);
  CHECK(ev[7].step == int64_t(1) << 40);
  CHECK(ev[7].values[0].value == 0.75f);
  CHECK(ev[8].step == -1);
  CHECK(ev[8].values[0].value == -3.0f);
  for (size_t i = 1; i < ev.size(); ++i) CHECK(ev[i].wall_time >= ev[i - 1].wall_time);
}

TEST_CASE("A corrupted or truncated event file fails the reader's CRC and framing checks") {
  TempDir dir("tb_corrupt");
  std::string path;
  {
    models::TensorBoardWriter w(dir.path.string());
    path = w.path();
    w.add_scalar("loss", 1.0, 1);
  }
  const std::string good = read_bytes(path);
  REQUIRE(read_error(good) == "");
  size_t second = 12 + get_le(good, 0, 8) + 4;  // start of the scalar record

  std::string bad = good;
  bad[second + 12 + 3] ^= 0x01;  // one bit of the scalar record's data
  CHECK(read_error(bad) == "data CRC mismatch");
  bad = good;
  bad[second + 1] ^= 0x40;  // its length
  CHECK(read_error(bad) == "length CRC mismatch");
  bad = good;
  bad[good.size() - 1] ^= 0xFF;  // its stored data CRC
  CHECK(read_error(bad) == "data CRC mismatch");
  CHECK(read_error(good.substr(0, good.size() - 1)) == "truncated record data");
}

TEST_CASE("Two TensorBoard writers in one directory never share a file") {
  TempDir dir("tb_two");
  models::TensorBoardWriter a(dir.path.string());
  models::TensorBoardWriter b(dir.path.string());
  CHECK(a.path() != b.path());
  a.add_scalar("x", 1, 0);
  CHECK(read_events(read_bytes(a.path())).size() == 2);
  CHECK(read_events(read_bytes(b.path())).size() == 1);
  CHECK(error_of([] { models::TensorBoardWriter w("/proc/no_such_dir/run"); }).find("/proc/no_such_dir/run") !=
        std::string::npos);
}

TEST_CASE("TensorBoard writer: threads adding scalars at once write whole records") {
  TempDir dir("tb_threads");
  std::string path;
  {
    models::TensorBoardWriter w(dir.path.string());
    path = w.path();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&w, t] {
        for (int i = 0; i < 100; ++i) w.add_scalar("thread" + std::to_string(t), t + 0.5 * i, i);
      });
    for (auto& th : threads) th.join();
  }
  std::vector<Event> ev = read_events(read_bytes(path));  // every CRC checks out
  REQUIRE(ev.size() == 401);
  std::map<std::string, int64_t> next_step;
  for (size_t i = 1; i < ev.size(); ++i) {
    REQUIRE(ev[i].values.size() == 1);
    const ScalarValue& v = ev[i].values[0];
    int t = v.tag.back() - '0';
    CHECK(ev[i].step == next_step[v.tag]++);
    CHECK(v.value == static_cast<float>(t + 0.5 * ev[i].step));
  }
}

TEST_CASE("MLPerf lines: ':::MLL <s.mmm> key: JSON' with the values and metadata written") {
  TempDir dir("mlperf_lines");
  fs::path path = dir.path / "mlperf.log";
  int line_of_first = 0;
  {
    models::MlperfLog log(path.string());
    line_of_first = __LINE__ + 1;
    log.event("run_start");
    log.event("global_batch_size", size_t{256});
    log.event("opt_base_learning_rate", 0.1);
    log.event("submission_org", "pacer \"quoted\"\n");
    log.event("cache_clear", true);
    log.event("opt_learning_rate_decay_boundary_epochs", std::vector<int>{30, 60, 80});
    log.event("eval_accuracy", 0.7512, {{"epoch_num", 4}});
    log.event("run_stop", nullptr, {{"status", "success"}, {"lineno", -1}});
  }
  std::vector<LogLine> lines = read_mlperf(path);
  REQUIRE(lines.size() == 8);
  const char* keys[] = {"run_start",      "global_batch_size", "opt_base_learning_rate",
                        "submission_org", "cache_clear",       "opt_learning_rate_decay_boundary_epochs",
                        "eval_accuracy",  "run_stop"};
  for (size_t i = 0; i < lines.size(); ++i) {
    CAPTURE(i);
    CHECK(lines[i].key == keys[i]);
    CHECK(stamp_has_ms(lines[i].stamp));
    CHECK(lines[i].body.size() == 2);
    const nlohmann::json& meta = lines[i].body.at("metadata");
    CHECK(meta.at("file") == "models/test_run_logs.cpp");
    if (i + 1 < lines.size()) CHECK(meta.at("lineno") == line_of_first + int(i));
    if (i > 0) CHECK(lines[i].time >= lines[i - 1].time);
  }
  CHECK(std::abs(lines[0].time - std::time(nullptr)) < 60);  // unix seconds
  CHECK(lines[0].body.at("value").is_null());
  CHECK(lines[1].body.at("value") == 256);
  CHECK(lines[1].body.at("value").is_number_integer());
  CHECK(lines[2].body.at("value") == 0.1);
  CHECK(lines[3].body.at("value") == "pacer \"quoted\"\n");
  CHECK(lines[4].body.at("value") == true);
  CHECK(lines[5].body.at("value") == nlohmann::json::array({30, 60, 80}));
  CHECK(lines[6].body.at("value") == 0.7512);
  CHECK(lines[6].body.at("metadata").at("epoch_num") == 4);
  CHECK(lines[7].body.at("metadata").at("status") == "success");
  CHECK(lines[7].body.at("metadata").at("lineno") == -1);  // a caller's entry replaces ours
  // The v0.6 reference loggers' spacing, value first.
  std::ifstream in(path);
  std::string first;
  std::getline(in, first);
  CHECK(first.substr(first.find(" run_start: ")) ==
        " run_start: {\"value\": null, \"metadata\": {\"file\": \"models/test_run_logs.cpp\", \"lineno\": " +
            std::to_string(line_of_first) + "}}");
}

TEST_CASE("MLPerf log appends, and threads logging at once write whole lines in time order") {
  TempDir dir("mlperf_threads");
  fs::path path = dir.path / "mlperf.log";
  { models::MlperfLog(path.string()).event("init_start"); }
  {
    models::MlperfLog log(path.string());  // a second logger appends to the same file
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&log, t] {
        for (int i = 0; i < 200; ++i) log.event("tick", std::string(100 + i, char('a' + t)), {{"thread", t}, {"i", i}});
      });
    for (auto& th : threads) th.join();
  }
  std::vector<LogLine> lines = read_mlperf(path);
  REQUIRE(lines.size() == 801);
  CHECK(lines[0].key == "init_start");
  std::map<int, int> next_i;
  for (size_t k = 1; k < lines.size(); ++k) {
    CHECK(lines[k].time >= lines[k - 1].time);
    int t = lines[k].body["metadata"]["thread"], i = lines[k].body["metadata"]["i"];
    CHECK(i == next_i[t]++);  // each thread's lines in its order
    CHECK(lines[k].body["value"] == std::string(100 + i, char('a' + t)));
  }
}

TEST_CASE("A fake ResNet run's log has every key the v0.6 rules require, in their order") {
  TempDir dir("mlperf_resnet");
  fs::path path = dir.path / "mlperf.log";
  {
    models::MlperfLog log(path.string());
    write_fake_resnet_run(log);
  }
  // Keep a copy for the real compliance checker:
  //   python3 -m mlperf_logging.compliance_checker --usage training --ruleset 0.6.0 FILE
  if (const char* keep = std::getenv("PACER_MLPERF_LOG_OUT"))
    fs::copy_file(path, keep, fs::copy_options::overwrite_existing);

  std::vector<LogLine> lines = read_mlperf(path);
  std::map<std::string, int> count;
  std::map<std::string, size_t> first_at;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!count[lines[i].key]++) first_at[lines[i].key] = i;
  }
  // common.yaml's and resnet.yaml's EXACTLY_ONE keys, and lars' conditional ones.
  for (const char* k : {"submission_org", "submission_platform", "submission_division", "submission_status",
                        "submission_benchmark", "submission_poc_name", "submission_entry", "init_stop", "run_start",
                        "run_stop", "global_batch_size", "opt_name", "opt_base_learning_rate",
                        "opt_learning_rate_warmup_epochs", "model_bn_span", "lars_opt_learning_rate_decay_steps",
                        "lars_opt_learning_rate_decay_poly_power", "lars_opt_weight_decay", "lars_epsilon"}) {
    CAPTURE(k);
    CHECK(count[k] == 1);
  }
  CHECK(count["cache_clear"] >= 1);
  CHECK(count["opt_learning_rate_decay_boundary_epochs"] == 0);  // sgd's, not lars'
  CHECK(first_at["cache_clear"] < first_at["init_start"]);
  CHECK(first_at["init_start"] < first_at["init_stop"]);
  CHECK(first_at["init_stop"] < first_at["run_start"]);
  CHECK(first_at["run_start"] < first_at["block_start"]);
  CHECK(first_at["run_stop"] == lines.size() - 1);
  CHECK(lines.back().body["metadata"]["status"] == "success");
  // Epochs numbered from 1, consecutively; each eval_accuracy names the epoch its eval_start did.
  int last_epoch = 0, last_eval = 0;
  for (const LogLine& l : lines) {
    if (l.key == "epoch_start") CHECK(l.body["metadata"]["epoch_num"] == ++last_epoch);
    if (l.key == "eval_start") last_eval = l.body["metadata"]["epoch_num"];
    if (l.key == "eval_accuracy") CHECK(l.body["metadata"]["epoch_num"] == last_eval);
  }
  CHECK(last_epoch == 4);
  for (size_t i = 1; i < lines.size(); ++i) CHECK(lines[i].time >= lines[i - 1].time);
  CHECK(lines[0].body["value"] == "resnet");
}

TEST_CASE("MLPerf log errors name what was expected and what arrived") {
  TempDir dir("mlperf_errors");
  fs::path path = dir.path / "mlperf.log";
  models::MlperfLog log(path.string());
  CHECK(error_of([&] { log.event("bad key"); }).find("got 'bad key'") != std::string::npos);
  CHECK(error_of([&] { log.event("x", std::nan("")); }).find("finite") != std::string::npos);
  CHECK(error_of([&] { log.event("x", 1, {{"m", INFINITY}}); }).find("finite") != std::string::npos);
  models::ResnetLogConfig c;  // batch size 0 and more: rejected before anything is written
  c.opt_name = "adam";
  CHECK(error_of([&] { models::log_resnet_header(log, c); }).find("'sgd' or 'lars', got 'adam'") != std::string::npos);
  c.opt_name = "sgd";
  CHECK(error_of([&] { models::log_resnet_header(log, c); }).find("global_batch_size must be > 0, got 0") !=
        std::string::npos);
  CHECK(fs::file_size(path) == 0);
  CHECK(error_of([] { models::MlperfLog bad("/proc/no_such_dir/mlperf.log"); }).find("/proc/no_such_dir/mlperf.log") !=
        std::string::npos);
}

}  // namespace pacer
