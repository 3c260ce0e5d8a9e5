#pragma once
// Helpers shared by the test suites.

#include <string>

#include <pacer/pacer.h>

namespace pacer::test {

/// The message of the pacer::Error `f` throws ("" when it does not throw).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace pacer::test
