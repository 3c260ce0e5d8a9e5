#include "core/error.h"

#include <cstdlib>
#include <cstring>

namespace pacer::detail {

// The source location is appended only when PACER_ERROR_LOCATION=1, so that messages
// users see read as sentences while developers can still find the throwing line.
static bool want_location() {
  static const bool on = [] {
    const char* v = std::getenv("PACER_ERROR_LOCATION");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}

void throw_error(const char* file, int line, const std::string& message) {
  if (want_location()) throw Error(fmt::format("{} ({}:{})", message, file, line));
  throw Error(message);
}

}  // namespace pacer::detail
