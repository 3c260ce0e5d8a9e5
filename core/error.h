#pragma once
/// pacer::Error and PACER_CHECK: every bad input becomes an exception whose message
/// names what was expected and what arrived. Library code never ends the process.

#include <fmt/core.h>

#include <stdexcept>
#include <string>

#include "core/macros.h"

namespace pacer {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
[[noreturn]] void throw_error(const char* file, int line, const std::string& message);
}  // namespace detail

}  // namespace pacer

/// PACER_CHECK(cond, "fmt {}", args...) throws pacer::Error when cond is false.
#define PACER_CHECK(cond, ...)                                                    \
  do {                                                                            \
    if (PACER_UNLIKELY(!(cond))) {                                                \
      ::pacer::detail::throw_error(__FILE__, __LINE__, ::fmt::format(__VA_ARGS__)); \
    }                                                                             \
  } while (0)

/// PACER_FAIL("fmt {}", args...) throws unconditionally.
#define PACER_FAIL(...) ::pacer::detail::throw_error(__FILE__, __LINE__, ::fmt::format(__VA_ARGS__))
