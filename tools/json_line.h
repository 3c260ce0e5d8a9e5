#pragma once
/// One flat JSON object per line, the machine-readable output of `pacer` commands.

#include <fmt/core.h>

#include <cmath>
#include <string>

namespace pacer::cli {

class JsonLine {
 public:
  JsonLine& add(const std::string& key, const std::string& value) { return raw(key, quote(value)); }
  JsonLine& add(const std::string& key, const char* value) { return raw(key, quote(value)); }
  JsonLine& add(const std::string& key, double value) {
    return raw(key, std::isfinite(value) ? fmt::format("{:.6g}", value) : "null");
  }
  JsonLine& add(const std::string& key, int64_t value) { return raw(key, fmt::format("{}", value)); }
  JsonLine& add(const std::string& key, int value) { return add(key, int64_t(value)); }
  JsonLine& add(const std::string& key, bool value) { return raw(key, value ? "true" : "false"); }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  JsonLine& raw(const std::string& key, const std::string& v) {
    if (!body_.empty()) body_ += ", ";
    body_ += quote(key) + ": " + v;
    return *this;
  }
  static std::string quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\', out += c;
      else if (c == '\n') out += "\\n";
      else if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", int(c));
      else out += c;
    }
    return out + "\"";
  }
  std::string body_;
};

}  // namespace pacer::cli
