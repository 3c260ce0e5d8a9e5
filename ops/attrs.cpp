#include "ops/attrs.h"

#include <cstring>

namespace pacer::ops {

Attrs& Attrs::set(const char* name, AttrValue v) {
  for (auto& [n, val] : items_) {
    if (std::strcmp(n, name) == 0) {
      val = std::move(v);
      return *this;
    }
  }
  items_.emplace_back(name, std::move(v));
  return *this;
}

const AttrValue* Attrs::find(const char* name) const {
  for (const auto& [n, v] : items_)
    if (std::strcmp(n, name) == 0) return &v;
  return nullptr;
}

std::string Attrs::to_string() const {
  std::string out;
  for (const auto& [n, v] : items_) {
    if (!out.empty()) out += ", ";
    out += n;
    out += '=';
    std::visit(
        [&](const auto& x) {
          using X = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<X, Scalar>) out += fmt::format("{}", x.to_double());
          else if constexpr (std::is_same_v<X, bool>) out += x ? "true" : "false";
          else out += fmt::format("{}", x);
        },
        v);
  }
  return out;
}

}  // namespace pacer::ops
