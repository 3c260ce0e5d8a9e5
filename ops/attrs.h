#pragma once
/// Attrs: the non-tensor arguments of an op call (dims, scalars, flags), by name.

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/scalar.h"
#include "core/small_vector.h"

namespace pacer::ops {

using AttrValue = std::variant<int64_t, double, bool, Scalar, Shape, DType, std::string>;

class Attrs {
 public:
  Attrs() = default;
  Attrs(std::initializer_list<std::pair<const char*, AttrValue>> init) : items_(init) {}

  Attrs& set(const char* name, AttrValue v);
  bool has(const char* name) const { return find(name) != nullptr; }

  int64_t i(const char* name) const { return get<int64_t>(name); }
  double f(const char* name) const { return get<double>(name); }
  bool b(const char* name) const { return get<bool>(name); }
  const Scalar& scalar(const char* name) const { return get<Scalar>(name); }
  const Shape& shape(const char* name) const { return get<Shape>(name); }
  DType dtype(const char* name) const { return get<DType>(name); }
  const std::string& str(const char* name) const { return get<std::string>(name); }

  /// "dim=1, keepdim=false" for messages and graph dumps.
  std::string to_string() const;
  const std::vector<std::pair<const char*, AttrValue>>& items() const { return items_; }

 private:
  const AttrValue* find(const char* name) const;
  template <class T>
  const T& get(const char* name) const {
    const AttrValue* v = find(name);
    PACER_CHECK(v != nullptr, "missing attribute '{}'", name);
    const T* p = std::get_if<T>(v);
    PACER_CHECK(p != nullptr, "attribute '{}' has the wrong type", name);
    return *p;
  }
  std::vector<std::pair<const char*, AttrValue>> items_;
};

}  // namespace pacer::ops
